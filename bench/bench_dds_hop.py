"""What one DDS hop of an image costs between two processes, with nothing of depth_attn in between:
a plain rclpy publisher stamps each sensor_msgs/Image with the wall clock and publishes it (serialised
once, restamped per frame, as the bag player does), a plain rclpy subscriber in another process
records callback time - stamp. The floor under the graph's "in" part (docs/benchmarks.md section 11).

Cases: each image size (``--sizes``), the subscriber taking deserialised messages or, with ``--raw``,
the CDR bytes (no deserialisation, no Python message); the transport is whatever the environment
gives (``depth-attn``'s Fast DDS profile unless ``--profile default``).

    .venv/bin/python bench/bench_dds_hop.py                          # 32x32 and 1242x375 rgb8, 10 Hz
    .venv/bin/python bench/bench_dds_hop.py --sizes 1242x375 --raw --frames 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from depth_attn.cli.doctor import cpu_model  # noqa: E402

TOPIC = "bench_dds_hop/image"


def _qos():
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def subscriber(frames: int, raw: bool) -> int:
    """Print the stamp -> callback delays (ms) of ``frames`` images as JSON."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from depth_attn.data.bags import stamp_of_cdr
    from depth_attn.ros import convert

    rclpy.init()
    node = rclpy.create_node("bench_dds_hop_subscriber")
    delays: List[float] = []

    def on_image(msg) -> None:
        now = time.time_ns()
        stamp = stamp_of_cdr(msg) if raw else convert.stamp_to_ns(msg.header.stamp)
        delays.append((now - stamp) / 1e6)

    node.create_subscription(Image, TOPIC, on_image, _qos(), raw=raw)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline = time.monotonic() + 30.0 + frames * 0.2
    while len(delays) < frames and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    print(json.dumps(delays), flush=True)
    rclpy.shutdown()
    return 0


def publisher(frames: int, width: int, height: int, rate: float) -> int:
    import rclpy
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from depth_attn.data.bags import restamp_cdr

    rclpy.init()
    node = rclpy.create_node("bench_dds_hop_publisher")
    pub = node.create_publisher(Image, TOPIC, _qos())
    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    cdr = serialize_message(Image(height=height, width=width, encoding="rgb8", step=width * 3,
                                  data=rgb.tobytes()))
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # discovery settles
    for _ in range(frames):
        pub.publish(restamp_cdr(cdr, time.time_ns()))
        time.sleep(1.0 / rate)
    rclpy.shutdown()
    return 0


def run_case(width: int, height: int, raw: bool, frames: int, warmup: int, rate: float,
             env: Dict[str, str]) -> Dict[str, object]:
    me = [sys.executable, __file__]
    sub = subprocess.Popen(me + ["--role", "subscriber", "--frames", str(frames + warmup)] + (["--raw"] if raw else []),
                           env=env, stdout=subprocess.PIPE, text=True)
    try:
        subprocess.run(me + ["--role", "publisher", "--frames", str(frames + warmup + 2), "--sizes",
                             f"{width}x{height}", "--rate", str(rate)], env=env, check=True, timeout=120)
        out, _ = sub.communicate(timeout=60)
    finally:
        if sub.poll() is None:
            sub.kill()
    delays = np.array(json.loads(out.strip().splitlines()[-1])[warmup:])
    return {"size": f"{width}x{height}", "bytes": width * height * 3, "raw": raw, "received": int(delays.size),
            "p50_ms": float(np.median(delays)), "p90_ms": float(np.percentile(delays, 90))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="32x32,1242x375", help="WxH rgb8 image sizes (comma-separated)")
    parser.add_argument("--raw", action="store_true", help="also run each size with a raw (CDR bytes) subscriber")
    parser.add_argument("--frames", type=int, default=60, help="images timed per case (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5, help="first images not counted")
    parser.add_argument("--rate", type=float, default=10.0, help="images per second")
    parser.add_argument("--profile", choices=("package", "default"), default="package",
                        help="package: depth_attn's Fast DDS profile (config/fastdds_large_data.xml), as "
                        "`depth-attn run` sets it; default: Fast DDS's own settings")
    parser.add_argument("--role", choices=("subscriber", "publisher"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s.strip()]
    if args.role == "subscriber":
        return subscriber(args.frames, args.raw)
    if args.role == "publisher":
        return publisher(args.frames, sizes[0][0], sizes[0][1], args.rate)

    from depth_attn.ros.transport import USER_CHOICES, large_data_environment

    env = {k: v for k, v in os.environ.items() if k not in USER_CHOICES}
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if args.profile == "package":
        env.update(large_data_environment({}))
    results = []
    for width, height in sizes:
        for raw in ([False, True] if args.raw else [False]):
            result = run_case(width, height, raw, args.frames, args.warmup, args.rate, env)
            results.append(result)
            print(json.dumps(result), flush=True)
    lines = [
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- command: `.venv/bin/python bench/bench_dds_hop.py --sizes {args.sizes} --frames {args.frames} "
        f"--rate {args.rate:g} --profile {args.profile}{' --raw' if args.raw else ''}`",
        "",
        "| image (rgb8) | bytes | subscriber | received | stamp -> callback p50 / p90 (ms) |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for r in results:
        lines.append(f"| {r['size']} | {r['bytes']:,} | {'raw CDR' if r['raw'] else 'deserialised'} | "
                     f"{r['received']} | {r['p50_ms']:.2f} / {r['p90_ms']:.2f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
