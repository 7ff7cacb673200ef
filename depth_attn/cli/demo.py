"""`depth-attn demo`: the main job of `make demo`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: metric depth on a real KITTI frame from the shared data",
        description="Predict metric depth on a real KITTI frame ($DEPTH_ATTN_DATA or ../shared/data) with the "
        "official METER checkpoint, and print where the outputs went.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.cli import main as cli_main
    from depth_attn.paths import data_dir

    image = data_dir() / "kitti" / "annotated" / "image_02" / "0000000005.png"
    return cli_main(["predict", str(image), "--weights", "meter-xxs-kitti", "--out", str(args.out)])
