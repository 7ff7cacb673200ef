"""Frames with ground truth from a bag or from a held-out image folder, one iterator for both.

A held-out folder is laid out as the shared sets are: KITTI style ``image_*/NAME.{png,jpg}`` beside
``groundtruth_depth/NAME.png``, or NYU style ``rgb/rgb_N.jpg`` beside ``depth/sync_depth_N.png``, with an
``intrinsics.json`` (K, and ``depth_png_encoding`` "value / S" for the depth scale, else metres x 256).
Its frames are read exactly as ``depth-attn kitti2bag --images`` writes them into a bag (the same image
reader, the same depth PNG decoding, the same nominal 10 Hz stamps), so evaluating the folder and the
bag made from it gives the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

from depth_attn.data import bags
from depth_attn.data.frames import BagFrame
from depth_attn.geometry import Intrinsics

FOLDER_RATE_HZ = 10.0  # kitti2bag's default rate for loose frames
IMAGE_DIR_PATTERNS = ("image_*", "rgb")
GT_DIR_NAMES = ("groundtruth_depth", "depth")


@dataclass(frozen=True)
class HeldOutFolder:
    root: Path
    images: Path
    ground_truth: Path
    intrinsics: Optional[Intrinsics]
    depth_scale: float


def is_frame_folder(path: Path) -> bool:
    """A folder of images with a ground-truth folder beside them (and not a rosbag2 folder)."""
    path = Path(path)
    if not path.is_dir() or (path / "metadata.yaml").is_file():
        return False
    try:
        open_folder(path)
    except (FileNotFoundError, ValueError):
        return False
    return True


def open_folder(path: Path) -> HeldOutFolder:
    from depth_attn.data.kitti import read_intrinsics_json
    from depth_attn.imageio import KITTI_DEPTH_SCALE

    path = Path(path)
    images = sorted(d for pattern in IMAGE_DIR_PATTERNS for d in path.glob(pattern) if d.is_dir())
    gts = [path / name for name in GT_DIR_NAMES if (path / name).is_dir()]
    if not images or not gts:
        raise FileNotFoundError(f"{path} is not a held-out frame folder: it needs image_*/ (or rgb/) and "
                                f"groundtruth_depth/ (or depth/) beside each other")
    if len(images) > 1:
        raise ValueError(f"{path} has several image folders ({', '.join(d.name for d in images)}); "
                         "give the folder of one camera")
    intrinsics, scale = None, None
    if (path / "intrinsics.json").is_file():
        intrinsics, _, _, scale = read_intrinsics_json(path / "intrinsics.json")
    return HeldOutFolder(path, images[0], gts[0], intrinsics, scale or KITTI_DEPTH_SCALE)


def folder_frame_files(folder: HeldOutFolder) -> List:
    """The folder's frames (``kitti.FrameFiles``) in name order, with kitti2bag's nominal stamps."""
    from depth_attn.data.kitti import loose_frames, nominal_start_ns

    return loose_frames(folder.images, folder.ground_truth, FOLDER_RATE_HZ, start_ns=nominal_start_ns(folder.images))


def iter_folder_frames(path: Path, require_gt: bool = False) -> Iterator[BagFrame]:
    from depth_attn.data.kitti2bag import ground_truth_png
    from depth_attn.imageio import read_rgb

    folder = open_folder(path)
    index = 0
    for files in folder_frame_files(folder):
        gt = ground_truth_png(files.gt_depth, folder.depth_scale) if files.gt_depth is not None else None
        if gt is None and require_gt:
            continue
        yield BagFrame(index, files.stamp_ns, read_rgb(files.image), gt, folder.intrinsics)
        index += 1


def iter_frames(path: Path, image_topic: Optional[str] = None, gt_topic: Optional[str] = bags.GT_TOPIC,
                require_gt: bool = False) -> Iterator[BagFrame]:
    """``bags.iter_frames`` for a bag; the frames of a held-out folder otherwise (topics do not apply)."""
    if is_frame_folder(path):
        return iter_folder_frames(path, require_gt)
    return bags.iter_frames(path, image_topic, gt_topic, require_gt=require_gt)


def count_frames(path: Path, gt_topic: str = bags.GT_TOPIC) -> int:
    """Frames with ground truth: the bag's messages on ``gt_topic``, or the folder's depth PNGs."""
    if is_frame_folder(path):
        return sum(f.gt_depth is not None for f in folder_frame_files(open_folder(path)))
    return bags.count_messages(path, gt_topic)
