"""KITTI drive (or any image + depth set) -> rosbag2 with ground-truth depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from depth_attn.data import bags
from depth_attn.data.kitti import CameraCalibration, FrameFiles, project_velodyne, read_velodyne_bin
from depth_attn.imageio import KITTI_DEPTH_SCALE, read_depth_png, read_rgb

GT_SOURCES = ("annotated", "velodyne", "none")


@dataclass
class BagSummary:
    path: Path
    frames: int
    frames_with_gt: int
    counts: Dict[str, int] = field(default_factory=dict)


def ground_truth_png(path: Path, scale: float = KITTI_DEPTH_SCALE) -> np.ndarray:
    """A depth PNG as float32 metres with NaN where it has no value."""
    depth = read_depth_png(path, scale)
    depth[depth <= 0] = np.nan
    return depth


def write_bag(
    frames: Sequence[FrameFiles],
    calib: CameraCalibration,
    out: Path,
    gt: str = "annotated",
    velodyne_topic: bool = False,
    compress: Optional[str] = None,
    storage: str = "mcap",
    depth_scale: float = KITTI_DEPTH_SCALE,
    overwrite: bool = False,
    progress: bool = True,
) -> BagSummary:
    """Write ``frames`` as a bag: image (rgb8 or CompressedImage), camera info and, where the frame
    has it, ground truth (32FC1 metres, NaN = none), all with the frame's stamp; optional Velodyne
    clouds; /tf_static with the camera optical frame and the Velodyne frame."""
    from tqdm import tqdm

    if gt not in GT_SOURCES:
        raise ValueError(f"--gt must be one of {GT_SOURCES}, got {gt!r}")
    if compress not in (None, "jpeg", "png"):
        raise ValueError(f"--compress must be jpeg or png, got {compress!r}")
    if not frames:
        raise ValueError("no frames to write")
    image_topic = bags.IMAGE_TOPIC + ("/compressed" if compress else "")
    with_gt = 0
    with bags.BagWriter(out, storage=storage, overwrite=overwrite) as writer:
        first = frames[0].stamp_ns
        if calib.velo_to_cam is not None:
            transform = calib.velo_to_optical
            tf = bags.tf_static_message(first, bags.CAMERA_FRAME, bags.VELO_FRAME, transform)
            writer.write(bags.TF_STATIC_TOPIC, tf, first)
        for frame in tqdm(frames, desc="kitti2bag", unit="frame", disable=not progress):
            rgb = read_rgb(frame.image)
            h, w = rgb.shape[:2]
            if (w, h) != tuple(calib.image_wh):
                cw, ch = calib.image_wh
                raise ValueError(f"{frame.image} is {w}x{h}, the calibration is for {cw}x{ch}")
            stamp = frame.stamp_ns
            if compress:
                writer.write(image_topic, bags.compressed_image_message(stamp, bags.CAMERA_FRAME, rgb, compress), stamp)
            else:
                writer.write(image_topic, bags.image_message(stamp, bags.CAMERA_FRAME, rgb, "rgb8"), stamp)
            info = bags.camera_info_message(stamp, bags.CAMERA_FRAME, calib.p_rect, (w, h))
            writer.write(bags.INFO_TOPIC, info, stamp)
            depth = _ground_truth(frame, calib, gt, depth_scale)
            if depth is not None:
                if depth.shape != (h, w):
                    gh, gw = depth.shape
                    raise ValueError(f"ground truth of {frame.name} is {gw}x{gh}, the image {w}x{h}")
                gt_msg = bags.image_message(stamp, bags.CAMERA_FRAME, depth.astype("<f4"), "32FC1")
                writer.write(bags.GT_TOPIC, gt_msg, stamp)
                with_gt += 1
            if velodyne_topic and frame.velodyne is not None:
                points = read_velodyne_bin(frame.velodyne)
                writer.write(bags.VELO_TOPIC, bags.pointcloud_message(stamp, bags.VELO_FRAME, points), stamp)
        counts = dict(writer.counts)
    return BagSummary(Path(out), len(frames), with_gt, counts)


def _ground_truth(frame: FrameFiles, calib: CameraCalibration, gt: str, depth_scale: float) -> Optional[np.ndarray]:
    if gt == "annotated" and frame.gt_depth is not None:
        return ground_truth_png(frame.gt_depth, depth_scale)
    if gt == "velodyne" and frame.velodyne is not None:
        return project_velodyne(read_velodyne_bin(frame.velodyne), calib)
    return None


def frames_summary(frames: List[FrameFiles]) -> str:
    with_gt = sum(f.gt_depth is not None for f in frames)
    return f"{len(frames)} frames, {with_gt} with annotated depth"
