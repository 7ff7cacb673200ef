"""`depth-attn kitti2bag`: a KITTI raw drive (or any image + depth folder) -> rosbag2 with ground-truth depth."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  # a KITTI raw drive, annotated depth from the depth benchmark
  depth-attn kitti2bag 2011_09_26/2011_09_26_drive_0002_sync --gt annotated \\
      --gt-dir data_depth_annotated/train/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02 --out out/drive2
  # ground truth by projecting each Velodyne scan, and the clouds themselves
  depth-attn kitti2bag 2011_09_26/2011_09_26_drive_0002_sync --gt velodyne --velo --out out/drive2_velo
  # loose frames: any images + depth PNGs with the same names
  depth-attn kitti2bag --images DIR --gt-dir DIR --intrinsics intrinsics.json --rate 10 --out out/loose

topics: /kitti/camera_color_left/image_raw (rgb8; CompressedImage on .../image_raw/compressed with --compress),
/kitti/camera_color_left/camera_info (K, P of the rectified image_02, R = identity, no distortion),
/kitti/depth/ground_truth (32FC1 metres, NaN = none; only frames that have ground truth),
/kitti/velo/pointcloud (--velo), /tf_static (Velodyne -> camera optical frame).
A frame's image, camera info and ground truth share one stamp (from image_02/timestamps.txt)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kitti2bag",
        help="KITTI raw drive (or image + depth folder) -> rosbag2 with ground-truth depth",
        description="Convert a KITTI raw drive (<date>/<date>_drive_<n>_sync with the date folder's calib_*.txt) "
        "into a rosbag2 (MCAP by default) with the left colour images, their camera info and ground-truth "
        "depth, written with rosbags (no ROS install needed).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("drive", type=Path, nargs="?", help="the <date>_drive_<n>_sync folder (omit with --images)")
    p.add_argument("--out", type=Path, required=True, help="the bag folder to write")
    p.add_argument("--calib-dir", type=Path, default=None,
                   help="folder with calib_cam_to_cam.txt and calib_velo_to_cam.txt (default: the drive's parent)")
    p.add_argument("--gt", choices=("annotated", "velodyne", "none"), default="annotated",
                   help="ground truth: annotated depth PNGs, the projected Velodyne scan, or none (default: annotated)")
    p.add_argument("--gt-dir", type=Path, default=None,
                   help="folder of ground-truth depth PNGs named like the images (uint16, metres x 256; default: "
                   "<drive>/proj_depth/groundtruth/image_02)")
    p.add_argument("--velo", action="store_true", help="also write the Velodyne scans as PointCloud2")
    p.add_argument("--compress", nargs="?", const="jpeg", choices=("jpeg", "png"), default=None,
                   help="write CompressedImage (jpeg if no codec given) instead of raw rgb8")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default: mcap)")
    p.add_argument("--max-frames", type=int, default=None, help="convert only the first N frames")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    loose = p.add_argument_group("loose frames (instead of a drive)")
    loose.add_argument("--images", type=Path, default=None, help="folder of images (PNG/JPEG), taken in name order")
    loose.add_argument("--intrinsics", type=Path, default=None,
                       help="JSON with K {fx, fy, cx, cy} (and optionally P_rect_02, image_size_wh, "
                       "depth_png_encoding)")
    loose.add_argument("--rate", type=float, default=10.0, help="frame rate for the stamps, Hz (default: 10)")
    loose.add_argument("--depth-scale", type=float, default=None,
                       help="depth PNG value per metre (default: from the intrinsics JSON, else 256)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from depth_attn.data.kitti import CameraCalibration, KittiDrive, loose_frames, read_intrinsics_json
    from depth_attn.data.kitti2bag import write_bag
    from depth_attn.imageio import KITTI_DEPTH_SCALE, read_rgb

    depth_scale = args.depth_scale
    if args.images is not None:
        if args.drive is not None:
            raise ValueError("give either a drive folder or --images, not both")
        if args.intrinsics is None:
            raise ValueError("--images needs --intrinsics JSON")
        if args.gt == "velodyne":
            raise ValueError("--gt velodyne needs a KITTI drive")
        k, p, wh, json_scale = read_intrinsics_json(args.intrinsics)
        frames = loose_frames(args.images, args.gt_dir if args.gt != "none" else None, args.rate,
                              start_ns=int(time.time()) * 1_000_000_000)
        if wh is None:
            h, w = read_rgb(frames[0].image).shape[:2]
            wh = (w, h)
        calib = CameraCalibration.from_intrinsics(k, wh, p)
        depth_scale = depth_scale or json_scale or KITTI_DEPTH_SCALE
        gt = "annotated" if args.gt_dir and args.gt != "none" else "none"
    else:
        if args.drive is None:
            raise ValueError("give a KITTI drive folder, or --images with --intrinsics")
        need_velo = args.gt == "velodyne" or args.velo
        drive = KittiDrive.open(args.drive, args.calib_dir, args.gt_dir, velodyne=need_velo)
        frames, calib, gt = drive.frames, drive.calib, args.gt
        depth_scale = depth_scale or KITTI_DEPTH_SCALE
    if args.max_frames:
        frames = frames[: args.max_frames]
    summary = write_bag(frames, calib, args.out, gt=gt, velodyne_topic=args.velo, compress=args.compress,
                        storage=args.storage, depth_scale=depth_scale, overwrite=args.overwrite)
    counts = ", ".join(f"{topic}: {n}" for topic, n in sorted(summary.counts.items()))
    print(f"{summary.path.resolve()}: {summary.frames} frames, {summary.frames_with_gt} with ground truth ({counts})")
    return 0
