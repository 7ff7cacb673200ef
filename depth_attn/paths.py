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


def share_dir() -> Path:
    """The package's installed files (weights/, config/, launch/, sample/): the repository root in a
    source checkout (``pip install -e .``), ``<prefix>/share/depth_attn`` after ``colcon build`` or a
    pip install. Found from this file's own location, so no ROS environment needs to be sourced."""
    if (REPO_ROOT / "package.xml").is_file() and (REPO_ROOT / "setup.py").is_file():
        return REPO_ROOT
    # .../<prefix>/lib/pythonX.Y/site-packages/depth_attn -> .../<prefix>/share/depth_attn
    for parent in PACKAGE_ROOT.parents:
        candidate = parent / "share" / "depth_attn"
        if (candidate / "package.xml").is_file():
            return candidate
    try:  # an unusual layout: ask the ament index (no ROS middleware involved)
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("depth_attn"))
    except Exception:  # noqa: BLE001 - not installed, not on the index: fall back to the checkout
        return REPO_ROOT


def package_weights_dir() -> Path:
    """The checkpoints shipped with the package (``weights/``)."""
    return share_dir() / "weights"


def weights_cache_dir() -> Path:
    """Where fetched, imported and trained checkpoints (and their cards) are kept."""
    return home_dir() / "weights"


def shared_weights_dir() -> Path:
    return shared_dir() / "weights"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks (checkpoints, ONNX files and engines are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
