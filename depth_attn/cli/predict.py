"""`depth-attn predict`: one image -> metric depth, a colour picture of it and a point cloud."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from depth_attn.cli.common import add_command, add_model_args
from depth_attn.encodings import DEFAULT_MAX_IMAGE_PIXELS

KITTI_LEFT_COLOUR_FX_FY_CX_CY = "721.5377,721.5377,609.5593,172.854"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "predict", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("image", type=Path, help="an RGB image file (PNG/JPEG)")
    p.add_argument("--out", type=Path, default=Path("out/predict"), help="output folder")
    p.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY|FILE.json",
                   help="the camera's rectified intrinsics in pixels, or a JSON file with them (K or P / P_rect_02, "
                   "as the shared intrinsics.json): the image goes through the canonical camera (its metres stay "
                   "right for any lens and aspect) and the point cloud uses them. Default: KITTI's left colour "
                   "camera, " + KITTI_LEFT_COLOUR_FX_FY_CX_CY + ", scaled to the image size (the image is then "
                   "taken as a KITTI-like view and stretched to the network's input)")
    p.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS, metavar="N",
                   help="refuse an image whose header declares more pixels, before decoding it (0: no limit)")
    add_model_args(p)
    p.set_defaults(func=run)


def read_intrinsics(text: str):
    """'fx,fy,cx,cy' or a JSON file holding K ({fx, fy, cx, cy} or 3x3) or P / P_rect_02 (3x4; used first:
    the image is rectified)."""
    import json

    from depth_attn.geometry import Intrinsics

    path = Path(text)
    if not path.suffix == ".json":
        return Intrinsics.parse(text)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--intrinsics: cannot read {path}: {exc}") from None
    for key in ("P", "P_rect_02", "p", "K", "k"):
        value = data.get(key)
        if isinstance(value, dict):
            return Intrinsics.checked(value["fx"], value["fy"], value["cx"], value["cy"])
        if value is not None:
            return Intrinsics.from_matrix(value)
    raise SystemExit(f"--intrinsics: {path} holds none of P, P_rect_02, K")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from depth_attn.cli.common import estimator_from_args
    from depth_attn.geometry import Intrinsics, depth_to_points, valid_depth_mask
    from depth_attn.imageio import colorize_with_scale, read_rgb, write_depth_png, write_ply, write_rgb

    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; name a folder (it is made if missing)")
    rgb = read_rgb(args.image, args.max_image_pixels)  # nothing is written for an image that is refused
    h, w = rgb.shape[:2]
    camera = read_intrinsics(args.intrinsics) if args.intrinsics else None
    K = camera or Intrinsics.parse(KITTI_LEFT_COLOUR_FX_FY_CX_CY).resized((1242, 375), (w, h))
    estimator = estimator_from_args(args)
    start = time.perf_counter()
    depth = estimator.estimate(rgb, intrinsics=camera)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    print(f"camera: {estimator.view.describe()}")

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
