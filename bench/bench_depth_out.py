"""The depth node's post-network path at 1242x375: the depth written straight into the outgoing
message's buffer (``estimate(rgb, out=...)``, what the node does) against the previous way (scale
after the resize, then copy into the message), interleaved in one run.

Only what follows the network is timed (the network's raw output is fixed): postprocess (unit scale,
resize to the camera, clamp) + the 32FC1 message ready to publish.

    .venv/bin/python bench/bench_depth_out.py
    .venv/bin/python bench/bench_depth_out.py --runs 2000 --size 1242x375
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="timed runs of each (default: 1000)")
    parser.add_argument("--size", default="1242x375", help="camera WIDTHxHEIGHT (default: 1242x375)")
    args = parser.parse_args()
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.inference.timing import measure_interleaved
    from depth_attn.ros import convert

    width, height = (int(v) for v in args.size.split("x"))
    estimator = DepthEstimator(EstimatorConfig(max_depth=80.0))  # METER tiny, 192x636 output
    raw = np.random.default_rng(0).random((1, 1, *estimator.input_hw), dtype=np.float32) * 0.5
    header = convert.make_header("camera", 1)
    previous_builder, node_builder = convert.DepthImageBuilder(), convert.DepthImageBuilder()

    def previous():  # the post-processing before 2026-11-22: resize, then scale and clamp, then copy
        depth = raw.reshape(raw.shape[-2:]).astype(np.float32, copy=False)
        depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
        depth *= np.float32(estimator.to_metres)
        np.clip(depth, estimator.min_depth, estimator.max_depth, out=depth)
        return previous_builder.build(depth, header)

    def into_message():  # the depth node now
        estimator.postprocess(raw, (height, width), out=node_builder.view(height, width))
        return node_builder.message(header)

    a, b = previous(), into_message()
    assert np.allclose(np.frombuffer(a.data, np.float32), np.frombuffer(b.data, np.float32), rtol=1e-6)
    stats = measure_interleaved({"previous": previous, "into_message": into_message}, runs=args.runs, warmup=50)
    print(f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{width}x{height}, {args.runs} runs each, interleaved")
    for name, s in stats.items():
        print(f"{name:>13}: p50 {s.p50_ms:.3f} ms  p90 {s.p90_ms:.3f} ms")
    ratio = stats["into_message"].p50_ms / stats["previous"].p50_ms
    print(f"into_message / previous (p50): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
