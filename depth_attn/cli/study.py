"""`depth-attn study`: the efficient-attention study reproduced in one run (report.md, PNGs, CSVs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command
from depth_attn.inference.backends.base import BACKENDS

EPILOG = """examples:
  depth-attn study --out out/study                          # KITTI 2015 (130 frames), every trained configuration
  depth-attn study --out out/study_nyu --dataset nyu        # the NYU frames, NYU checkpoints
  depth-attn study --out out/quick --frames 5 --backends torch --configs meter-tiny-base,meter-tiny-meta --zoo chosen
  depth-attn study --out out/swin --timed pixelformer-tiny-meta-decoder,newcrfs-tiny-base --backends onnxruntime
  depth-attn study --data my_bag --out out/mine             # a bag from `depth-attn kitti2bag` (or your robot)

--data: a held-out frame folder as in ../shared (image_*/ beside groundtruth_depth/, or rgb/ beside depth/, with
intrinsics.json), or a rosbag2 with ground-truth depth; default the KITTI 2015 frames (NYU frames with
--dataset nyu). Configurations: every one with weights for --dataset on this machine (`depth-attn weights list`),
or --configs; untrained ones are timed only, never scored (--timed adds them).

writes OUT/report.md with zoo.png, latency.png, pareto.png, embeddings.png, entropy.png, the CSVs zoo.csv,
latency.csv, accuracy.csv, entropy.csv, embeddings.npz, and OUT/configs/<config>/ (the files of `depth-attn eval`).
Latency is taken with every configuration and backend interleaved in one loop (fair ratios on a loaded machine);
its absolute figures are this machine's at the load the report records."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from depth_attn.cli.eval import add_eval_args

    p = add_command(subparsers, "study", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder for report.md, figures and CSVs")
    p.add_argument("--data", type=Path, default=None,
                   help="held-out frame folder or bag with ground truth (default: ../shared's KITTI 2015 frames, "
                   "or its NYU frames with --dataset nyu)")
    p.add_argument("--dataset", choices=("kitti", "nyu"), default="kitti",
                   help="which checkpoints and input sizes (default: kitti)")
    p.add_argument("--configs", default=None,
                   help="configurations, comma-separated (network-size-variant[-placement]) or a file with one per "
                   "line (default: every configuration with weights for --dataset)")
    p.add_argument("--timed", default=None,
                   help="untrained configurations to time as well (comma-separated or a file; 'all' for all 72)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=["torch", "onnxruntime"], metavar="BACKEND",
                   help=f"backends to time ({', '.join(BACKENDS)}); the first also scores accuracy and embeddings "
                   "(default: torch onnxruntime)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--frames", type=int, default=None, dest="max_frames", metavar="N",
                   help="use only the first N frames with ground truth (a quick run; same as --max-frames)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per configuration and backend (default: 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default: 3)")
    p.add_argument("--zoo", choices=("all", "chosen"), default="all",
                   help="count all 72 configurations (about 2 minutes on 2 cores) or only the chosen ones "
                   "(default: all)")
    p.add_argument("--entropy-dims", type=int, default=8,
                   help="principal components the entropies are compared on (needs frames > dims; default: 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_eval_args(p)
    p.set_defaults(func=run, gt_max_depth=None)


def run(args: argparse.Namespace) -> int:
    import sys

    from depth_attn.cli.eval import settings_from_args
    from depth_attn.evaluation.study import GT_MAX_DEPTH, StudySettings, default_data, run_study
    from depth_attn.evaluation.sweep import parse_configs

    if args.gt_max_depth is None:
        args.gt_max_depth = GT_MAX_DEPTH[args.dataset]
    if args.entropy_dims < 1:
        raise ValueError("--entropy-dims must be >= 1")
    settings = StudySettings(
        data=args.data or default_data(args.dataset), out=args.out, dataset=args.dataset,
        configs=parse_configs(args.configs) if args.configs else None,
        timed=parse_configs(args.timed) if args.timed else (), backends=list(dict.fromkeys(args.backends)),
        device=args.device, evaluation=settings_from_args(args), runs=args.runs, warmup=args.warmup, zoo=args.zoo,
        entropy_dims=args.entropy_dims, progress=not args.no_progress,
        command=" ".join(["depth-attn", *sys.argv[1:]]),
    )
    result = run_study(settings)
    evaluated = sum(r.evaluated for r in result.rows)
    print(f"{len(result.rows)} configurations ({evaluated} evaluated, {len(result.rows) - evaluated} timed only) "
          f"in {result.duration_s / 60:.1f} min")
    print(f"report: {(args.out / 'report.md').resolve()}")
    return 0
