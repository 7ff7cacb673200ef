"""The one model registry: names used everywhere (CLI, node parameters, launch arguments, files)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from torch import nn

from depth_attn.models.fitting import FitReport, fit_checkpoint
from depth_attn.models.spec import network_spec

NETWORKS = ("meter", "pixelformer", "newcrfs")
SIZES = ("tiny", "base", "large")
VARIANTS = ("base", "meta", "pyra", "moh")
PLACEMENTS = ("full", "encoder", "decoder")


class ConfigError(ValueError):
    """An invalid network/size/variant/placement combination."""


@dataclass(frozen=True)
class ModelConfig:
    """The model identity: which network, size, attention variant and placement. Every configuration
    (the estimator's, training's, the node's, the CLI's, an export's) holds one; a combination that
    does not exist is refused when it is made."""

    network: str = "meter"
    size: str = "tiny"
    variant: str = "base"
    placement: str = "full"

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.network, NETWORKS, "network"),
            (self.size, SIZES, "size"),
            (self.variant, VARIANTS, "variant"),
            (self.placement, PLACEMENTS, "placement"),
        ):
            if value not in allowed:
                raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if self.network == "meter" and self.placement != "full":
            raise ConfigError(
                "METER has attention in its encoder only: use placement 'full' (placement "
                f"{self.placement!r} does not exist for METER)"
            )
        if self.variant == "base" and self.placement != "full":
            raise ConfigError("variant 'base' replaces nothing: use placement 'full'")

    @property
    def name(self) -> str:
        """The one name string of a model: ``network-size-variant-placement``."""
        return f"{self.network}-{self.size}-{self.variant}-{self.placement}"

    @classmethod
    def parse(cls, name: str) -> ModelConfig:
        """From ``network-size-variant-placement`` (placement optional, default full)."""
        parts = name.strip().split("-")
        if len(parts) == 3:
            parts.append("full")
        if len(parts) != 4:
            raise ConfigError(f"config name must be network-size-variant[-placement], got {name!r}")
        return cls(*parts)


def validate_config(network: str, size: str = "tiny", variant: str = "base", placement: str = "full") -> ModelConfig:
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


def covering_input_size(network: str, hw: Tuple[int, int]) -> Tuple[int, int]:
    """The smallest input size the network takes that holds an ``hw`` image (each side rounded up to
    the nearest valid one)."""
    spec = network_spec(network)
    return _nearest(max(1, int(hw[0])), spec.height_ok)[1], _nearest(max(1, int(hw[1])), spec.width_ok)[1]


def _nearest(side: int, ok) -> Tuple[int, int]:
    below = next((v for v in range(side, 0, -1) if ok(v)), None)
    above = next(v for v in range(side, side + 4096) if ok(v))
    return (below or above, above)


def check_input_size(network: str, input_hw: Tuple[int, int]) -> None:
    """Refuse an input size the network cannot take (its spec's rule), naming the nearest sizes it can."""
    spec = network_spec(network)
    h, w = (int(v) for v in input_hw)
    if h <= 0 or w <= 0:
        raise ConfigError(f"input size must be positive, got {h}x{w}")
    bad = [(name, v) for name, v, ok in (("height", h, spec.height_ok), ("width", w, spec.width_ok)) if not ok(v)]
    if not bad:
        return
    hs, ws = _nearest(h, spec.height_ok), _nearest(w, spec.width_ok)
    options = sorted({f"{a}x{b}" for a in set(hs) for b in set(ws)})
    raise ConfigError(
        f"{network} cannot take input {h}x{w} ({', '.join(f'{n} {v}' for n, v in bad)}: {spec.size_rule}); nearest "
        f"valid sizes: {', '.join(options)}"
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
    output_scale: Optional[float] = None,
    **options,
) -> nn.Module:
    """Build an untrained network. Input: RGB in [0, 1], NCHW (any normalisation happens inside the
    model). Output: (N, 1, h, w) depth in the spec's unit (``network_spec``): METER in its checkpoint's
    unit at a quarter of the input resolution, PixelFormer and NeWCRFs in metres at the input
    resolution. ``output_scale``: the largest depth the graph itself scales to, for networks whose
    spec says ``output_scale_in_graph`` (default: the spec's ``max_depth_m``; the clamp of the output
    is the estimator's business, not the network's). ``options``: see ``BUILD_OPTIONS``."""
    config = validate_config(network, size, variant, placement)
    unknown = sorted(set(options) - set(BUILD_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown build option(s) {', '.join(unknown)}; known: {', '.join(BUILD_OPTIONS)}")
    opts = {**BUILD_OPTIONS, **options}
    if int(opts["sr_ratio"]) < 1:
        raise ConfigError(f"sr_ratio must be a positive integer, got {opts['sr_ratio']}")
    spec = network_spec(config.network)
    scale = spec.max_depth_m if output_scale is None else float(output_scale)
    if scale <= 0:
        raise ConfigError(f"output_scale must be positive, got {output_scale}")
    enc, dec = placement_variants(config)
    return spec.build(config.size, enc, dec, config.variant, scale, opts)


def model_parts(model: nn.Module, network: str) -> Dict[str, List[Tuple[str, nn.Module]]]:
    """Named submodules split into the ``encoder`` (the spec's ``encoder_prefix``) and the ``decoder``
    (everything else)."""
    encoder_prefix = network_spec(network).encoder_prefix
    parts: Dict[str, List[Tuple[str, nn.Module]]] = {"encoder": [], "decoder": []}
    for name, module in model.named_modules():
        if not name:
            continue
        parts["encoder" if name.startswith(encoder_prefix) else "decoder"].append((name, module))
    return parts


def load_weights(model: nn.Module, state: dict, config: ModelConfig) -> FitReport:
    """Load a checkpoint through ``fit_checkpoint`` (what matched, what was derived, what is missing).
    The base network must match exactly; a variant takes every tensor outside its replaced attention,
    and what it derives or leaves as built is in the report."""
    report = fit_checkpoint(model, state)
    if config.variant == "base" and not report.exact:
        raise ConfigError(f"checkpoint does not fit {config.name}: {report.summary()} ({', '.join(report.gaps[:5])})")
    return report
