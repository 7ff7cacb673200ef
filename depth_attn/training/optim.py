"""What the optimiser works on and how: the trainable parameters, AdamW with its warm-up + decay
schedule, mixed precision on CUDA, frozen batch norm."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn


def lr_factor(step: int, total: int, warmup: int, decay: str, min_ratio: float, power: float) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warm-up, then decay."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if decay == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:  # poly
        shape = (1.0 - progress) ** power
    return min_ratio + (1.0 - min_ratio) * shape


def trainable_parameters(model: nn.Module, prefixes: Optional[Sequence[str]]) -> List[nn.Parameter]:
    """All parameters, or (``schedule.trainable``) those whose names start with one of ``prefixes``
    (the others stop requiring gradients); ValueError where none does."""
    if not prefixes:
        return [p for p in model.parameters()]
    chosen = []
    for name, param in model.named_parameters():
        keep = any(name.startswith(p) for p in prefixes)
        param.requires_grad_(keep)
        if keep:
            chosen.append(param)
    if not chosen:
        raise ValueError(f"schedule.trainable {list(prefixes)} matches no parameter of the student")
    return chosen


def freeze_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def make_optimizer(params: List[nn.Parameter],
                   schedule) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` and its per-step learning-rate schedule, from the config's ``schedule``."""
    s = schedule
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, s.steps, s.warmup_steps, s.decay, s.min_lr_ratio, s.poly_power),
    )
    return optimizer, scheduler


def mixed_precision(amp: str, device: torch.device) -> Tuple[Optional[torch.dtype], torch.amp.GradScaler]:
    """The autocast dtype (None: full precision; only on CUDA) and the gradient scaler (on for fp16)."""
    amp_dtype = None
    if amp != "none" and device.type == "cuda":
        amp_dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return amp_dtype, torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
