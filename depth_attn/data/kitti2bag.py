"""KITTI drive (or any image + depth set) -> rosbag2 with ground-truth depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from depth_attn.data import bags
from depth_attn.data.kitti import (
    GT_SOURCES,
    CameraCalibration,
    FrameFiles,
    KittiDrive,
    project_velodyne,
    read_velodyne_bin,
)
from depth_attn.imageio import KITTI_DEPTH_SCALE, read_depth_png, read_rgb

PNG_SOURCES = ("annotated", "velodyne_raw")  # ground truth read from each frame's depth PNG


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


def stamps_metadata(nominal_rate_hz: Optional[float], source: Optional[Path] = None,
                    gt: Optional[str] = None) -> Dict[str, str]:
    """The custom data kitti2bag records in metadata.yaml: whether the stamps are recorded or nominal
    (and their rate), where the frames and their ground truth came from."""
    data = {bags.STAMPS_KEY: "nominal" if nominal_rate_hz else "recorded"}
    if nominal_rate_hz:
        data[bags.RATE_KEY] = f"{nominal_rate_hz:g}"
    if source is not None:
        data[bags.SOURCE_KEY] = str(Path(source).resolve())
    if gt is not None:
        data[bags.GT_KEY] = gt
    return data


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
    right_calib: Optional[CameraCalibration] = None,
    custom_data: Optional[Mapping[str, str]] = None,
) -> BagSummary:
    """Write ``frames`` as a bag: image (rgb8 or CompressedImage), camera info and, where the frame
    has it, ground truth (32FC1 metres, NaN = none), all with the frame's stamp; optional Velodyne
    clouds; /tf_static with the camera optical frame and the Velodyne frame. ``gt``: 'annotated' or
    'velodyne_raw' read each frame's depth PNG, 'velodyne' projects its scan. With ``right_calib``
    the frames' right images (and their ground truth) go on the right camera's topics as well, and
    /tf_static links the right optical frame to the left one. ``custom_data`` goes to metadata.yaml."""
    from tqdm import tqdm

    if gt not in GT_SOURCES:
        raise ValueError(f"--gt must be one of {GT_SOURCES}, got {gt!r}")
    if compress not in (None, "jpeg", "png"):
        raise ValueError(f"--compress must be jpeg or png, got {compress!r}")
    if not frames:
        raise ValueError("no frames to write")
    suffix = "/compressed" if compress else ""
    cameras = [(calib, bags.IMAGE_TOPIC + suffix, bags.INFO_TOPIC, bags.GT_TOPIC, bags.CAMERA_FRAME)]
    if right_calib is not None:
        cameras.append((right_calib, bags.RIGHT_IMAGE_TOPIC + suffix, bags.RIGHT_INFO_TOPIC, bags.RIGHT_GT_TOPIC,
                        bags.RIGHT_CAMERA_FRAME))
    with_gt = 0
    with bags.BagWriter(out, storage=storage, overwrite=overwrite, custom_data=custom_data) as writer:
        first = frames[0].stamp_ns
        transforms = []
        if calib.velo_to_cam is not None:
            transforms.append((bags.CAMERA_FRAME, bags.VELO_FRAME, calib.velo_to_optical))
        if right_calib is not None:
            transforms.append((bags.CAMERA_FRAME, bags.RIGHT_CAMERA_FRAME, right_calib.to_optical_of(calib)))
        if transforms:
            writer.write(bags.TF_STATIC_TOPIC, bags.tf_static_message(first, *transforms[0], *transforms[1:]), first)
        for frame in tqdm(frames, desc="kitti2bag", unit="frame", disable=not progress):
            stamp = frame.stamp_ns
            scan = read_velodyne_bin(frame.velodyne) if frame.velodyne is not None else None
            for cam_index, (cam, image_topic, info_topic, gt_topic, frame_id) in enumerate(cameras):
                image = frame.image if cam_index == 0 else frame.right_image
                if image is None:
                    continue
                rgb = read_rgb(image)
                h, w = rgb.shape[:2]
                if (w, h) != tuple(cam.image_wh):
                    cw, ch = cam.image_wh
                    raise ValueError(f"{image} is {w}x{h}, the calibration is for {cw}x{ch}")
                if compress:
                    writer.write(image_topic, bags.compressed_image_message(stamp, frame_id, rgb, compress), stamp)
                else:
                    writer.write(image_topic, bags.image_message(stamp, frame_id, rgb, "rgb8"), stamp)
                writer.write(info_topic, bags.camera_info_message(stamp, frame_id, cam.p_rect, (w, h)), stamp)
                png = frame.gt_depth if cam_index == 0 else frame.right_gt_depth
                depth = _ground_truth(png, scan, cam, gt, depth_scale)
                if depth is not None:
                    if depth.shape != (h, w):
                        gh, gw = depth.shape
                        raise ValueError(f"ground truth of {frame.name} is {gw}x{gh}, the image {w}x{h}")
                    writer.write(gt_topic, bags.image_message(stamp, frame_id, depth.astype("<f4"), "32FC1"), stamp)
                    with_gt += cam_index == 0
            if velodyne_topic and scan is not None:
                writer.write(bags.VELO_TOPIC, bags.pointcloud_message(stamp, bags.VELO_FRAME, scan), stamp)
        counts = dict(writer.counts)
    return BagSummary(Path(out), len(frames), with_gt, counts)


def write_drive_bag(drive: KittiDrive, out: Path, frames: Optional[Sequence[FrameFiles]] = None,
                    **kwargs) -> BagSummary:
    """``write_bag`` of a drive opened with ``KittiDrive.open``: its ground-truth source, its right
    camera if it was opened with one, and the metadata saying whether its stamps are nominal."""
    custom = stamps_metadata(drive.nominal_rate_hz, drive.drive_dir, drive.gt_source)
    custom.update(kwargs.pop("custom_data", None) or {})
    return write_bag(drive.frames if frames is None else frames, drive.calib, out, gt=drive.gt_source,
                     right_calib=drive.right_calib, custom_data=custom, **kwargs)


def _ground_truth(png: Optional[Path], scan: Optional[np.ndarray], calib: CameraCalibration, gt: str,
                  depth_scale: float) -> Optional[np.ndarray]:
    if gt in PNG_SOURCES and png is not None:
        return ground_truth_png(png, depth_scale)
    if gt == "velodyne" and scan is not None:
        return project_velodyne(scan, calib)
    return None

