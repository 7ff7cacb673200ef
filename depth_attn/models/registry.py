"""The one model registry: names used everywhere (CLI, node parameters, launch arguments, files)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from torch import nn

NETWORKS = ("meter", "pixelformer", "newcrfs")
SIZES = ("tiny", "base", "large")
VARIANTS = ("base", "meta", "pyra", "moh")
PLACEMENTS = ("full", "encoder", "decoder")


class ConfigError(ValueError):
    """An invalid network/size/variant/placement combination."""


@dataclass(frozen=True)
class ModelConfig:
    network: str = "meter"
    size: str = "tiny"
    variant: str = "base"
    placement: str = "full"

    @property
    def name(self) -> str:
        return f"{self.network}-{self.size}-{self.variant}-{self.placement}"

    @classmethod
    def parse(cls, name: str) -> "ModelConfig":
        """From ``network-size-variant-placement`` (placement optional, default full)."""
        parts = name.strip().split("-")
        if len(parts) == 3:
            parts.append("full")
        if len(parts) != 4:
            raise ConfigError(f"config name must be network-size-variant[-placement], got {name!r}")
        return validate_config(*parts)


def validate_config(network: str, size: str = "tiny", variant: str = "base", placement: str = "full") -> ModelConfig:
    for value, allowed, what in (
        (network, NETWORKS, "network"),
        (size, SIZES, "size"),
        (variant, VARIANTS, "variant"),
        (placement, PLACEMENTS, "placement"),
    ):
        if value not in allowed:
            raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    if network == "meter" and placement != "full":
        raise ConfigError(
            "METER has attention in its encoder only: use placement 'full' (placement "
            f"{placement!r} does not exist for METER)"
        )
    if variant == "base" and placement != "full":
        raise ConfigError("variant 'base' replaces nothing: use placement 'full'")
    return ModelConfig(network, size, variant, placement)


def list_configs(network: Optional[str] = None) -> List[ModelConfig]:
    """Every valid configuration (72 in all), in a stable order."""
    configs = []
    for net in NETWORKS if network is None else (network,):
        for size in SIZES:
            for variant in VARIANTS:
                placements = ("full",) if net == "meter" or variant == "base" else PLACEMENTS
                configs.extend(ModelConfig(net, size, variant, p) for p in placements)
    return configs


def build_model(
    network: str, size: str = "tiny", variant: str = "base", placement: str = "full", max_depth: Optional[float] = None
) -> nn.Module:
    """Build an untrained network. Input: RGB in [0, 1], NCHW (any normalisation happens inside the
    model). Output: (N, 1, h, w) depth; METER in its checkpoint's unit, the others in metres."""
    config = validate_config(network, size, variant, placement)
    if config.network == "meter":
        from depth_attn.models.meter import Meter

        if config.variant == "base":
            return Meter(config.size)
    raise NotImplementedError(f"{config.name} is not built yet")


def load_weights(model: nn.Module, state: dict, config: ModelConfig) -> dict:
    """Load a checkpoint: strictly for the base network; for a variant, every tensor outside the
    replaced attention must match, and the keys it did not take are reported."""
    if config.variant == "base":
        model.load_state_dict(state, strict=True)
        return {"missing": [], "unexpected": []}
    result = model.load_state_dict(state, strict=False)
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
