"""Depth networks and the one model registry."""

from depth_attn.models.registry import (
    NETWORKS,
    PLACEMENTS,
    SIZES,
    VARIANTS,
    ConfigError,
    ModelConfig,
    build_model,
    list_configs,
    validate_config,
)

__all__ = [
    "NETWORKS", "PLACEMENTS", "SIZES", "VARIANTS", "ConfigError", "ModelConfig",
    "build_model", "list_configs", "validate_config",
]
