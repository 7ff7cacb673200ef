"""Where things live (the cache home, the shared data/weights folders) and how files are checksummed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def home_dir() -> Path:
    """The artefact cache (weights, ONNX files, engines): ``$DEPTH_ATTN_HOME`` or ~/.cache/depth_attn."""
    return Path(os.environ.get("DEPTH_ATTN_HOME", Path.home() / ".cache" / "depth_attn")).expanduser()


def shared_dir() -> Path:
    """The project's shared material: ``$DEPTH_ATTN_SHARED`` or ``../shared`` beside the repository."""
    return Path(os.environ.get("DEPTH_ATTN_SHARED", REPO_ROOT.parent / "shared")).expanduser()


def data_dir() -> Path:
    """Real KITTI/NYU frames: ``$DEPTH_ATTN_DATA`` or ``<shared>/data``."""
    return Path(os.environ.get("DEPTH_ATTN_DATA", shared_dir() / "data")).expanduser()


def shared_weights_dir() -> Path:
    return shared_dir() / "weights"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks (checkpoints, ONNX files and engines are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
