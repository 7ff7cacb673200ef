"""int8 vs fp32 on the CPU for METER-tiny (issue 14): per variant (weights ``auto``: the shipped
checkpoints), ONNX Runtime int8 (static QDQ, calibrated on real KITTI frames that are not held out),
ONNX Runtime fp32 and PyTorch eager, all timed in ONE interleaved run on the same frame, with the
held-out abs_rel of each on the 3 annotated frames. ``--profile`` adds ONNX Runtime's profiler:
per-operator-type time of int8 and fp32 for one variant (where the int8 milliseconds go).

    .venv/bin/python bench/bench_int8.py
    .venv/bin/python bench/bench_int8.py --runs 40 --profile base --out out/bench/int8.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import write_report  # noqa: E402 (bench/ is the script's folder)

VARIANTS = ("base", "meta", "pyra", "moh")


def abs_rel(estimator, folder: Path) -> float:
    from depth_attn.evaluation.offline import evaluate_frames_folder

    return evaluate_frames_folder(estimator, folder)["abs_rel"]


def op_profile(onnx_path: Path, batch, runs: int, threads: int) -> dict:
    """Mean ms per run by operator type (ONNX Runtime's profiler, node events), after 3 warm-up runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    warm = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        warm.run(["depth"], {"image": batch})
    options.enable_profiling = True
    options.profile_file_prefix = f"/tmp/ort_profile_{onnx_path.parent.name}"
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(["depth"], {"image": batch})
    trace = json.loads(Path(session.end_profiling()).read_text())
    per_op = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1e3
    runs_seen = sum(1 for e in trace if e.get("cat") == "Session" and e["name"] == "model_run") or runs
    return {op: ms / runs_seen for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="timed runs per network (default: 40)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--calibration", type=Path, default=None,
                        help="calibration frames (default: ../shared data/kitti/unlabelled/drive_a_268)")
    parser.add_argument("--calibration-frames", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--profile", choices=VARIANTS, default=None, help="per-operator profile of this variant")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown) here")
    args = parser.parse_args()
    from depth_attn.imageio import read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.inference.artefacts import int8_card
    from depth_attn.inference.timing import measure_interleaved
    from depth_attn.models import ModelConfig
    from depth_attn.paths import data_dir

    kitti = data_dir() / "kitti"
    calibration = args.calibration or kitti / "unlabelled" / "drive_a_268"
    ort_options = {"intra_op_threads": args.threads}
    from depth_attn import weights as weights_mod

    estimators, skipped = {}, []
    for v in list(args.variants):
        try:
            weights_mod.resolve_auto("meter", "tiny", v, "full", "kitti")
        except weights_mod.WeightsError:
            skipped.append(v)  # no trained checkpoint for it here: nothing meaningful to quantise
            args.variants.remove(v)
            continue
        common = dict(model=ModelConfig(variant=v), weights="auto")
        estimators[(v, "int8")] = DepthEstimator(EstimatorConfig(
            **common, backend="onnxruntime", precision="int8",
            backend_options={**ort_options, "calibration": str(calibration),
                             "calibration_frames": args.calibration_frames}))
        estimators[(v, "fp32")] = DepthEstimator(EstimatorConfig(**common, backend="onnxruntime",
                                                                 backend_options=dict(ort_options)))
        estimators[(v, "torch")] = DepthEstimator(EstimatorConfig(**common, backend="torch"))
    batch = estimators[(args.variants[0], "fp32")].preprocess(
        read_rgb(kitti / "annotated" / "image_02" / "0000000005.png"))
    stats = measure_interleaved({k: (lambda e=e: e.backend.run(batch)) for k, e in estimators.items()},
                                runs=args.runs, warmup=5, progress="interleaved")
    threads = estimators[(args.variants[0], "fp32")].backend.intra_op_threads
    lines = [
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"METER-tiny 192x636, batch 1, {args.runs} runs each after 5 warm-up, all interleaved; ONNX Runtime "
        f"intra-op threads {threads or 'default'}; int8 calibrated on {args.calibration_frames} frames of "
        f"{calibration.name}",
        "",
        "| variant | weights | int8 p50 ms | fp32 ORT p50 ms | torch eager p50 ms | int8 / fp32 | "
        "abs_rel int8 | abs_rel fp32 | abs_rel torch | int8 - fp32 | fp32 nodes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in args.variants:
        e8, e32, et = (estimators[(v, p)] for p in ("int8", "fp32", "torch"))
        a8, a32, at = (abs_rel(e, kitti / "annotated") for e in (e8, e32, et))
        card = int8_card(e8.backend.onnx_path)
        p8, p32, pt = (stats[(v, p)].p50_ms for p in ("int8", "fp32", "torch"))
        lines.append(f"| {v} | {e32.weights_name} | {p8:.1f} | {p32:.1f} | {pt:.1f} | {p8 / p32:.2f} | {a8:.4f} | "
                     f"{a32:.4f} | {at:.4f} | {a8 - a32:+.4f} | {len(card['fp32_nodes'])} |")
    if skipped:
        lines += ["", f"not measured (no trained checkpoint on this machine): {', '.join(skipped)}"]
    if args.profile and args.profile in args.variants:
        v = args.profile
        prof8 = op_profile(estimators[(v, "int8")].backend.onnx_path, batch, 20, args.threads)
        prof32 = op_profile(estimators[(v, "fp32")].backend.onnx_path, batch, 20, args.threads)
        lines += ["", f"ONNX Runtime profile, {v}, ms per run by operator type (20 runs; kernel time only):", "",
                  "| operator | int8 model ms | fp32 model ms |", "| --- | --- | --- |"]
        for op in sorted(set(prof8) | set(prof32), key=lambda o: -max(prof8.get(o, 0), prof32.get(o, 0)))[:16]:
            lines.append(f"| {op} | {prof8.get(op, 0):.2f} | {prof32.get(op, 0):.2f} |")
        lines.append(f"| total | {sum(prof8.values()):.2f} | {sum(prof32.values()):.2f} |")
    return write_report(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
