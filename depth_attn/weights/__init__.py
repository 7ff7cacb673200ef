"""Known checkpoints, a checksummed cache, and safe loading (always ``weights_only=True``).

``catalogue``: what checkpoints exist and what each covers; ``store``: where their files are on this
machine (checked, each hashed once per process) and how they get into the cache; ``loading``: loading
a state dict safely and what it leaves uncovered. Nothing is read from disk at import."""

from __future__ import annotations

from typing import Dict

from depth_attn.paths import sha256_file, weights_cache_dir
from depth_attn.weights.catalogue import (
    AUTO,
    BUILTIN,
    DATASET_CAMERAS,
    METER_URL,
    UNTRAINED_NAMES,
    CheckpointInfo,
    WeightsError,
    checkpoint_info,
    info_from_card,
    known_checkpoints,
)
from depth_attn.weights.loading import load_state_dict
from depth_attn.weights.store import (
    available_for,
    cached_path,
    fetch,
    file_digest,
    identify,
    import_file,
    import_trained,
    listing,
    locate,
    resolve,
    resolve_auto,
)

__all__ = [
    "AUTO", "BUILTIN", "CHECKPOINTS", "DATASET_CAMERAS", "METER_URL", "UNTRAINED_NAMES", "CheckpointInfo",
    "WeightsError", "available_for", "cached_path", "checkpoint_info", "fetch", "file_digest",
    "identify", "import_file", "import_trained", "info_from_card", "known_checkpoints", "listing",
    "load_state_dict", "locate", "resolve", "resolve_auto", "sha256_file", "weights_cache_dir",
]


def __getattr__(name: str) -> Dict[str, CheckpointInfo]:
    """``CHECKPOINTS``: the table as a user sees it (``known_checkpoints()``), read when asked for, not at
    import."""
    if name == "CHECKPOINTS":
        return known_checkpoints()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
