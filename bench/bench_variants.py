"""The study's accuracy/latency trade-off for METER-tiny, measured: each variant with the weights
``auto`` picks (the shipped distilled checkpoints), its parameters and GMACs, ONNX Runtime p50 on
this CPU (one interleaved run: every variant timed in turn on the same frame), and its held-out
accuracy (3 annotated frames and the 130 KITTI 2015 frames, computed here through ONNX Runtime).

    .venv/bin/python bench/bench_variants.py
    .venv/bin/python bench/bench_variants.py --runs 60 --out out/bench/variants.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import write_report  # noqa: E402 (bench/ is the script's folder)

VARIANTS = ("base", "meta", "pyra", "moh")


def heldout(estimator, folder: Path) -> dict:
    from depth_attn.evaluation.offline import evaluate_frames_folder

    return evaluate_frames_folder(estimator, folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="timed runs per variant (default: 40)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown) here")
    args = parser.parse_args()
    from depth_attn.imageio import read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.inference.timing import measure_interleaved
    from depth_attn.models.registry import ModelConfig
    from depth_attn.models.stats import model_stats
    from depth_attn.paths import data_dir

    kitti = data_dir() / "kitti"
    estimators = {v: DepthEstimator(EstimatorConfig(model=ModelConfig(variant=v), weights="auto",
                                                    backend="onnxruntime")) for v in VARIANTS}
    batch = estimators["base"].preprocess(read_rgb(kitti / "annotated" / "image_02" / "0000000005.png"))
    stats = measure_interleaved({v: (lambda e=e: e.backend.run(batch)) for v, e in estimators.items()},
                                runs=args.runs, warmup=5)
    lines = [
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"ONNX Runtime CPU fp32, 192x636, {args.runs} runs each, interleaved",
        "",
        "| variant | weights | params | GMACs | ORT p50 ms | x base | annotated abs_rel | annotated delta1 "
        "| KITTI 2015 abs_rel | KITTI 2015 delta1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    results = {}
    for v, estimator in estimators.items():
        model = model_stats(ModelConfig("meter", "tiny", v, "full"), (192, 636))
        annotated = heldout(estimator, kitti / "annotated")
        k15 = heldout(estimator, kitti / "kitti2015")
        results[v] = (stats[v].p50_ms, annotated["abs_rel"], k15["abs_rel"])
        lines.append(
            f"| {v} | {estimator.weights_name} | {model.params:,} | {model.gmacs:.3f} | {stats[v].p50_ms:.1f} | "
            f"{stats[v].p50_ms / stats['base'].p50_ms:.2f} | {annotated['abs_rel']:.4f} | {annotated['delta1']:.4f} | "
            f"{k15['abs_rel']:.4f} | {k15['delta1']:.4f} |"
        )
    fastest = min(results, key=lambda v: results[v][0])
    cost = results["meta"][2] - results["base"][2]
    lines += ["", f"fastest: {fastest}; meta vs base: {results['meta'][0] / results['base'][0]:.2f}x latency, "
              f"KITTI 2015 abs_rel {cost:+.4f}"]
    return write_report(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
