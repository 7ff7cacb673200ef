"""`depth-attn eval`: offline evaluation of a depth network on a bag with ground truth (no DDS)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command, add_model_args


def add_eval_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("--crop", choices=("none", "garg", "eigen"), default="none",
                       help="evaluated region of the ground truth (default: none)")
    group.add_argument("--gt-min-depth", type=float, default=1e-3,
                       help="ground truth used above this, m (default: 1e-3)")
    group.add_argument("--gt-max-depth", type=float, default=80.0, help="ground truth used below this, m (default: 80)")
    group.add_argument("--image-topic", default=None,
                       help="colour image topic (default: /kitti/camera_color_left/image_raw or the bag's image topic)")
    group.add_argument("--gt-topic", default="/kitti/depth/ground_truth", help="ground-truth depth topic (32FC1)")
    group.add_argument("--max-frames", type=int, default=None,
                       help="evaluate only the first N frames with ground truth")


def settings_from_args(args: argparse.Namespace):
    from depth_attn.evaluation.offline import EvalSettings

    return EvalSettings(crop=args.crop, min_depth=args.gt_min_depth, max_depth=args.gt_max_depth,
                        image_topic=args.image_topic, gt_topic=args.gt_topic, max_frames=args.max_frames)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "eval")
    p.add_argument("bag", type=Path, help="the bag folder (or its .mcap / .db3 file), or a held-out frame folder "
                   "(image_*/ beside groundtruth_depth/, or rgb/ beside depth/, with intrinsics.json), as in ../shared")
    p.add_argument("--out", type=Path, default=Path("out/eval"), help="output folder (default: out/eval)")
    add_model_args(p)
    add_eval_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.cli.common import estimator_from_args
    from depth_attn.evaluation import format_table
    from depth_attn.evaluation.offline import evaluate_bag

    estimator = estimator_from_args(args)
    result = evaluate_bag(args.bag, estimator, args.out, settings_from_args(args))
    print(format_table(result.summary))
    print(f"\nper-frame CSV: {result.csv.resolve()}\nsummary:       {result.summary_path.resolve()}")
    if result.plot:
        print(f"plot:          {result.plot.resolve()}")
    return 0
