"""What pairing each image with its own camera info (waiting up to ``camera_info_wait`` for it, issue 30)
does to the depth node's per-frame latency, in one run.

A real KITTI frame (1242x375 rgb8) is published to a DepthNode (real rclpy and Fast DDS, one process,
METER-tiny on ONNX Runtime), one frame at a time, its camera info (fx changing per frame) published
``delay`` ms after the image (the usual driver order) or before it; cases interleaved frame by frame.
Per frame: the node's own ``node_ms`` (its callback -> depth out, from depth/timing: what the wait
adds) and whether depth/camera_info carried that frame's fx.

    .venv/bin/python bench/bench_camera_pairing.py --frames 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))  # the ROS test harness

# (label, camera_info_wait s, camera info delay after the image in ms; None = published before it)
CASES = (
    ("info before the image (no wait needed)", 0.1, None),
    ("info 0 ms after, wait 0.1 s", 0.1, 0.0),
    ("info 5 ms after, wait 0.1 s", 0.1, 5.0),
    ("info 20 ms after, wait 0.1 s", 0.1, 20.0),
    ("info 20 ms after, no wait (the previous pairing)", 0.0, 20.0),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20, help="frames per case (after 3 warm-up frames)")
    args = parser.parse_args()

    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from ros_harness import Probe, RosSession, unique, wait_until
    from sensor_msgs.msg import CameraInfo, Image

    from depth_attn.cli.doctor import cpu_model
    from depth_attn.geometry import Intrinsics
    from depth_attn.imageio import read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.paths import data_dir
    from depth_attn.ros import convert
    from depth_attn.ros.depth_node import DepthNode

    rgb = read_rgb(data_dir() / "kitti" / "annotated" / "image_02" / "0000000005.png")
    estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="onnxruntime"))
    session = RosSession()
    ns = "/" + unique("pairing")
    node = session.add(DepthNode(unique("depth_node"), estimator=estimator, context=session.context, namespace=ns,
                                 parameter_overrides=[Parameter("publish_cloud", value=False),
                                                      Parameter("publish_color", value=False)]))
    probe = session.add(Probe(session.context, ns))
    probe.listen(CameraInfo, "depth/camera_info")
    probe.listen(DiagnosticArray, "depth/timing")
    pub_image, pub_info = probe.publisher(Image, "image"), probe.publisher(CameraInfo, "camera_info")
    assert wait_until(lambda: node.sub_image.get_publisher_count() > 0 and node.sub_info.get_publisher_count() > 0
                      and node.pub_info.get_subscription_count() > 0, 20.0), "discovery did not complete"
    results = {label: {"node_ms": [], "right_fx": 0} for label, _, _ in CASES}
    stamp = [1_900_000_000_000_000_000]
    started = dt.datetime.now(dt.timezone.utc)
    try:
        for round_index in range(args.frames + 3):
            for label, wait_s, delay_ms in CASES:
                if node.settings.camera_info_wait != wait_s:
                    node.set_parameters([Parameter("camera_info_wait", value=wait_s)])
                stamp[0] += 100_000_000
                fx = 700.0 + (stamp[0] // 100_000_000) % 50  # a new fx every frame
                header = convert.make_header("camera_optical", stamp[0])
                info = convert.make_camera_info(Intrinsics(fx, fx, 609.6, 172.9), 1242, 375, header)
                image = convert.rgb_to_image(rgb, "rgb8", header)
                if delay_ms is None:
                    pub_info.publish(info)
                    time.sleep(0.005)
                pub_image.publish(image)
                if delay_ms is not None:
                    time.sleep(delay_ms / 1e3)
                    pub_info.publish(info)
                out = probe.wait_stamp("depth/camera_info", stamp[0], 30.0)
                timing = probe.wait_stamp("depth/timing", stamp[0], 30.0)
                if round_index < 3 or out is None or timing is None:
                    continue
                values = {kv.key: float(kv.value) for kv in timing.status[0].values}
                results[label]["node_ms"].append(values["node_ms"])
                results[label]["right_fx"] += abs(out.p[0] - fx) < 1e-6
    finally:
        session.close()
    base = float(np.median(results[CASES[0][0]]["node_ms"]))
    print(f"camera_info pairing, {args.frames} frames per case, interleaved; {cpu_model()}, "
          f"{platform.python_version()}, {started:%Y-%m-%d %H:%M} UTC\n")
    print("| case | node_ms p50 | p90 | ratio p50 to info-first | frames with their own fx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, _, _ in CASES:
        ms = np.asarray(results[label]["node_ms"])
        print(f"| {label} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} | {np.median(ms) / base:.2f}x | "
              f"{results[label]['right_fx']} of {len(ms)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
