"""Frames of a bag: the colour image with the ground truth and camera info of the same stamp, as
numpy. Every pixel is decoded by :mod:`depth_attn.encodings` (the one decoding path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from depth_attn import camera_info, encodings
from depth_attn.data.bag_common import COMPRESSED_TYPE, GT_TOPIC, IMAGE_TOPIC, IMAGE_TYPE, BagError, stamp_to_ns
from depth_attn.data.bag_reader import bag_topics, iter_messages
from depth_attn.geometry import Intrinsics


def decode_rgb(msg) -> np.ndarray:
    """An Image or CompressedImage message (rosbags types) -> HxWx3 uint8 RGB."""
    try:
        if hasattr(msg, "format"):
            return encodings.decode_compressed(msg.data, msg.format)
        rgb = encodings.to_rgb(msg.data, msg.encoding, int(msg.width), int(msg.height), int(msg.step),
                               bool(msg.is_bigendian))
    except encodings.EncodingError as exc:
        raise BagError(f"cannot decode an image: {exc}") from exc
    return rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb)


def decode_depth(msg) -> np.ndarray:
    """A 32FC1 (metres, NaN = none) or 16UC1 (millimetres, 0 = none) depth Image -> float32 metres, NaN = none."""
    try:
        depth = encodings.to_depth(msg.data, msg.encoding, int(msg.width), int(msg.height), int(msg.step),
                                   bool(msg.is_bigendian))
    except encodings.EncodingError as exc:
        raise BagError(f"cannot decode a depth image: {exc}") from exc
    return depth if depth.flags.writeable and depth.flags.c_contiguous else np.array(depth)


def camera_info_intrinsics(msg, image_wh: Optional[Tuple[int, int]] = None) -> Intrinsics:
    """The projection a depth node uses for a rectified image of ``image_wh`` pixels: P with binning and
    roi applied, as the depth node reads a camera info (depth_attn.camera_info); ``BadCameraInfo`` where
    the depth node would refuse it."""
    return camera_info.intrinsics_for_image(camera_info.CameraInfoFields.of(msg), image_wh)


def _frame_intrinsics(msg, rgb: np.ndarray) -> Optional[Intrinsics]:
    """A frame's intrinsics, or None (the network's own camera) where the depth node would drop the
    camera info as unusable, as it then runs on the image alone."""
    if msg is None:
        return None
    try:
        return camera_info_intrinsics(msg, (rgb.shape[1], rgb.shape[0]))
    except camera_info.BadCameraInfo:
        return None


@dataclass
class BagFrame:
    index: int
    stamp_ns: int
    rgb: np.ndarray
    gt: Optional[np.ndarray]
    intrinsics: Optional[Intrinsics]


def find_image_topic(topics: Dict[str, str], preferred: Optional[str] = None) -> str:
    """``preferred`` if the bag has it; else the KITTI left camera (raw, then compressed); else the first
    colour image topic by name."""
    if preferred:
        if preferred not in topics:
            raise BagError(f"the bag has no topic {preferred}; it has {', '.join(sorted(topics))}")
        return preferred
    if IMAGE_TOPIC in topics:
        return IMAGE_TOPIC
    if IMAGE_TOPIC + "/compressed" in topics:
        return IMAGE_TOPIC + "/compressed"
    candidates = [t for t, ty in topics.items() if ty in (IMAGE_TYPE, COMPRESSED_TYPE) and "depth" not in t]
    if not candidates:
        raise BagError(f"the bag has no colour image topic; topics: {', '.join(sorted(topics)) or 'none'}")
    return sorted(candidates)[0]


def _info_topic_for(image_topic: str, topics: Dict[str, str]) -> Optional[str]:
    base = image_topic[: -len("/compressed")] if image_topic.endswith("/compressed") else image_topic
    candidate = base.rsplit("/", 1)[0] + "/camera_info"
    return candidate if candidate in topics else None


def iter_frames(
    path: Path,
    image_topic: Optional[str] = None,
    gt_topic: Optional[str] = GT_TOPIC,
    require_gt: bool = False,
) -> Iterator[BagFrame]:
    """Frames of a bag in stamp order: the RGB image with the ground truth and camera info of the
    same stamp (None where the bag has none). The bag's messages must come in stamp order per topic."""
    topics = bag_topics(path)
    image_topic = find_image_topic(topics, image_topic)
    info_topic = _info_topic_for(image_topic, topics)
    if gt_topic and gt_topic not in topics:
        if require_gt:
            raise BagError(f"the bag {path} has no ground-truth topic {gt_topic}")
        gt_topic = None
    wanted = [t for t in (image_topic, info_topic, gt_topic) if t]
    pending: Dict[int, Dict[str, object]] = {}
    index = 0

    def ready(before_ns: Optional[int]) -> List[BagFrame]:
        nonlocal index
        out = []
        for stamp in sorted(s for s in pending if before_ns is None or s < before_ns):
            parts = pending.pop(stamp)
            if "rgb" not in parts:
                continue
            rgb = parts["rgb"]
            out.append(BagFrame(index, stamp, rgb, parts.get("gt"), _frame_intrinsics(parts.get("info"), rgb)))  # type: ignore[arg-type]
            index += 1
        return out

    try:
        for message in iter_messages(path, wanted):
            msg = message.deserialize()
            stamp = stamp_to_ns(msg.header.stamp)
            yield from ready(stamp)
            parts = pending.setdefault(stamp, {})
            if message.topic == image_topic:
                parts["rgb"] = decode_rgb(msg)
            elif message.topic == gt_topic:
                parts["gt"] = decode_depth(msg)
            else:
                parts["info"] = msg  # read with the image's size, once the frame is whole
    except BagError:
        # The last frame before the damage may lack parts: it is yielded as read, then the error goes on
        yield from ready(None)
        raise
    yield from ready(None)


def iter_images(bag_path: Path, topic: Optional[str] = None) -> Iterator[np.ndarray]:
    """Every colour image of a bag as HxWx3 uint8 RGB, in order (for calibration sets and the like)."""
    topics = bag_topics(Path(bag_path))
    topic = find_image_topic(topics, topic)
    for message in iter_messages(Path(bag_path), [topic]):
        yield decode_rgb(message.deserialize())
