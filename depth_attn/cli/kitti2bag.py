"""`depth-attn kitti2bag`: a KITTI raw drive (or any image + depth folder) -> rosbag2 with ground-truth depth."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command

EPILOG = """examples:
  # a KITTI raw drive; ground truth found automatically (proj_depth/groundtruth, else proj_depth/velodyne_raw,
  # else the Velodyne scans projected), left and right camera
  depth-attn kitti2bag raw/2011_09_26/2011_09_26_drive_0023_sync --right --out out/drive23
  # annotated depth from the depth benchmark, in its own folder
  depth-attn kitti2bag 2011_09_26/2011_09_26_drive_0002_sync --gt annotated \\
      --gt-dir data_depth_annotated/train/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02 --out out/drive2
  # a clip without timestamps.txt (image_02/data + velodyne_points/data): nominal 10 Hz stamps, the date's
  # calibration named, ground truth by projecting each Velodyne scan
  depth-attn kitti2bag kitti/sequence_sfnd --calib-dir kitti/raw/2011_09_26 --rate 10 --gt velodyne --out out/clip
  # loose frames: any images + depth PNGs with the same names
  depth-attn kitti2bag --images DIR --gt-dir DIR --intrinsics intrinsics.json --rate 10 --out out/loose

topics: /kitti/camera_color_left/image_raw (rgb8; CompressedImage on .../image_raw/compressed with --compress),
/kitti/camera_color_left/camera_info (K, P of the rectified image_02, R = identity, no distortion),
/kitti/depth/ground_truth (32FC1 metres, NaN = none; only frames that have ground truth),
with --right also /kitti/camera_color_right/{image_raw,camera_info} and /kitti/depth/ground_truth_right,
/kitti/velo/pointcloud (--velo), /tf_static (Velodyne and right camera -> left camera optical frame).
A frame's image, camera info and ground truth share one stamp: from image_02/timestamps.txt, or nominal
(frame number / --rate from midnight UTC of the calibration folder's date) when --rate is given or the
folder has no timestamps.txt. metadata.yaml's custom_data says which (depth_attn.stamps: recorded | nominal)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "kitti2bag", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("drive", type=Path, nargs="?", help="the <date>_drive_<n>_sync folder (omit with --images)")
    p.add_argument("--out", type=Path, required=True, help="the bag folder to write")
    p.add_argument("--calib-dir", type=Path, default=None,
                   help="folder with calib_cam_to_cam.txt and calib_velo_to_cam.txt (default: the drive's parent)")
    p.add_argument("--gt", choices=("auto", "annotated", "velodyne_raw", "velodyne", "none"), default="auto",
                   help="ground truth: depth PNGs of proj_depth/groundtruth (annotated) or proj_depth/velodyne_raw "
                   "(one scan projected, KITTI depth completion), each Velodyne scan projected here, or none; auto "
                   "takes the first that the drive has, in that order (default: auto)")
    p.add_argument("--gt-dir", type=Path, default=None,
                   help="folder of ground-truth depth PNGs named like the images (uint16, metres x 256), instead "
                   "of the drive's proj_depth/...")
    p.add_argument("--right", action="store_true", help="also the right colour camera (image_03) and its ground truth")
    p.add_argument("--velo", action="store_true", help="also write the Velodyne scans as PointCloud2")
    p.add_argument("--compress", nargs="?", const="jpeg", choices=("jpeg", "png"), default=None,
                   help="write CompressedImage (jpeg if no codec given) instead of raw rgb8")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default: mcap)")
    p.add_argument("--max-frames", type=int, default=None, help="convert only the first N frames")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--rate", type=float, default=None,
                   help="nominal stamps at this frame rate, Hz, from a fixed start (drives: instead of "
                   "timestamps.txt, needed without one; loose frames: default 10)")
    loose = p.add_argument_group("loose frames (instead of a drive)")
    loose.add_argument("--images", type=Path, default=None, help="folder of images (PNG/JPEG), taken in name order")
    loose.add_argument("--intrinsics", type=Path, default=None,
                       help="JSON with K {fx, fy, cx, cy} (and optionally P_rect_02, image_size_wh, "
                       "depth_png_encoding)")
    loose.add_argument("--depth-scale", type=float, default=None,
                       help="depth PNG value per metre (default: from the intrinsics JSON, else 256)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.data.kitti import (
        CameraCalibration,
        KittiDrive,
        loose_frames,
        nominal_start_ns,
        read_intrinsics_json,
    )
    from depth_attn.data.kitti2bag import stamps_metadata, write_bag, write_drive_bag
    from depth_attn.imageio import KITTI_DEPTH_SCALE, read_rgb

    depth_scale = args.depth_scale
    common = dict(velodyne_topic=args.velo, compress=args.compress, storage=args.storage, overwrite=args.overwrite)
    if args.images is not None:
        if args.drive is not None:
            raise ValueError("give either a drive folder or --images, not both")
        if args.intrinsics is None:
            raise ValueError("--images needs --intrinsics JSON")
        if args.gt in ("velodyne", "velodyne_raw") or args.right:
            raise ValueError(f"--{'right' if args.right else 'gt ' + args.gt} needs a KITTI drive")
        rate = args.rate or 10.0
        k, p, wh, json_scale = read_intrinsics_json(args.intrinsics)
        frames = loose_frames(args.images, args.gt_dir if args.gt != "none" else None, rate,
                              start_ns=nominal_start_ns(args.images))
        if wh is None:
            h, w = read_rgb(frames[0].image).shape[:2]
            wh = (w, h)
        calib = CameraCalibration.from_intrinsics(k, wh, p)
        gt = "annotated" if args.gt_dir and args.gt != "none" else "none"
        if args.max_frames:
            frames = frames[: args.max_frames]
        summary = write_bag(frames, calib, args.out, gt=gt, depth_scale=depth_scale or json_scale or KITTI_DEPTH_SCALE,
                            custom_data=stamps_metadata(rate, args.images, gt), **common)
    else:
        if args.drive is None:
            raise ValueError("give a KITTI drive folder, or --images with --intrinsics")
        drive = KittiDrive.open(args.drive, args.calib_dir, args.gt_dir, velodyne=args.velo, gt=args.gt,
                                rate_hz=args.rate, right=args.right)
        frames = drive.frames[: args.max_frames] if args.max_frames else drive.frames
        summary = write_drive_bag(drive, args.out, frames, depth_scale=depth_scale or KITTI_DEPTH_SCALE, **common)
        stamps = f"nominal {drive.nominal_rate_hz:g} Hz stamps" if drive.nominal_rate_hz else "recorded stamps"
        print(f"{drive.drive_dir}: ground truth {drive.gt_source}, {stamps}"
              + (", left and right camera" if drive.right_calib else ""))
    counts = ", ".join(f"{topic}: {n}" for topic, n in sorted(summary.counts.items()))
    print(f"{summary.path.resolve()}: {summary.frames} frames, {summary.frames_with_gt} with ground truth ({counts})")
    return 0
