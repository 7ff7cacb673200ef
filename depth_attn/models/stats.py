"""Size and cost of a configuration: parameters and multiply-accumulates (GMACs), counted with
``torch.utils.flop_counter`` on the ``meta`` device (shapes only: exact for these networks, no
memory, no arithmetic). Like the study, only convolutions and matrix products are counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from depth_attn.models.registry import ModelConfig, build_model
from depth_attn.models.spec import network_spec


@dataclass(frozen=True)
class ModelStats:
    config: ModelConfig
    input_hw: Tuple[int, int]
    params: int
    gmacs: float


def build_on_meta(config: ModelConfig, **options) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(config.network, config.size, config.variant, config.placement, **options).eval()


def count_gmacs(model: torch.nn.Module, input_hw: Tuple[int, int], batch: int = 1) -> float:
    """Multiply-accumulates (1e9) of one forward pass at ``input_hw``, on the model's device."""
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *input_hw, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def model_stats(config: ModelConfig, input_hw: Optional[Tuple[int, int]] = None, **options) -> ModelStats:
    hw = tuple(input_hw or network_spec(config.network).input_hw)  # default: the study's KITTI size
    model = build_on_meta(config, **options)
    params = sum(p.numel() for p in model.parameters())
    return ModelStats(config, hw, params, count_gmacs(model, hw))  # type: ignore[arg-type]
