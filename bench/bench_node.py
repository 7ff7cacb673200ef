"""The depth node's per-frame work outside the network, as a ratio to the network time in the same run.

A real KITTI frame (1242x375) and its camera info are published to a DepthNode (real rclpy and
Fast DDS, in one process) one frame at a time; reliable subscribers take every output, so every
output is built and published. For each frame the node's own timer gives: decode, preprocess,
network, postprocess, depth message + publish, camera info + point cloud + publish, colour depth
+ publish, and the whole worker callback. "Outside the network" = whole callback - network.

    .venv/bin/python bench/bench_node.py                       # onnxruntime when installed, else torch
    .venv/bin/python bench/bench_node.py --frames 200 --stride 1 2 --out docs/bench/node.md

Targets (issue 5): outside-network work <= 0.25x the network time; point cloud alone <= 0.1x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))  # the ROS test harness (private context, spinning executor)

from depth_attn.cli.doctor import cpu_model  # noqa: E402


def default_backend() -> str:
    try:
        import onnxruntime  # noqa: F401

        return "onnxruntime"
    except ImportError:
        return "torch"


def subscriber_process(namespace: str) -> int:
    """The consumer side (as RViz or a planner would be): another process with reliable subscriptions
    to every output; exits when its stdin closes."""
    import threading

    import rclpy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    rclpy.init()
    node = rclpy.create_node("bench_consumer", namespace=namespace)
    counts = {}
    for msg_type, topic in ((Image, "depth/image_rect"), (CameraInfo, "depth/camera_info"), (PointCloud2, "points"),
                            (Image, "depth/image_color")):
        counts[topic] = 0

        def record(_msg, topic=topic):
            counts[topic] += 1

        node.create_subscription(msg_type, topic, record, 10)
    threading.Thread(target=lambda: (sys.stdin.read(), rclpy.try_shutdown()), daemon=True).start()
    try:
        rclpy.spin(node)
    except Exception:  # the context shut down when stdin closed
        pass
    print(json.dumps(counts), flush=True)
    return 0


def run_case_without_ros(estimator, rgb: np.ndarray, info_k, stride: int, frames: int, warmup: int,
                         cloud_rgb: bool) -> Dict:
    """The node's conversions in one thread, messages built but not published: what ROS adds is the rest."""
    from depth_attn.colormap import DepthColorizer
    from depth_attn.ros import convert

    image = convert.rgb_to_image(rgb, "rgb8")
    cloud, depth_builder = convert.PointCloudBuilder(), convert.DepthImageBuilder()
    color, colorizer = convert.ImageBuilder("rgb8", np.uint8, 3), DepthColorizer(0.0, estimator.max_depth)
    info = convert.make_camera_info(info_k, rgb.shape[1], rgb.shape[0])
    rows = []
    for i in range(warmup + frames):
        header = convert.make_header("camera_optical_frame", 1_000_000_000 + i)
        t0 = time.perf_counter()
        frame = convert.image_to_rgb(image)
        t1 = time.perf_counter()
        depth = estimator.estimate(frame)
        t2 = time.perf_counter()
        depth_builder.build(depth, header)
        t3 = time.perf_counter()
        cloud.build(depth, convert.camera_info_to_intrinsics(info), header, stride, frame if cloud_rgb else None)
        t4 = time.perf_counter()
        colorizer.colorize(depth, out=color.view(*depth.shape))
        color.message(header)
        t5 = time.perf_counter()
        timing = estimator.last_timing
        if i >= warmup:
            rows.append({"decode": (t1 - t0) * 1e3, "preprocess": timing.preprocess_ms, "network": timing.network_ms,
                         "postprocess": timing.postprocess_ms, "depth_msg": (t3 - t2) * 1e3,
                         "cloud": (t4 - t3) * 1e3, "color": (t5 - t4) * 1e3, "publish": 0.0,
                         "total": (t5 - t0) * 1e3, "latency": (t5 - t0) * 1e3})
    return {"stride": stride, "consumer": "noros", "rows": rows, "consumer_received": None,
            "depth_resolution": "camera"}


def run_case(estimator, rgb: np.ndarray, info_k, stride: int, frames: int, warmup: int, cloud_rgb: bool,
             consumer_kind: str, depth_resolution: str = "camera") -> Dict:
    if consumer_kind == "noros":
        return run_case_without_ros(estimator, rgb, info_k, stride, frames, warmup, cloud_rgb)
    from rclpy.parameter import Parameter
    from ros_harness import Probe, RosSession, unique, wait_until
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from depth_attn.ros import convert
    from depth_attn.ros.depth_node import DepthNode

    session = RosSession()
    ns = "/" + unique("bench")
    consumer = None
    try:
        node = session.add(DepthNode(unique("depth_node"), estimator=estimator, context=session.context, namespace=ns,
                                     parameter_overrides=[Parameter("cloud_stride", value=stride),
                                                          Parameter("cloud_rgb", value=cloud_rgb),
                                                          Parameter("lazy_outputs", value=False),
                                                          Parameter("depth_resolution", value=depth_resolution)]))
        probe = session.add(Probe(session.context, ns))
        if consumer_kind == "inprocess":
            for msg_type, topic in ((Image, "depth/image_rect"), (CameraInfo, "depth/camera_info"),
                                    (PointCloud2, "points"), (Image, "depth/image_color")):
                probe.listen(msg_type, topic)
        elif consumer_kind == "process":
            consumer = subprocess.Popen([sys.executable, __file__, "--subscriber", ns], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        image_pub = probe.publisher(Image, "image")
        info_pub = probe.publisher(CameraInfo, "camera_info")
        wanted = 0 if consumer_kind == "none" else 1
        if not wait_until(lambda: node.pub_points.get_subscription_count() >= wanted
                          and node.pub_color.get_subscription_count() >= wanted
                          and node.pub_depth.get_subscription_count() >= wanted
                          and node.sub_image.get_publisher_count() > 0, 30.0):
            raise RuntimeError("DDS discovery did not complete")
        image = convert.rgb_to_image(rgb, "rgb8")
        rows: List[Dict[str, float]] = []
        stamp = 1_000_000_000
        for i in range(warmup + frames):
            stamp += 50_000_000
            header = convert.make_header("camera_optical_frame", stamp)
            info_pub.publish(convert.make_camera_info(info_k, rgb.shape[1], rgb.shape[0], header))
            image.header = header
            done = node.frames_out + 1
            image_pub.publish(image)
            if not node.wait_processed(done, 30.0):
                raise RuntimeError("the node did not answer a frame")
            if i >= warmup:
                rows.append(dict(node.last_stage_ms))
            with probe.lock:  # keep memory flat
                for v in probe.received.values():
                    v.clear()
        assert node.slot.dropped == 0 and not node.bad_input, "frames were dropped or rejected"
        received = None
        if consumer is not None:
            time.sleep(0.5)
            received, _ = consumer.communicate("", timeout=30)
            consumer = None
        return {"stride": stride, "consumer": consumer_kind, "rows": rows, "consumer_received": received,
                "depth_resolution": depth_resolution}
    finally:
        if consumer is not None:
            consumer.kill()
        session.close()


def summarise(rows: List[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    table = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    table["outside_network"] = table["total"] - table["network"]
    table["own_work"] = table["outside_network"] - table["publish"]
    table["ratio_outside"] = table["outside_network"] / table["network"]
    table["ratio_cloud"] = table["cloud"] / table["network"]
    # The list (decode, pre/post-processing, point cloud, messages, publish) has no colour depth,
    # which lazy_outputs builds only while someone (a person in RViz) watches it.
    table["ratio_outside_no_color"] = (table["outside_network"] - table["color"]) / table["network"]
    return {k: {"p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90))} for k, v in table.items()}


def markdown(results: List[Dict], meta: Dict) -> str:
    lines = [
        "## Depth node: per-frame work outside the network (issue 5)",
        "",
        f"- machine: {meta['cpu']} ({meta['cores']} cores visible), {meta['python']}",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        f"- model: {meta['model']} on {meta['backend']} ({meta['backend_detail']}), network input "
        f"{meta['input']}; camera frame 1242x375 rgb8 (KITTI 0000000005), {meta['frames']} frames after "
        f"{meta['warmup']} warm-up, one at a time; every output built and published (lazy_outputs false)",
        "- noros: the same conversions in one thread without ROS (messages built, not published); none: the "
        "node with no subscriber, so publish = rclpy's conversion + DDS serialisation (the node's own work); "
        "process: reliable subscribers in another process (as RViz), publish then includes the DDS transport "
        "(~11 MB per frame at stride 1, ~5 MB at stride 2)",
        "- ratios are per frame (stage / network time of the same frame), then p50/p90",
        "",
        "| consumer, cloud | stage | p50 ms | p90 ms |",
        "| --- | --- | --- | --- |",
    ]
    labels = [("decode", "decode rgb8 (zero-copy view)"), ("preprocess", "preprocess (resize, normalise)"),
              ("network", "**network**"), ("postprocess", "postprocess (resize to camera, clamp)"),
              ("depth_msg", "depth 32FC1 message + publish"), ("cloud", "camera info + point cloud + publish"),
              ("color", "colour depth + publish"), ("publish", "(of which inside publish() calls)"),
              ("total", "whole callback"), ("outside_network", "**everything outside the network**"),
              ("latency", "receive -> published")]
    for res in results:
        s = res["summary"]
        cloud = (f"{res['consumer']}, depth at {res['depth_resolution']} resolution, stride {res['stride']} "
                 f"{'XYZRGB' if meta['cloud_rgb'] else 'XYZ'} {res['points']}")
        for key, label in labels:
            lines.append(f"| {cloud} | {label} | {s[key]['p50']:.2f} | {s[key]['p90']:.2f} |")
        for key, label, target in (("ratio_outside", "outside network / network", 0.25),
                                   ("ratio_outside_no_color", "outside network except colour depth / network", 0.25),
                                   ("ratio_cloud", "point cloud / network", 0.10)):
            ok = "meets" if s[key]["p50"] <= target else "MISSES"
            lines.append(f"| {cloud} | **{label}** (target <= {target}) | {s[key]['p50']:.3f} | "
                         f"{s[key]['p90']:.3f} ({ok} at p50) |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=None, help="onnxruntime | torch (default: onnxruntime if installed)")
    parser.add_argument("--weights", default="meter-xxs-kitti", help="checkpoint (default: meter-xxs-kitti)")
    parser.add_argument("--frames", type=int, default=100, help="timed frames per case (default: 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    parser.add_argument("--stride", type=int, nargs="+", default=[1, 2], help="cloud strides to run (default: 1 2)")
    parser.add_argument("--xyz", action="store_true", help="XYZ clouds instead of XYZRGB")
    parser.add_argument("--frame", default="0000000005", help="KITTI frame of the shared data")
    parser.add_argument("--consumer", nargs="+", choices=("noros", "none", "process", "inprocess"),
                        default=["noros", "none", "process"],
                        help="noros: the node's conversions in one thread without ROS (messages built, not "
                        "published); none: the node, no subscriber (every output is still built and published: "
                        "the node's own work); process: reliable subscribers in another process, as RViz (adds "
                        "the DDS transport); inprocess: in the node's process (Fast DDS delivers inside "
                        "publish) (default: noros none process)")
    parser.add_argument("--depth-resolution", nargs="+", choices=("camera", "network"), default=["camera"],
                        help="the node's depth_resolution: camera (1242x375 depth, cloud and colour depth) and/or "
                        "network (636x192, the network's scale; not for noros) (default: camera)")
    parser.add_argument("--spinning", action="store_true",
                        help="let ONNX Runtime's pool threads spin after each run (ONNX Runtime's own default; "
                        "the backend turns it off unless its option spinning is true)")
    parser.add_argument("--subscriber", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown fragment here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw per-frame timings here")
    args = parser.parse_args(argv)
    if args.subscriber:
        return subscriber_process(args.subscriber)

    import os

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(int(time.time()) % 90 + 5))
    from depth_attn.geometry import Intrinsics
    from depth_attn.imageio import read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.paths import data_dir

    backend = args.backend or default_backend()
    options = {"spinning": True} if backend == "onnxruntime" and args.spinning else {}
    estimator = DepthEstimator(EstimatorConfig(weights=args.weights, backend=backend, max_depth=80.0,
                                               backend_options=options))
    rgb = read_rgb(data_dir() / "kitti" / "annotated" / "image_02" / f"{args.frame}.png")
    meta_k = json.loads((data_dir() / "kitti" / "annotated" / "intrinsics.json").read_text())["K"]
    k = Intrinsics(meta_k["fx"], meta_k["fy"], meta_k["cx"], meta_k["cy"])
    results = []
    cases = [(c, st, r) for c in args.consumer for r in args.depth_resolution for st in args.stride
             if not (c == "noros" and r == "network")]
    for consumer, stride, resolution in cases:
        res = run_case(estimator, rgb, k, stride, args.frames, args.warmup, not args.xyz, consumer, resolution)
        res["summary"] = summarise(res["rows"])
        out_h, out_w = estimator.output_hw(estimator.view_for(k, (rgb.shape[1], rgb.shape[0])), resolution == "network")
        hs, ws = -(-out_h // stride), -(-out_w // stride)
        res["points"] = f"{ws}x{hs}"
        results.append(res)
    info = estimator.describe()
    meta = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": f"Python {platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/bench_node.py"] + (argv if argv is not None else sys.argv[1:])),
        "model": f"{info.get('model')} ({args.weights})", "backend": backend,
        "backend_detail": ", ".join([f"{k}={info[k]}" for k in ("providers", "device", "spinning", "torch")
                                     if k in info] + [f"{k}={v}" for k, v in options.items() if k not in info]),
        "input": "x".join(str(v) for v in reversed(estimator.input_hw)), "frames": args.frames,
        "warmup": args.warmup, "cloud_rgb": not args.xyz,
    }
    text = markdown(results, meta)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
