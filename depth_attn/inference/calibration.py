"""int8 calibration frames, one source and one selection for every int8 backend (TensorRT's entropy
calibrator and ONNX Runtime's static quantisation): the images of a folder in name order, or the
image frames of a rosbag2 recording, the first ``limit`` of them, preprocessed exactly as at
inference. ``calibration_fingerprint`` is what a cached int8 artefact is keyed by: the number of
frames and a checksum of their contents (another set of frames is another artefact)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Dict, Iterable, List

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def calibration_files(folder: Path) -> List[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_bag(source: Path) -> bool:
    source = Path(source)
    if source.is_file():
        return source.suffix in (".mcap", ".db3")
    if not source.is_dir():
        return False
    return (source / "metadata.yaml").is_file() or any(p.suffix in (".mcap", ".db3") for p in source.iterdir())


def _bag_images(source: Path, limit: int) -> Iterable[np.ndarray]:
    from depth_attn.data.bags import iter_images

    for count, rgb in enumerate(iter_images(source)):
        if count >= limit:
            break
        yield rgb


def calibration_images(source: Path, limit: int = 100) -> Iterable[np.ndarray]:
    """RGB uint8 frames for int8 calibration: the images of a folder (sorted by name), or the image
    frames of a rosbag2 recording (a .mcap/.db3 file or a bag folder with metadata.yaml)."""
    source = Path(source)
    if limit < 1:
        raise ValueError(f"the number of calibration frames must be >= 1, got {limit}")
    if is_bag(source):
        yield from _bag_images(source, limit)
        return
    if not source.is_dir():
        raise FileNotFoundError(f"calibration source {source} is neither a folder of images nor a rosbag2 recording")
    from depth_attn.imageio import read_rgb

    files = calibration_files(source)[:limit]
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in calibration folder {source}")
    for path in files:
        yield read_rgb(path)


def calibration_fingerprint(source: Path, limit: int) -> Dict[str, object]:
    """What identifies a calibration set, for the int8 artefact's key: the frame count asked for,
    the files read (a bag's files, or the first ``limit`` images of a folder) and a sha256 of their
    contents, so new or edited frames make another artefact wherever they live."""
    source = Path(source).resolve()
    if is_bag(source):
        files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    else:
        files = calibration_files(source)[:limit]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"frames": limit, "files": [(p.name, p.stat().st_size) for p in files], "sha256": digest.hexdigest()}


def build_calibration_batches(
    source: Path, preprocess: Callable[[np.ndarray], np.ndarray], limit: int = 100
) -> List[np.ndarray]:
    """Calibration frames preprocessed exactly as at inference (``preprocess_rgb`` at the input size)."""
    from tqdm import tqdm

    frames = tqdm(calibration_images(source, limit), desc="calibration frames", total=limit, disable=None)
    batches = [preprocess(rgb) for rgb in frames]
    if not batches:
        raise ValueError(f"no calibration frames in {source}")
    return batches
