"""`depth-attn sweep`: the study's accuracy/latency trade-off on a bag (sweep.csv, pareto.png, pareto.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command, parse_hw
from depth_attn.inference.backends.base import BACKEND_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    from depth_attn.cli.eval import add_eval_args

    p = add_command(subparsers, "sweep")
    p.add_argument("bag", type=Path, help="the bag folder (or its .mcap / .db3 file)")
    p.add_argument("--configs", default="all",
                   help="'all' (every registry configuration), a file with one name per line, or comma-separated "
                   "names (default: all)")
    p.add_argument("--out", type=Path, default=Path("out/sweep"), help="output folder (default: out/sweep)")
    p.add_argument("--dataset", default="kitti", help="which checkpoints count as trained (default: kitti)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="torch",
                   help="what runs the networks (default: torch, which needs no export per configuration; auto: "
                   "TensorRT where it and a CUDA GPU are present, else OpenVINO on an x86 CPU, else ONNX Runtime)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--input-size", type=parse_hw, default=None, metavar="HxW",
                   help="network input size for every configuration (default: each checkpoint's, else the study's)")
    p.add_argument("--timing-runs", type=int, default=10,
                   help="timed runs per configuration, cycling over the frames (default: 10)")
    add_eval_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.cli.eval import settings_from_args
    from depth_attn.evaluation.sweep import parse_configs, run_sweep

    configs = parse_configs(args.configs)
    rows = run_sweep(args.bag, configs, args.out, settings_from_args(args), dataset=args.dataset,
                     backend=args.backend, device=args.device, input_hw=args.input_size,
                     timing_runs=args.timing_runs)
    print((args.out / "pareto.md").read_text())
    trained = sum(r.trained for r in rows)
    print(f"{len(rows)} configurations ({trained} trained, {len(rows) - trained} timed only)")
    for name in ("sweep.csv", "pareto.png", "pareto.md"):
        print(f"{name:11} {(args.out / name).resolve()}")
    return 0
