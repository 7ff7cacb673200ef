"""Training data: one interface over the three sources a user has.

Every source yields :class:`Sample` (RGB uint8 at the camera's size, ground-truth metres with NaN for
"none" or no ground truth at all, the camera's intrinsics). The files are read by the project's
existing readers (``depth_attn.data.kitti``, ``depth_attn.imageio``, the rosbag2 frame iterator):
this module only lists frames and pairs them with their ground truth.

Sources (``data.train`` / ``data.val`` entries of a training config):

- ``kitti_raw``: a ``<date>/<date>_drive_<n>_sync`` folder (or any folder with ``image_0N/data``),
  the date folder's ``calib_*.txt``; ground truth ``groundtruth`` (annotated PNGs in
  ``proj_depth/groundtruth/image_0N``), ``velodyne_raw`` (``proj_depth/velodyne_raw/image_0N``),
  ``velodyne`` (``velodyne_points/data/*.bin`` projected), ``auto`` (the first of those that exists)
  or ``none``; ``split``: a split file (``<date>/<drive> <frame> l``) to select frames.
- ``images``: a folder of images, an optional folder of depth PNGs (same stem) and intrinsics from a
  JSON file (``intrinsics.json`` of the shared data) or a KITTI raw date folder (``calib``).
- ``bag``: a rosbag2 bag with an image topic and an optional ground-truth depth topic (ours from
  ``depth-attn kitti2bag``, or any bag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from depth_attn.data.kitti import (
    IMAGE_SUFFIXES,
    CameraCalibration,
    KittiDrive,
    KittiError,
    project_velodyne,
    read_intrinsics_json,
    read_velodyne_bin,
)
from depth_attn.geometry import Intrinsics
from depth_attn.imageio import KITTI_DEPTH_SCALE, read_depth_png, read_rgb
from depth_attn.paths import data_dir

GT_KINDS = ("auto", "groundtruth", "velodyne_raw", "velodyne", "none")


class DataError(ValueError):
    """A training data source that is missing, empty or malformed; the message names it."""


@dataclass
class Sample:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: Optional[np.ndarray]  # (H, W) float32 metres, NaN = no value; None = frame has no ground truth
    intrinsics: Optional[Intrinsics]
    name: str


@dataclass(frozen=True)
class FrameRef:
    """One frame of a source: where its image and ground truth are."""

    name: str
    image: Path
    depth_png: Optional[Path] = None
    depth_scale: float = KITTI_DEPTH_SCALE
    velodyne: Optional[Path] = None


def expand_path(text: str) -> Path:
    """``{data}`` stands for the shared data folder (``$DEPTH_ATTN_DATA`` or ``../shared/data``)."""
    return Path(str(text).replace("{data}", str(data_dir()))).expanduser()


def _images_in(folder: Path) -> List[Path]:
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"no images (.png, .jpg) in {folder}")
    return images


def read_split_file(path: Path) -> List[Tuple[str, str, str]]:
    """Eigen-style split lines ``<date>/<drive> <frame> l|r`` -> (drive path, frame, side)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            raise DataError(f"{path}:{number}: expected '<date>/<drive> <frame> [l|r]', got {line!r}")
        entries.append((parts[0], f"{int(parts[1]):010d}", parts[2] if len(parts) > 2 else "l"))
    if not entries:
        raise DataError(f"split file {path} lists no frames")
    return entries


class FrameSource:
    """A list of frames plus how to read one. Subclasses fill ``frames`` and ``intrinsics``."""

    kind = "frames"

    def __init__(self, description: str) -> None:
        self.description = description
        self.frames: List[FrameRef] = []
        self.intrinsics: Optional[Intrinsics] = None
        self.calib: Optional[CameraCalibration] = None

    def __len__(self) -> int:
        return len(self.frames)

    def frames_with_gt(self) -> int:
        return sum(1 for f in self.frames if f.depth_png is not None or f.velodyne is not None)

    @property
    def has_gt(self) -> bool:
        return self.frames_with_gt() > 0

    def load(self, index: int) -> Sample:
        ref = self.frames[index]
        try:
            rgb = read_rgb(ref.image)
        except (FileNotFoundError, ValueError) as exc:
            raise DataError(f"{self.description}: frame {ref.name}: {exc}") from exc
        depth = None
        if ref.depth_png is not None:
            try:
                depth = read_depth_png(ref.depth_png, ref.depth_scale)
            except ValueError as exc:
                raise DataError(f"{self.description}: frame {ref.name}: {exc}") from exc
            depth[depth <= 0] = np.nan
        elif ref.velodyne is not None:
            if self.calib is None:
                raise DataError(f"{self.description}: Velodyne ground truth needs the date's calibration")
            depth = project_velodyne(read_velodyne_bin(ref.velodyne), self.calib)
        if depth is not None and depth.shape != rgb.shape[:2]:
            raise DataError(
                f"{self.description}: frame {ref.name}: depth {depth.shape[1]}x{depth.shape[0]} does not match "
                f"image {rgb.shape[1]}x{rgb.shape[0]}"
            )
        return Sample(rgb, depth, self.intrinsics, ref.name)


# a training config's ground-truth names -> the drive reader's (depth_attn.data.kitti.GT_SOURCES)
_GT_SOURCE = {"auto": "auto", "groundtruth": "annotated", "velodyne_raw": "velodyne_raw", "velodyne": "velodyne",
              "none": "none"}


class KittiRawSource(FrameSource):
    """A KITTI raw drive, read by the one drive reader (``KittiDrive``, as kitti2bag reads it)."""

    kind = "kitti_raw"

    def __init__(
        self,
        path: Path,
        calib: Optional[Path] = None,
        gt: str = "auto",
        camera: int = 2,
        split: Optional[Path] = None,
    ) -> None:
        drive_dir = Path(path)
        super().__init__(f"KITTI drive {drive_dir}")
        if gt not in GT_KINDS:
            raise DataError(f"gt must be one of {', '.join(GT_KINDS)}, got {gt!r}")
        if camera not in (2, 3):
            raise DataError(f"camera must be 2 (left colour) or 3 (right colour), got {camera}")
        if not drive_dir.is_dir():
            raise DataError(f"KITTI drive folder not found: {drive_dir}")
        if gt == "velodyne" and camera != 2:
            raise DataError("projected Velodyne ground truth is for camera 2; use velodyne_raw for camera 3")
        right = camera == 3
        try:  # (the stamps are not used: nominal ones, so a drive without timestamps.txt trains too)
            drive = KittiDrive.open(drive_dir, calib, gt=_GT_SOURCE[gt], rate_hz=10.0, right=right)
        except KittiError as exc:
            raise DataError(f"{self.description}: {exc} (name the date folder with 'calib')") from exc
        self.calib = drive.calib  # the left camera's: Velodyne ground truth is projected into it
        self.intrinsics = (drive.right_calib if right else drive.calib).intrinsics
        self.gt_kind = next(name for name, source in _GT_SOURCE.items() if source == drive.gt_source)
        wanted = None
        if split is not None:
            wanted = {frame for drive_name, frame, side in read_split_file(Path(split))
                      if Path(drive_name).name == drive_dir.name and side == ("r" if right else "l")}
            if not wanted:
                raise DataError(f"split file {split} lists no frame of {drive_dir.name} (camera {camera})")
        for frame in drive.frames:
            image = frame.right_image if right else frame.image
            if image is None or (wanted is not None and frame.name not in wanted):
                continue
            self.frames.append(FrameRef(frame.name, image, depth_png=frame.right_gt_depth if right else frame.gt_depth,
                                        velodyne=frame.velodyne if drive.gt_source == "velodyne" else None))
        if not self.frames:
            raise DataError(f"{self.description}: no frame left after the split file")


class ImageFolderSource(FrameSource):
    kind = "images"

    def __init__(
        self,
        path: Path,
        depth: Optional[Path] = None,
        intrinsics: Optional[Path] = None,
        calib: Optional[Path] = None,
        depth_scale: Optional[float] = None,
    ) -> None:
        folder = Path(path)
        super().__init__(f"image folder {folder}")
        images = _images_in(folder)
        scale = depth_scale
        if intrinsics is not None:
            try:
                self.intrinsics, _p, _wh, json_scale = read_intrinsics_json(Path(intrinsics))
            except (KittiError, KeyError, json.JSONDecodeError) as exc:
                raise DataError(f"{self.description}: intrinsics: {exc}") from exc
            scale = scale or json_scale
        elif calib is not None:
            try:
                self.intrinsics = CameraCalibration.from_raw_dir(Path(calib)).intrinsics
            except KittiError as exc:
                raise DataError(f"{self.description}: {exc}") from exc
        depth_dir = Path(depth) if depth is not None else None
        if depth_dir is not None and not depth_dir.is_dir():
            raise DataError(f"{self.description}: ground-truth folder not found: {depth_dir}")
        for image in images:
            png = depth_dir / f"{image.stem}.png" if depth_dir is not None else None
            self.frames.append(
                FrameRef(image.stem, image, png if png is not None and png.is_file() else None,
                         scale or KITTI_DEPTH_SCALE)
            )
        if depth_dir is not None and not self.has_gt:
            raise DataError(f"{self.description}: no depth PNG in {depth_dir} matches an image's name")


class BagSource(FrameSource):
    """Frames of a rosbag2 bag, decoded by the project's bag frame iterator (read once, kept)."""

    kind = "bag"

    def __init__(self, path: Path, image_topic: Optional[str] = None, gt_topic: Optional[str] = "default") -> None:
        from depth_attn.data import bags

        bag = Path(path)
        super().__init__(f"bag {bag}")
        if not bag.exists():
            raise DataError(f"bag not found: {bag}")
        try:
            topics = bags.bag_topics(bag)
            gt = bags.GT_TOPIC if gt_topic == "default" else gt_topic
            frames = list(bags.iter_frames(bag, image_topic=image_topic, gt_topic=gt))
        except (bags.BagError, KittiError, ValueError, KeyError) as exc:
            raise DataError(f"{self.description}: {exc}") from exc
        if not frames:
            raise DataError(f"{self.description}: no image messages (topics: {', '.join(sorted(topics))})")
        self._samples = []
        for i, frame in enumerate(frames):
            depth = None
            if frame.gt is not None:
                with np.errstate(invalid="ignore"):
                    depth = np.where(frame.gt > 0, frame.gt, np.nan).astype(np.float32)
            self._samples.append(Sample(frame.rgb, depth, frame.intrinsics, f"{i:06d}"))
            self.frames.append(FrameRef(f"{i:06d}", bag))
        self.intrinsics = self._samples[0].intrinsics

    def frames_with_gt(self) -> int:
        return sum(1 for sample in self._samples if sample.depth is not None)

    def load(self, index: int) -> Sample:
        return self._samples[index]


SOURCE_TYPES = {"kitti_raw": KittiRawSource, "images": ImageFolderSource, "bag": BagSource}
_PATH_KEYS = ("path", "calib", "split", "depth", "intrinsics")


def make_source(spec: Dict[str, Any]) -> FrameSource:
    """One ``data.train``/``data.val`` entry -> its source. Paths may use ``{data}``."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in SOURCE_TYPES:
        raise DataError(f"data source type must be one of {', '.join(SOURCE_TYPES)}, got {kind!r} in {spec}")
    if "path" not in spec:
        raise DataError(f"data source {kind} needs a 'path'")
    for key in _PATH_KEYS:
        if spec.get(key) is not None:
            spec[key] = expand_path(spec[key])
    try:
        return SOURCE_TYPES[kind](**spec)
    except TypeError as exc:
        raise DataError(f"data source {kind}: {exc}") from exc


class FrameDataset:
    """Several sources as one indexable list of frames; optionally keeps decoded frames in memory
    (decoding a 1242x375 PNG costs more than the augmentation)."""

    def __init__(self, sources: Sequence[FrameSource], cache: bool = True) -> None:
        if not sources:
            raise DataError("no data source given")
        self.sources = list(sources)
        self.index: List[Tuple[int, int]] = [(s, i) for s, src in enumerate(self.sources) for i in range(len(src))]
        if not self.index:
            raise DataError("the data sources hold no frames")
        self.cache = cache
        self._cached: Dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> Sample:
        if item in self._cached:
            return self._cached[item]
        source, local = self.index[item]
        sample = self.sources[source].load(local)
        if self.cache:
            self._cached[item] = sample
        return sample

    def preload(self, progress: bool = False) -> None:
        """Decode every frame now: a corrupt file stops the run before anything is written."""
        from tqdm import tqdm

        for i in tqdm(range(len(self)), desc="reading frames", disable=not progress, unit="frame"):
            self[i]

    def describe(self) -> List[Dict[str, Any]]:
        shared = str(data_dir())
        return [
            {"source": s.description.replace(shared, "{data}"), "type": s.kind, "frames": len(s),
             "ground_truth": s.has_gt}
            for s in self.sources
        ]

    def frames_with_gt(self) -> int:
        return sum(source.frames_with_gt() for source in self.sources)


def build_dataset(specs: Sequence[Dict[str, Any]], cache: bool = True) -> FrameDataset:
    return FrameDataset([make_source(spec) for spec in specs], cache=cache)
