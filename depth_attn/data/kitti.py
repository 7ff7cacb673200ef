"""KITTI raw data: the drive layout, calibration files, timestamps and Velodyne -> image depth.

Layout (``specs/conventions.md``)::

    <date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <date>/<date>_drive_<n>_sync/image_02/data/*.png, image_02/timestamps.txt
    <date>/<date>_drive_<n>_sync/velodyne_points/data/*.bin, velodyne_points/timestamps.txt
    <date>_drive_<n>_sync/proj_depth/groundtruth/image_02/*.png   (depth benchmark annotations)
    <date>_drive_<n>_sync/proj_depth/velodyne_raw/image_02/*.png  (one scan projected: depth completion)

``image_03`` (right camera) mirrors ``image_02``. A folder with ``image_02/data`` but no
``timestamps.txt`` (e.g. a clip cut from a drive) gets nominal stamps at a given rate from a fixed
start (midnight UTC of the date in the calibration folder's name).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from depth_attn.geometry import Intrinsics

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CAMERAS = ("02", "03")  # left and right colour cameras
# where a drive's ground truth comes from: depth PNGs (annotated benchmark depth or one projected scan,
# KITTI's depth-completion layout), each Velodyne scan projected here, or none
GT_SOURCES = ("annotated", "velodyne_raw", "velodyne", "none")
GT_DIRS = {"annotated": "groundtruth", "velodyne_raw": "velodyne_raw"}  # proj_depth/<dir>/image_0X
DEFAULT_NOMINAL_START_NS = 946_684_800 * 1_000_000_000  # 2000-01-01 00:00:00 UTC, when no folder names a date


class KittiError(ValueError):
    """A KITTI folder or file that is missing or malformed; the message names it."""


def read_calib_file(path: Path) -> Dict[str, np.ndarray]:
    """``key: v1 v2 ...`` lines -> {key: float64 array}; non-numeric lines (calib_time) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise KittiError(f"calibration file not found: {path}")
    values: Dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    return values


def _take(values: Dict[str, np.ndarray], key: str, size: int, path: Path) -> np.ndarray:
    if key not in values or values[key].size != size:
        raise KittiError(f"{path}: no {key} with {size} values")
    return values[key]


def _homogeneous(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation.reshape(3, 3)
    m[:3, 3] = translation.reshape(3)
    return m


@dataclass(frozen=True)
class CameraCalibration:
    """The rectified left colour camera (image_02) and the Velodyne extrinsics of one recording day.

    ``p_rect`` is P_rect_02 (3x4), ``r_rect`` is R_rect_00 (3x3, rectifying rotation of the reference
    camera), ``velo_to_cam`` maps Velodyne points to the unrectified reference camera (4x4, None when
    the date folder has no Velodyne calibration), ``image_wh`` is the rectified image size."""

    p_rect: np.ndarray
    r_rect: np.ndarray
    velo_to_cam: Optional[np.ndarray]
    image_wh: Tuple[int, int]

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_matrix(self.p_rect)

    @property
    def velo_to_image(self) -> np.ndarray:
        """3x4: homogeneous Velodyne point -> homogeneous pixel (P_rect_02 . R_rect_00 . T_velo_to_cam)."""
        if self.velo_to_cam is None:
            raise KittiError("this calibration has no Velodyne-to-camera transform")
        r_rect = np.eye(4)
        r_rect[:3, :3] = self.r_rect
        return self.p_rect @ r_rect @ self.velo_to_cam

    @property
    def optical_offset(self) -> np.ndarray:
        """This camera's rectified optical frame relative to the rectified reference camera (cam 0):
        K^-1 . P[:, 3] (metres; P_rect_0X = K [I | offset])."""
        return np.linalg.solve(self.p_rect[:, :3], self.p_rect[:, 3])

    def to_optical_of(self, other: CameraCalibration) -> np.ndarray:
        """4x4: a point in this camera's rectified optical frame -> the same point in ``other``'s (the
        rectified cameras share their rotation: a pure translation)."""
        transform = np.eye(4)
        transform[:3, 3] = other.optical_offset - self.optical_offset
        return transform

    @property
    def velo_to_optical(self) -> np.ndarray:
        """4x4: Velodyne point -> metres in the rectified image_02 optical frame (the frame the depth
        is in: z forward, x right, y down; P_rect_02's fourth column is the camera's offset)."""
        if self.velo_to_cam is None:
            raise KittiError("this calibration has no Velodyne-to-camera transform")
        k = self.p_rect[:, :3]
        offset = np.linalg.solve(k, self.p_rect[:, 3])
        r_rect = np.eye(4)
        r_rect[:3, :3] = self.r_rect
        shift = np.eye(4)
        shift[:3, 3] = offset
        return shift @ r_rect @ self.velo_to_cam

    @classmethod
    def from_raw_dir(cls, calib_dir: Path, camera: str = "02") -> CameraCalibration:
        """From a KITTI raw date folder (calib_cam_to_cam.txt, calib_velo_to_cam.txt if present), for
        the left (``camera`` '02') or right ('03') colour camera."""
        if camera not in CAMERAS:
            raise KittiError(f"camera must be one of {CAMERAS} (left, right colour), got {camera!r}")
        calib_dir = Path(calib_dir)
        cam_path = calib_dir / "calib_cam_to_cam.txt"
        cam = read_calib_file(cam_path)
        p_rect = _take(cam, f"P_rect_{camera}", 12, cam_path).reshape(3, 4)
        r_rect = _take(cam, "R_rect_00", 9, cam_path).reshape(3, 3)
        size = _take(cam, f"S_rect_{camera}", 2, cam_path)
        velo_path = calib_dir / "calib_velo_to_cam.txt"
        velo_to_cam = None
        if velo_path.is_file():
            velo = read_calib_file(velo_path)
            velo_to_cam = _homogeneous(_take(velo, "R", 9, velo_path), _take(velo, "T", 3, velo_path))
        return cls(p_rect, r_rect, velo_to_cam, (int(round(size[0])), int(round(size[1]))))

    @classmethod
    def from_object_file(cls, path: Path, image_wh: Tuple[int, int]) -> CameraCalibration:
        """From a KITTI object-benchmark calib file (P2, R0_rect, Tr_velo_to_cam)."""
        path = Path(path)
        values = read_calib_file(path)
        p_rect = _take(values, "P2", 12, path).reshape(3, 4)
        r_rect = _take(values, "R0_rect", 9, path).reshape(3, 3)
        tr = _take(values, "Tr_velo_to_cam", 12, path).reshape(3, 4)
        return cls(p_rect, r_rect, _homogeneous(tr[:, :3], tr[:, 3]), image_wh)

    @classmethod
    def from_intrinsics(
        cls, k: Intrinsics, image_wh: Tuple[int, int], p: Optional[np.ndarray] = None
    ) -> CameraCalibration:
        """Loose frames: P given (3x4), else [K | 0]; no Velodyne."""
        if p is not None:
            p_rect = np.asarray(p, dtype=np.float64).reshape(3, 4)
        else:
            p_rect = np.hstack([k.matrix(), np.zeros((3, 1))])
        return cls(p_rect, np.eye(3), None, image_wh)


def read_velodyne_bin(path: Path) -> np.ndarray:
    """(N, 4) float32: x, y, z (metres, Velodyne frame), reflectance."""
    path = Path(path)
    if not path.is_file():
        raise KittiError(f"Velodyne scan not found: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise KittiError(f"{path}: size is not a whole number of (x, y, z, reflectance) float32 records")
    return raw.reshape(-1, 4)


def project_velodyne(points: np.ndarray, calib: CameraCalibration) -> np.ndarray:
    """Sparse depth (float32 metres, NaN = none) of a scan in the rectified image_02.

    p = P_rect_02 . R_rect_00 . T_velo_to_cam . [x y z 1]^T; pixel column round(u) - 1 and row
    round(v) - 1 (the common KITTI evaluation code's convention), depth p2, points with p2 <= 0
    dropped, the nearest point kept where several fall on one pixel."""
    width, height = calib.image_wh
    xyz1 = np.hstack([points[:, :3].astype(np.float64), np.ones((len(points), 1))])
    p = xyz1 @ calib.velo_to_image.T
    z = p[:, 2]
    front = z > 0
    p, z = p[front], z[front]
    cols = np.round(p[:, 0] / z).astype(np.int64) - 1
    rows = np.round(p[:, 1] / z).astype(np.int64) - 1
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    cols, rows, z = cols[inside], rows[inside], z[inside]
    depth = np.full(height * width, np.inf)
    np.minimum.at(depth, rows * width + cols, z)
    depth[np.isinf(depth)] = np.nan
    return depth.reshape(height, width).astype(np.float32)


def parse_timestamp(text: str) -> int:
    """'2011-09-26 13:02:25.964389445' (UTC) -> integer nanoseconds since the epoch."""
    text = text.strip()
    date_part, _, frac = text.partition(".")
    try:
        base = dt.datetime.strptime(date_part, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise KittiError(f"not a KITTI timestamp: {text!r}") from None
    frac = (frac + "000000000")[:9] if frac else "0"
    if not frac.isdigit():
        raise KittiError(f"not a KITTI timestamp: {text!r}")
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


def read_timestamps(path: Path) -> List[int]:
    path = Path(path)
    if not path.is_file():
        raise KittiError(f"timestamps file not found: {path}")
    return [parse_timestamp(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class FrameFiles:
    """The files of one frame of a drive (or of a loose image set)."""

    index: int
    name: str
    stamp_ns: int
    image: Path
    gt_depth: Optional[Path] = None
    velodyne: Optional[Path] = None
    right_image: Optional[Path] = None  # image_03, when the right camera is wanted
    right_gt_depth: Optional[Path] = None


def _frame_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise KittiError(f"{path}: KITTI frame files are named by their frame number (0000000005.png)") from None


def nominal_start_ns(*folders: Path) -> int:
    """The fixed start of nominal stamps: midnight UTC of the first YYYY_MM_DD found in the folders'
    names (a KITTI date folder), else 2000-01-01."""
    for folder in folders:
        for part in reversed(Path(folder).resolve().parts):
            match = re.match(r"(\d{4})_(\d{2})_(\d{2})", part)
            if match:
                try:
                    day = dt.datetime(*map(int, match.groups()), tzinfo=dt.timezone.utc)
                except ValueError:
                    continue
                return int(day.timestamp()) * 1_000_000_000
    return DEFAULT_NOMINAL_START_NS


def _images(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _gt_dir(drive_dir: Path, source: str, camera: str) -> Path:
    return drive_dir / "proj_depth" / GT_DIRS[source] / f"image_{camera}"


def resolve_gt_source(drive_dir: Path, gt: str = "auto", gt_dir: Optional[Path] = None) -> str:
    """``auto``: a given ``gt_dir`` or proj_depth/groundtruth -> 'annotated', else proj_depth/velodyne_raw
    -> 'velodyne_raw', else velodyne_points/data -> 'velodyne', else 'none'. A named source is checked."""
    drive_dir = Path(drive_dir)
    if gt == "auto":
        if gt_dir is not None:
            return "annotated"
        for source in ("annotated", "velodyne_raw"):
            if _images(_gt_dir(drive_dir, source, "02")):
                return source
        return "velodyne" if (drive_dir / "velodyne_points" / "data").is_dir() else "none"
    if gt not in GT_SOURCES:
        raise KittiError(f"ground truth must be auto or one of {GT_SOURCES}, got {gt!r}")
    if gt in GT_DIRS and gt_dir is None and not _images(_gt_dir(drive_dir, gt, "02")):
        raise KittiError(f"{drive_dir} has no {gt} ground truth: {_gt_dir(drive_dir, gt, '02')} holds no PNGs "
                         "(name the folder with --gt-dir, or choose another --gt)")
    return gt


@dataclass
class KittiDrive:
    """One ``<date>_drive_<n>_sync`` folder (or a clip in that layout) with its date's calibration.

    ``gt_source`` is where the frames' ground truth comes from (see ``GT_SOURCES``); ``right_calib``
    is set when the right camera was asked for; ``nominal_rate_hz`` when the stamps are nominal
    (no timestamps.txt, or a rate was asked for) rather than recorded."""

    drive_dir: Path
    calib: CameraCalibration
    frames: List[FrameFiles]
    gt_source: str = "annotated"
    right_calib: Optional[CameraCalibration] = None
    nominal_rate_hz: Optional[float] = None

    @classmethod
    def open(
        cls,
        drive_dir: Path,
        calib_dir: Optional[Path] = None,
        gt_dir: Optional[Path] = None,
        velodyne: bool = False,
        *,
        gt: str = "auto",
        rate_hz: Optional[float] = None,
        right: bool = False,
    ) -> KittiDrive:
        """``gt_dir``: depth PNGs named like the images (default: found by ``gt``, see
        ``resolve_gt_source``); ``velodyne``: attach each frame's scan (also when ``gt`` is velodyne);
        ``rate_hz``: nominal stamps at this rate instead of image_02/timestamps.txt (needed when the
        folder has none); ``right``: also the right camera (image_03, its ground truth)."""
        drive_dir = Path(drive_dir)
        image_dir = drive_dir / "image_02" / "data"
        if not image_dir.is_dir():
            raise KittiError(f"{drive_dir} is not a KITTI raw drive: {image_dir} is missing")
        calib_dir = Path(calib_dir) if calib_dir else drive_dir.parent
        if not (calib_dir / "calib_cam_to_cam.txt").is_file():
            raise KittiError(f"no calib_cam_to_cam.txt in {calib_dir}: pass the date folder with the calibration "
                             "(--calib-dir .../2011_09_26)")
        calib = CameraCalibration.from_raw_dir(calib_dir)
        right_calib = CameraCalibration.from_raw_dir(calib_dir, "03") if right else None
        source = resolve_gt_source(drive_dir, gt, gt_dir)
        velodyne = velodyne or source == "velodyne"
        images = _images(image_dir)
        if not images:
            raise KittiError(f"no images in {image_dir}")
        stamps = _drive_stamps(drive_dir, images, rate_hz, calib_dir)
        png_dirs = {"02": Path(gt_dir) if gt_dir else None, "03": None}
        if source in GT_DIRS:
            png_dirs = {cam: png_dirs[cam] or _gt_dir(drive_dir, source, cam) for cam in CAMERAS}
        velo_dir = drive_dir / "velodyne_points" / "data"
        if velodyne and not velo_dir.is_dir():
            raise KittiError(f"{velo_dir} is missing (needed for Velodyne ground truth or point clouds)")
        right_dir = drive_dir / "image_03" / "data"
        if right and not right_dir.is_dir():
            raise KittiError(f"{right_dir} is missing (needed for the right camera)")
        frames = []
        for image, stamp in zip(images, stamps, strict=True):
            index = _frame_number(image)
            right_image = None
            if right:
                right_image = next((p for p in (right_dir / f"{image.stem}{ext}" for ext in IMAGE_SUFFIXES)
                                    if p.is_file()), None)
            frames.append(FrameFiles(
                index, image.stem, stamp, image,
                _existing(png_dirs["02"] / f"{image.stem}.png" if png_dirs["02"] else None),
                _existing(velo_dir / f"{image.stem}.bin") if velodyne else None,
                right_image,
                _existing(png_dirs["03"] / f"{image.stem}.png" if right and png_dirs["03"] else None),
            ))
        if source in GT_DIRS and not any(f.gt_depth for f in frames):
            raise KittiError(f"no ground-truth PNG in {png_dirs['02']} is named like an image of {image_dir}")
        return cls(drive_dir, calib, frames, source, right_calib, float(rate_hz) if rate_hz is not None else None)


def _existing(path: Optional[Path]) -> Optional[Path]:
    return path if path is not None and path.is_file() else None


def _drive_stamps(drive_dir: Path, images: List[Path], rate_hz: Optional[float], calib_dir: Path) -> List[int]:
    """Each image's stamp: nominal (frame number / rate from a fixed start) when ``rate_hz`` is given,
    else its line of image_02/timestamps.txt."""
    if rate_hz is not None:
        if rate_hz <= 0:
            raise KittiError(f"--rate must be > 0, got {rate_hz:g}")
        start = nominal_start_ns(calib_dir, drive_dir)
        period = 1e9 / rate_hz
        return [start + int(round(_frame_number(image) * period)) for image in images]
    path = drive_dir / "image_02" / "timestamps.txt"
    if not path.is_file():
        raise KittiError(f"{drive_dir} has no image_02/timestamps.txt: give a frame rate (--rate 10) for nominal "
                         "stamps")
    stamps = read_timestamps(path)
    out = []
    for image in images:
        index = _frame_number(image)
        if index >= len(stamps):
            raise KittiError(f"{path} has no line for frame {image.name}")
        out.append(stamps[index])
    return out


def read_intrinsics_json(
    path: Path,
) -> Tuple[Intrinsics, Optional[np.ndarray], Optional[Tuple[int, int]], Optional[float]]:
    """The intrinsics.json of the shared data: (K, P (3x4) if given, image (w, h) if given, depth PNG scale
    if its encoding says 'value / S')."""
    import json
    import re

    path = Path(path)
    if not path.is_file():
        raise KittiError(f"intrinsics file not found: {path}")
    data = json.loads(path.read_text())
    k = data.get("K")
    if isinstance(k, dict):
        intrinsics = Intrinsics.checked(k["fx"], k["fy"], k["cx"], k["cy"])
    elif k is not None:
        intrinsics = Intrinsics.from_matrix(k)
    else:
        raise KittiError(f"{path}: no 'K' (fx, fy, cx, cy)")
    p = next((np.asarray(data[key], dtype=np.float64) for key in ("P_rect_02", "P2", "P") if key in data), None)
    wh = tuple(data["image_size_wh"]) if "image_size_wh" in data else None
    scale = None
    match = re.search(r"value\s*/\s*([0-9.]+)", str(data.get("depth_png_encoding", "")))
    if match:
        scale = float(match.group(1))
    return intrinsics, p, wh, scale  # type: ignore[return-value]


def loose_frames(images_dir: Path, gt_dir: Optional[Path], rate_hz: float, start_ns: int = 0) -> List[FrameFiles]:
    """Any folder of images (+ a folder of depth PNGs with the same stem) as frames at ``rate_hz``."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise KittiError(f"image folder not found: {images_dir}")
    if rate_hz <= 0:
        raise KittiError("--rate must be > 0")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise KittiError(f"no images in {images_dir}")
    period = int(round(1e9 / rate_hz))
    frames = []
    for i, image in enumerate(images):
        gt = None
        if gt_dir is not None:
            gt = _matching_depth(Path(gt_dir), image.stem)
        frames.append(FrameFiles(i, image.stem, start_ns + i * period, image, gt))
    return frames


def _matching_depth(gt_dir: Path, stem: str) -> Optional[Path]:
    """The depth PNG for an image: same stem, or the NYU naming (rgb_00000 -> sync_depth_00000)."""
    candidates = [gt_dir / f"{stem}.png"]
    if stem.startswith("rgb_"):
        candidates.append(gt_dir / f"sync_depth_{stem[4:]}.png")
    return next((c for c in candidates if c.is_file()), None)
