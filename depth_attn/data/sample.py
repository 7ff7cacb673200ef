"""The KITTI drives the demo and the tests play, and where they are.

* The **sample** the package carries (``sample/kitti`` of the checkout, ``share/depth_attn/sample/kitti``
  after ``colcon build``): frames 0-6 of drive 2011_09_26_drive_0023 (left camera, JPEG), their
  Velodyne depth (``proj_depth/velodyne_raw/image_02``), timestamps and the date's calibration. It
  is what ``depth-attn demo`` plays without the shared data. ``write_sample`` made it from the
  shared drive.
* The **clip** of the shared data (``$DEPTH_ATTN_DATA/kitti/sequence_sfnd``): 78 frames at 10 Hz with
  each frame's Velodyne scan, no timestamps, calibration in ``kitti/raw/2011_09_26``.
* Drives laid out in a temporary folder from the shared annotated frames and the Velodyne frame
  (linked, not copied; a timestamps.txt written here at 10 Hz), for tests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional

from depth_attn.paths import data_dir, share_dir

DATE = "2011_09_26"
START = "2011-09-26 13:02:25"  # any fixed instant: the shared frames come without their stamps
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")
SAMPLE_DRIVE = f"{DATE}_drive_0023_sync"
SAMPLE_FRAMES = 7
CLIP_RATE_HZ = 10.0


def sample_root() -> Path:
    """The package's KITTI sample (``<share>/sample/kitti``)."""
    return share_dir() / "sample" / "kitti"


def sample_drive() -> Path:
    """The sample drive folder; FileNotFoundError naming where it was looked for."""
    drive = sample_root() / DATE / SAMPLE_DRIVE
    if not (drive / "image_02" / "data").is_dir():
        raise FileNotFoundError(f"the package's KITTI sample is missing: {drive} (a broken checkout or install?)")
    return drive


def clip_dir(kitti: Optional[Path] = None) -> Path:
    """The shared 78-frame clip (``<data>/kitti/sequence_sfnd``); it may not exist."""
    return (Path(kitti) if kitti else data_dir() / "kitti") / "sequence_sfnd"


def clip_calib_dir(kitti: Optional[Path] = None) -> Path:
    """The clip's calibration: the shared raw layout's date folder."""
    return (Path(kitti) if kitti else data_dir() / "kitti") / "raw" / DATE


def clip_available(kitti: Optional[Path] = None) -> bool:
    return (clip_dir(kitti) / "image_02" / "data").is_dir() and \
        (clip_calib_dir(kitti) / "calib_cam_to_cam.txt").is_file()


def write_sample(out: Path, raw_date_dir: Optional[Path] = None, frames: int = SAMPLE_FRAMES,
                 jpeg_quality: int = 90) -> Path:
    """(Re)make the sample under ``out`` (``out/2011_09_26/...``) from the shared raw drive: the left
    images as JPEG, the Velodyne depth PNGs and the calibration copied byte for byte, the first
    ``frames`` lines of timestamps.txt. Returns the drive folder."""
    import cv2

    from depth_attn.imageio import read_rgb

    source_date = Path(raw_date_dir) if raw_date_dir else data_dir() / "kitti" / "raw" / DATE
    source = source_date / SAMPLE_DRIVE
    date_dir = Path(out) / DATE
    drive = date_dir / SAMPLE_DRIVE
    for name in CALIB_FILES:
        _copy(source_date / name, date_dir / name)
    names = sorted(p.stem for p in (source / "image_02" / "data").glob("*.png"))[:frames]
    if len(names) < frames:
        raise FileNotFoundError(f"{source / 'image_02' / 'data'} has {len(names)} frames, {frames} are needed")
    for name in names:
        image = drive / "image_02" / "data" / f"{name}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(read_rgb(source / "image_02" / "data" / f"{name}.png"), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(image), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
            raise OSError(f"cannot write {image}")
        gt = Path("proj_depth") / "velodyne_raw" / "image_02" / f"{name}.png"
        _copy(source / gt, drive / gt)
    lines = (source / "image_02" / "timestamps.txt").read_text().splitlines()[:frames]
    (drive / "image_02" / "timestamps.txt").write_text("\n".join(lines) + "\n")
    return drive


def _copy(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise FileNotFoundError(f"shared file missing: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


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
