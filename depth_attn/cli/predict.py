"""`depth-attn predict`: one image -> metric depth, a colour picture of it and a point cloud."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from depth_attn.cli.common import add_model_args

KITTI_LEFT_COLOUR_FX_FY_CX_CY = "721.5377,721.5377,609.5593,172.854"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="metric depth and a point cloud from one image",
        description="Run a depth network on one image and write depth.npy (float32 metres), depth.png "
        "(uint16, metres x 256, 0 = invalid), depth_color.png (with a metres scale) and points.ply "
        "(binary XYZRGB, camera optical frame: x right, y down, z forward).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image", type=Path, help="an RGB image file (PNG/JPEG)")
    p.add_argument("--out", type=Path, default=Path("out/predict"), help="output folder")
    p.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                   help="camera intrinsics in pixels for the point cloud (default: KITTI's left colour camera, "
                   + KITTI_LEFT_COLOUR_FX_FY_CX_CY + ", scaled to the image size)")
    add_model_args(p, weights_default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from depth_attn.cli.common import estimator_from_args
    from depth_attn.geometry import Intrinsics, depth_to_points, valid_depth_mask
    from depth_attn.imageio import colorize_with_scale, read_rgb, write_depth_png, write_ply, write_rgb

    rgb = read_rgb(args.image)
    h, w = rgb.shape[:2]
    if args.intrinsics:
        K = Intrinsics.parse(args.intrinsics)
    else:
        K = Intrinsics.parse(KITTI_LEFT_COLOUR_FX_FY_CX_CY).resized((1242, 375), (w, h))
    estimator = estimator_from_args(args)
    start = time.perf_counter()
    depth = estimator.estimate(rgb)
    elapsed_ms = (time.perf_counter() - start) * 1e3

    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "depth.npy", depth)
    write_depth_png(args.out / "depth.png", depth)
    write_rgb(args.out / "depth_color.png", colorize_with_scale(depth, 0.0, estimator.max_depth))
    valid = valid_depth_mask(depth)
    points = depth_to_points(depth, K, organized=False)
    write_ply(args.out / "points.ply", points, rgb[valid])
    print(
        f"{args.image.name}: {w}x{h}, depth min {np.min(depth[valid]):.2f} m, median {np.median(depth[valid]):.2f} m, "
        f"max {np.max(depth[valid]):.2f} m, {elapsed_ms:.0f} ms ({estimator.model_config.name}, "
        f"{estimator.config.backend}); {len(points)} points -> {args.out.resolve()}/"
        "{depth.npy,depth.png,depth_color.png,points.ply}"
    )
    return 0
