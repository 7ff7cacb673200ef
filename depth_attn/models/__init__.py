"""Depth networks and the one model registry."""

from depth_attn.models.attention import load_balance_loss
from depth_attn.models.registry import (
    BUILD_OPTIONS,
    NETWORKS,
    PLACEMENTS,
    SIZES,
    VARIANTS,
    ConfigError,
    ModelConfig,
    build_model,
    list_configs,
    load_weights,
    model_parts,
    validate_config,
)

__all__ = [
    "BUILD_OPTIONS",
    "NETWORKS",
    "PLACEMENTS",
    "SIZES",
    "VARIANTS",
    "ConfigError",
    "ModelConfig",
    "build_model",
    "list_configs",
    "load_balance_loss",
    "load_weights",
    "model_parts",
    "validate_config",
]
