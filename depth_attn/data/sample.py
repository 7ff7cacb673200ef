"""A KITTI raw drive laid out from the shared frames ($DEPTH_ATTN_DATA/kitti), for the demo and tests.

The shared annotated frames (0000000005, 0000000050, 0000000100 of a 2011_09_26 drive) and the
Velodyne frame are linked (not copied) into the raw layout, with the date folder's calibration and a
timestamps.txt written here (10 Hz)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional

from depth_attn.paths import data_dir

DATE = "2011_09_26"
START = "2011-09-26 13:02:25"  # any fixed instant: the shared frames come without their stamps
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")


def _link(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise FileNotFoundError(f"shared file missing: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)


def _timestamps(path: Path, count: int, rate_hz: float = 10.0) -> None:
    """KITTI's timestamps.txt: one 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' line per frame."""
    import datetime as dt

    start = dt.datetime.strptime(START, "%Y-%m-%d %H:%M:%S")
    lines = []
    for i in range(count):
        ns = int(round(i * 1e9 / rate_hz))
        moment = start + dt.timedelta(seconds=ns // 1_000_000_000)
        lines.append(f"{moment:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _calibration(date_dir: Path, kitti: Path) -> None:
    for name in CALIB_FILES:
        target = date_dir / name
        if not target.exists():
            _link(kitti / "raw_calib_2011_09_26" / name, target)


def layout_annotated_drive(
    root: Path,
    drive: str = "0001",
    extra_without_gt: Iterable[str] = (),
    kitti: Optional[Path] = None,
) -> Path:
    """``root/2011_09_26/2011_09_26_drive_<drive>_sync`` with the shared annotated frames and their depth
    under proj_depth/groundtruth/image_02; ``extra_without_gt`` names more frames (e.g. '0000000006')
    that reuse frame 0000000005's image and have no ground truth. Returns the drive folder."""
    kitti = Path(kitti) if kitti else data_dir() / "kitti"
    annotated = kitti / "annotated"
    date_dir = Path(root) / DATE
    drive_dir = date_dir / f"{DATE}_drive_{drive}_sync"
    _calibration(date_dir, kitti)
    names = sorted(p.stem for p in (annotated / "image_02").glob("*.png"))
    if not names:
        raise FileNotFoundError(f"no annotated frames in {annotated / 'image_02'}")
    for name in names:
        _link(annotated / "image_02" / f"{name}.png", drive_dir / "image_02" / "data" / f"{name}.png")
        _link(annotated / "groundtruth_depth" / f"{name}.png",
              drive_dir / "proj_depth" / "groundtruth" / "image_02" / f"{name}.png")
    for name in extra_without_gt:
        _link(annotated / "image_02" / f"{names[0]}.png", drive_dir / "image_02" / "data" / f"{name}.png")
    last = max(int(n) for n in list(names) + list(extra_without_gt))
    _timestamps(drive_dir / "image_02" / "timestamps.txt", last + 1)
    return drive_dir


def layout_velodyne_drive(root: Path, drive: str = "0002", kitti: Optional[Path] = None) -> Path:
    """A one-frame drive (frame 0000000000) from the shared Velodyne frame (image + scan)."""
    kitti = Path(kitti) if kitti else data_dir() / "kitti"
    source = kitti / "velodyne_frame"
    date_dir = Path(root) / DATE
    drive_dir = date_dir / f"{DATE}_drive_{drive}_sync"
    _calibration(date_dir, kitti)
    _link(source / "image_2" / "000008.png", drive_dir / "image_02" / "data" / "0000000000.png")
    _link(source / "velodyne" / "000008.bin", drive_dir / "velodyne_points" / "data" / "0000000000.bin")
    _timestamps(drive_dir / "image_02" / "timestamps.txt", 1)
    _timestamps(drive_dir / "velodyne_points" / "timestamps.txt", 1)
    return drive_dir
