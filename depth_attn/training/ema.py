"""Exponential moving average of the student's weights (``schedule.ema``).

A small distillation set makes the weights of consecutive steps wander around a good region;
their running average usually generalises better than the last step's. When it is on, validation,
the best checkpoint and the shipped weights are the average; the optimiser keeps training the raw
weights. The decay warms up as (1 + t) / (10 + t), so the first steps do not tie the average to the
initial weights for thousands of steps."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.average: Dict[str, torch.Tensor] = {
            name: tensor.detach().clone() for name, tensor in model.state_dict().items()
        }

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        floats_avg, floats_now = [], []
        for name, tensor in model.state_dict().items():
            avg = self.average[name]
            if avg.is_floating_point():
                floats_avg.append(avg)
                floats_now.append(tensor.detach())
            else:  # counters (BatchNorm's num_batches_tracked): the latest value
                avg.copy_(tensor)
        if floats_avg:
            torch._foreach_lerp_(floats_avg, floats_now, 1.0 - decay)

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` holds the average inside the block and its own weights again after it."""
        own = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> Dict[str, object]:
        return {"decay": self.decay, "updates": self.updates,
                "average": {k: v.detach().cpu().contiguous() for k, v in self.average.items()}}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.updates = int(state["updates"])  # type: ignore[arg-type]
        average = state["average"]
        for name, tensor in self.average.items():
            tensor.copy_(average[name])  # type: ignore[index]
