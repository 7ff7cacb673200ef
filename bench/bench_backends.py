"""PyTorch eager vs ONNX Runtime (and optional torch modes) for METER tiny/base/large x base/meta/pyra/moh,
network latency at one input size, all in ONE run.

Per configuration: the untrained network (seed 0; latency does not depend on the weights values)
is exported to ONNX (the project's exporter, opset 17), then every backend is warmed up and timed
round-robin (one run each per round, ``depth_attn.inference.timing.measure_interleaved``), so load
from other processes hits all of them alike and the ratios stay fair. What is timed is
``Backend.run``: a float32 (1, 3, H, W) host array in, the host output array back.

    .venv/bin/python bench/bench_backends.py                                  # the issue's table
    .venv/bin/python bench/bench_backends.py --sizes tiny --variants base \\
        --torch-modes eager channels_last compile --runs 50                   # torch CPU options
    .venv/bin/python bench/bench_backends.py --out docs/bench/backends_table.md --json out/bench.json

Target (issue 4): ONNX Runtime p50 at most 0.6x PyTorch eager's for METER-tiny at 192x636.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]

from depth_attn.cli.doctor import cpu_model  # noqa: E402

TORCH_MODES = ("eager", "channels_last", "compile", "eager-1t")  # -1t: one thread (set per call)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "base", "large"], choices=("tiny", "base", "large"))
    p.add_argument("--variants", nargs="+", default=["base", "meta", "pyra", "moh"],
                   choices=("base", "meta", "pyra", "moh"))
    p.add_argument("--input-size", default="192x636", help="HxW (default: 192x636, METER's KITTI size)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per backend and configuration")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument("--torch-modes", nargs="+", default=["eager"], choices=TORCH_MODES,
                   help="torch variants to time beside ONNX Runtime (compile = torch.compile, slow to start)")
    p.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = per physical core)")
    p.add_argument("--ort-one-thread", action="store_true",
                   help="also time ONNX Runtime with one intra-op thread (column onnxruntime-1t)")
    p.add_argument("--ort-spinning", action="store_true",
                   help="also time ONNX Runtime with busy-waiting worker threads (column onnxruntime-spin)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    p.add_argument("--json", type=Path, default=None, help="write all numbers here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import onnxruntime
    import torch

    from depth_attn.cli.common import parse_hw
    from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
    from depth_attn.inference.backends.torch_backend import TorchBackend
    from depth_attn.inference.export import export_onnx
    from depth_attn.inference.parity import random_batch, relative_error
    from depth_attn.inference.timing import measure_interleaved
    from depth_attn.models import build_model

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    load_before = os.getloadavg()
    input_hw = parse_hw(args.input_size)
    batch = random_batch(input_hw)
    rows: List[Dict[str, object]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_backends_"))
    started = time.time()
    for size in args.sizes:
        for variant in args.variants:
            name = f"meter-{size}-{variant}"
            try:
                torch.manual_seed(0)
                model = build_model("meter", size, variant).eval()
            except NotImplementedError as exc:
                print(f"{name}: skipped, not in the model zoo ({exc})", flush=True)
                rows.append({"config": name, "skipped": str(exc)})
                continue
            params = sum(p.numel() for p in model.parameters())
            onnx_path = tmp / f"{name}.onnx"
            export_onnx(model, onnx_path, input_hw)
            calls = {}
            backends = {}
            for mode in args.torch_modes:
                backends[f"torch-{mode}"] = TorchBackend(
                    model if mode.startswith("eager") else build_model("meter", size, variant).eval(),
                    channels_last=(mode == "channels_last"),
                    compile=(mode == "compile"),
                )
            backends["onnxruntime"] = OnnxRuntimeBackend(onnx_path, intra_op_threads=args.ort_threads)
            if args.ort_one_thread:
                backends["onnxruntime-1t"] = OnnxRuntimeBackend(onnx_path, intra_op_threads=1)
            if args.ort_spinning:
                backends["onnxruntime-spin"] = OnnxRuntimeBackend(onnx_path, intra_op_threads=args.ort_threads,
                                                                  spinning=True)
            for label, backend in backends.items():
                calls[label] = one_thread(backend.run, batch) if label.endswith("-1t") and label.startswith("torch") \
                    else (lambda b=backend: b.run(batch))
            reference = backends[f"torch-{args.torch_modes[0]}"].run(batch)
            parity = relative_error(backends["onnxruntime"].run(batch), reference)
            stats = measure_interleaved(calls, args.runs, args.warmup, "cpu", progress=name)
            row = {"config": name, "params": params, "onnx_vs_torch_rel_error": parity,
                   **{label: s.as_dict() for label, s in stats.items()}}
            eager = stats.get("torch-eager")
            if eager:
                row["ort_over_eager_p50"] = stats["onnxruntime"].p50_ms / eager.p50_ms
            rows.append(row)
            summary = ", ".join(f"{label} p50 {s.p50_ms:.1f} p90 {s.p90_ms:.1f}" for label, s in stats.items())
            print(f"{name} ({params / 1e6:.2f} M params): {summary}"
                  + (f"; ORT/eager p50 {row['ort_over_eager_p50']:.2f}x" if eager else ""), flush=True)
            onnx_path.unlink()
    meta = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {platform.machine()}, {os.cpu_count()} logical CPUs",
        "command": "python bench/bench_backends.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "onnxruntime": onnxruntime.__version__,
        "input_hw": list(input_hw), "runs": args.runs, "warmup": args.warmup,
        "wall_s": round(time.time() - started, 1),
        "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    table = markdown(rows, args.torch_modes, meta)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


def one_thread(run, batch):
    """A torch call on one thread; the thread count is restored after, so the other columns keep theirs."""
    import torch

    def call():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run(batch)
        finally:
            torch.set_num_threads(threads)

    return call


def markdown(rows: List[Dict[str, object]], torch_modes: List[str], meta: Dict[str, object]) -> str:
    labels = [f"torch-{m}" for m in torch_modes] + [k for k in ("onnxruntime", "onnxruntime-1t", "onnxruntime-spin")
                                                     if any(k in row for row in rows)]
    head = ["config", "params (M)"]
    for label in labels:
        head += [f"{label} p50 (ms)", f"{label} p90 (ms)"]
    if "eager" in torch_modes:
        head.append("ORT / eager (p50)")
    head.append("ORT rel. error")
    lines = [
        f"Network latency, METER at {meta['input_hw'][0]}x{meta['input_hw'][1]}, batch 1, fp32, CPU; "
        f"{meta['runs']} timed runs after {meta['warmup']} warm-up, backends round-robin in one loop.",
        "",
        f"- machine: {meta['machine']}; torch {meta['torch']} ({meta['torch_threads']} threads), "
        f"onnxruntime {meta['onnxruntime']}",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date_utc']} (the run took {meta['wall_s']} s); 1-minute load average before/after: "
        f"{meta['load_average_1min'][0]} / {meta['load_average_1min'][1]} (the benchmark itself loads up to "
        "its thread count; more before it means other work shared the CPU)",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['config']} | not in the zoo yet |" + " |" * (len(head) - 2))
            continue
        cells = [str(row["config"]), f"{row['params'] / 1e6:.2f}"]
        for label in labels:
            cells += [f"{row[label]['p50_ms']:.1f}", f"{row[label]['p90_ms']:.1f}"]
        if "eager" in torch_modes:
            cells.append(f"{row['ort_over_eager_p50']:.2f}x")
        cells.append(f"{row['onnx_vs_torch_rel_error']:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
