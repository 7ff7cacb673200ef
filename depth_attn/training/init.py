"""Student initialisation from a checkpoint: ``models.fitting.fit_checkpoint`` (the same fitting as at
inference: copied by name and shape, pyra's ``to_q``/``to_kv`` derived from ``to_qkv``, its reduction
conv a block mean, MoH's routers zero), then one training choice on top.

Meta's pooling mixer has no weights to take, but its pre-norm does: copied, it still scales its input
for the attention it fed, and the new branch adds pool(x) - x at that scale (METER-XXS copied into
meta scores 1.24 abs_rel on the annotated frames). ``meta_branch_gain`` scales those pre-norms (weight
and bias); the mixer is linear, so it scales the branch's output by the same factor. At 0 the branch adds
exactly zero: the student starts as the network without its attention (0.66) and grows the pooling
branch from there; at 0.5 it starts half way (docs/benchmarks.md section 10, docs/training/meta.md)."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from depth_attn.models.attention import MetaMixer
from depth_attn.models.fitting import FitReport, fit_checkpoint


def _meta_prenorms(model: nn.Module) -> Dict[str, nn.LayerNorm]:
    """The LayerNorm in front of each meta mixer, by module name: METER's ``PreNorm(norm, fn)`` and the
    ``norm1`` -> ``attn`` blocks (Swin, SAM, CRF; where a decoder gives meta no norm there is none)."""
    found = {}
    for name, module in model.named_modules():
        for mixer_attr, norm_attr in (("fn", "norm"), ("attn", "norm1")):
            norm = getattr(module, norm_attr, None)
            if isinstance(getattr(module, mixer_attr, None), MetaMixer) and isinstance(norm, nn.LayerNorm):
                found[f"{name}.{norm_attr}"] = norm
    return found


def _scale_meta_prenorms(model: nn.Module, gain: float, report: FitReport) -> None:
    for name, norm in _meta_prenorms(model).items():
        with torch.no_grad():
            norm.weight.mul_(gain)
            norm.bias.mul_(gain)
        for tensor in (f"{name}.weight", f"{name}.bias"):
            if tensor in report.matched:
                report.matched.remove(tensor)
            if tensor in report.missing:
                report.missing.remove(tensor)
            report.derived.append(tensor)


def init_student(model: nn.Module, state: Dict[str, torch.Tensor], meta_branch_gain: float = 1.0) -> FitReport:
    """Fit ``state`` into ``model`` (in place) and report; ``meta_branch_gain``: the factor on every meta
    mixer's pre-norm, 1 as copied, 0 silenced (module docstring)."""
    report = fit_checkpoint(model, state)
    if meta_branch_gain != 1.0:
        _scale_meta_prenorms(model, meta_branch_gain, report)
    return report
