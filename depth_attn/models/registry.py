"""The one model registry: names used everywhere (CLI, node parameters, launch arguments, files)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

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
    def parse(cls, name: str) -> ModelConfig:
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


# Keyword options build_model accepts, with the study's defaults.
BUILD_OPTIONS = {
    "sr_ratio": 2,  # pyra's spatial reduction R (2 in 7x7 windows and METER-KITTI; 4 for METER-NYU)
    "drop_path_rate": 0.0,  # Swin stochastic depth (training only)
    "min_depth": 1e-3,  # PixelFormer's first bin edge, metres
}


def _halvings(size: int, times: int) -> int:
    """The side after ``times`` stride-2 convolutions (kernel 3, padding 1): ceil(size / 2^times)."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def meter_height_ok(side: int) -> bool:
    """METER folds 2x2 patches at 1/8, 1/16 and 1/32, and its decoder doubles the height back to
    each skip's exactly: the height after 2, 3, 4 and 5 halvings must be even (192 is; 96 is not)."""
    return side >= 32 and all(_halvings(side, k) % 2 == 0 for k in (2, 3, 4, 5))


def meter_width_ok(side: int) -> bool:
    """The width needs the patch folds only (the decoder pads a skip one column short): even after
    3, 4 and 5 halvings (636 is; 160 -> 5 at 1/32 is not)."""
    return side >= 32 and all(_halvings(side, k) % 2 == 0 for k in (3, 4, 5))


def _nearest(side: int, ok) -> Tuple[int, int]:
    below = next((v for v in range(side, 0, -1) if ok(v)), None)
    above = next(v for v in range(side, side + 4096) if ok(v))
    return (below or above, above)


def _side_rules(network: str):
    if network == "meter":
        return meter_height_ok, meter_width_ok
    return (lambda v: v >= 32 and v % 32 == 0,) * 2


def covering_input_size(network: str, hw: Tuple[int, int]) -> Tuple[int, int]:
    """The smallest input size the network takes that holds an ``hw`` image (each side rounded up to
    the nearest valid one)."""
    ok_h, ok_w = _side_rules(network)
    return _nearest(max(1, int(hw[0])), ok_h)[1], _nearest(max(1, int(hw[1])), ok_w)[1]


def check_input_size(network: str, input_hw: Tuple[int, int]) -> None:
    """Refuse an input size the network cannot take, naming the nearest sizes it can (METER: see
    ``meter_height_ok``/``meter_width_ok``; PixelFormer and NeWCRFs: multiples of 32)."""
    ok_h, ok_w = _side_rules(network)
    if network == "meter":
        rule = "the height halved 2 to 5 times and the width halved 3 to 5 times (rounding up) must stay even"
    else:
        rule = "each side must be a multiple of 32"
    h, w = (int(v) for v in input_hw)
    if h <= 0 or w <= 0:
        raise ConfigError(f"input size must be positive, got {h}x{w}")
    bad = [(name, v) for name, v, ok in (("height", h, ok_h), ("width", w, ok_w)) if not ok(v)]
    if not bad:
        return
    hs, ws = _nearest(h, ok_h), _nearest(w, ok_w)
    options = sorted({f"{a}x{b}" for a in set(hs) for b in set(ws)})
    raise ConfigError(
        f"{network} cannot take input {h}x{w} ({', '.join(f'{n} {v}' for n, v in bad)}: {rule}); nearest valid "
        f"sizes: {', '.join(options)}"
    )


def placement_variants(config: ModelConfig) -> Tuple[str, str]:
    """(encoder mixer, decoder mixer) of a configuration."""
    enc = config.variant if config.placement in ("full", "encoder") else "base"
    dec = config.variant if config.placement in ("full", "decoder") else "base"
    return enc, dec


def build_model(
    network: str,
    size: str = "tiny",
    variant: str = "base",
    placement: str = "full",
    max_depth: Optional[float] = None,
    **options,
) -> nn.Module:
    """Build an untrained network. Input: RGB in [0, 1], NCHW (any normalisation happens inside the
    model). Output: (N, 1, h, w) depth; METER in its checkpoint's unit (a quarter of the input
    resolution), PixelFormer and NeWCRFs in metres at the input resolution (sides multiples of 32),
    at most ``max_depth`` (default 80). ``options``: see ``BUILD_OPTIONS``."""
    config = validate_config(network, size, variant, placement)
    unknown = sorted(set(options) - set(BUILD_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown build option(s) {', '.join(unknown)}; known: {', '.join(BUILD_OPTIONS)}")
    opts = {**BUILD_OPTIONS, **options}
    if int(opts["sr_ratio"]) < 1:
        raise ConfigError(f"sr_ratio must be a positive integer, got {opts['sr_ratio']}")
    depth_cap = 80.0 if max_depth is None else float(max_depth)
    if depth_cap <= 0:
        raise ConfigError(f"max_depth must be positive, got {max_depth}")
    enc, dec = placement_variants(config)
    if config.network == "meter":
        from depth_attn.models.meter import Meter, variant_mixer

        return Meter(config.size, variant_mixer(config.variant, int(opts["sr_ratio"])))
    if config.network == "pixelformer":
        from depth_attn.models.pixelformer import PixelFormer

        return PixelFormer(
            config.size,
            enc,
            dec,
            max_depth=depth_cap,
            min_depth=float(opts["min_depth"]),
            sr_ratio=int(opts["sr_ratio"]),
            drop_path_rate=float(opts["drop_path_rate"]),
        )
    from depth_attn.models.newcrfs import NeWCRFs

    return NeWCRFs(
        config.size,
        enc,
        dec,
        max_depth=depth_cap,
        sr_ratio=int(opts["sr_ratio"]),
        drop_path_rate=float(opts["drop_path_rate"]),
    )


def model_parts(model: nn.Module, network: str) -> Dict[str, List[Tuple[str, nn.Module]]]:
    """Named submodules split into the ``encoder`` and the ``decoder`` (everything else)."""
    encoder_prefix = "encoder." if network == "meter" else "backbone."
    parts: Dict[str, List[Tuple[str, nn.Module]]] = {"encoder": [], "decoder": []}
    for name, module in model.named_modules():
        if not name:
            continue
        parts["encoder" if name.startswith(encoder_prefix) else "decoder"].append((name, module))
    return parts


def load_weights(model: nn.Module, state: dict, config: ModelConfig) -> dict:
    """Load a checkpoint: strictly for the base network; for a variant, every tensor outside the
    replaced attention must match, and the keys it did not take are reported."""
    if config.variant == "base":
        model.load_state_dict(state, strict=True)
        return {"missing": [], "unexpected": []}
    result = model.load_state_dict(state, strict=False)
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
