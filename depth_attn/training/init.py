"""Student initialisation from a checkpoint: every tensor whose name and shape match is copied;
the rest is reported as skipped (in the checkpoint, no place in the student) or left as built.

One derivation beyond name matching, because it gives pyra a working start instead of random
projections: METER's base attention holds queries, keys and values in one ``to_qkv``; pyra splits
them into ``to_q`` and ``to_kv``. They are the same rows of the same matrix, so they are copied
(counted as ``derived``). Pyra's spatial-reduction conv starts as a mean over its R x R block
(identity across channels), so its reduced keys start as pooled versions of the base keys. MoH's
routers start at zero, which makes every gate 1: MoH then equals the base attention it copied.

Meta's pooling mixer has no weights to take, but its pre-norm does: copied, it still scales its input
for the attention it fed, and the new branch adds pool(x) - x at that scale (METER-XXS copied into
meta scores 1.24 abs_rel on the annotated frames). ``meta_branch_gain`` scales those pre-norms (weight
and bias); the mixer is linear, so it scales the branch's output by the same factor. At 0 the branch adds
exactly zero: the student starts as the network without its attention (0.66) and grows the pooling
branch from there; at 0.5 it starts half way (docs/benchmarks.md section 10, docs/training/meta.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import torch
from torch import nn

from depth_attn.models.attention import MetaMixer, MoHAttention, PyraAttention


@dataclass
class InitReport:
    copied: List[str] = field(default_factory=list)
    derived: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)  # in the checkpoint, not taken (name or shape)
    left: List[str] = field(default_factory=list)  # in the student, kept as built

    def summary(self) -> str:
        return (f"{len(self.copied)} tensors copied, {len(self.derived)} derived, {len(self.skipped)} skipped, "
                f"{len(self.left)} left as built")

    def as_dict(self) -> Dict[str, object]:
        return {"copied": len(self.copied), "derived": len(self.derived), "skipped": self.skipped,
                "left_as_built": self.left}


def _split_qkv(state: Dict[str, torch.Tensor], target: Dict[str, torch.Tensor], report: InitReport) -> set:
    """Fill missing ``to_q``/``to_kv`` from the checkpoint's ``to_qkv``; the names it used."""
    used = set()
    for name in list(target):
        if not name.endswith(".to_q.weight") or name in state:
            continue
        prefix = name[: -len("to_q.weight")]
        qkv = state.get(prefix + "to_qkv.weight")
        kv_name = prefix + "to_kv.weight"
        if qkv is None or kv_name not in target:
            continue
        q_rows = target[name].shape[0]
        if qkv.shape[0] != q_rows + target[kv_name].shape[0] or qkv.shape[1] != target[name].shape[1]:
            continue
        target[name] = qkv[:q_rows].clone()
        target[kv_name] = qkv[q_rows:].clone()
        report.derived += [name, kv_name]
        used.add(prefix + "to_qkv.weight")
    return used


def _pooling_reduction(model: nn.Module, report: InitReport, left: set) -> None:
    for module_name, module in model.named_modules():
        if not isinstance(module, PyraAttention):
            continue
        conv_name = f"{module_name}.sr.weight"
        if conv_name not in left:
            continue
        with torch.no_grad():
            r = module.sr_ratio
            weight = torch.zeros_like(module.sr.weight)
            channels = weight.shape[0]
            weight[torch.arange(channels), torch.arange(channels)] = 1.0 / (r * r)
            module.sr.weight.copy_(weight)
            module.sr.bias.zero_()
        report.derived += [conv_name, f"{module_name}.sr.bias"]
        left.discard(conv_name)
        left.discard(f"{module_name}.sr.bias")


def _uniform_routers(model: nn.Module, report: InitReport, left: set) -> None:
    """MoH routers left as built start at zero: every gate is then exactly 1 (softmax of zeros times
    the head counts), so the student starts as the base attention it was copied from."""
    for module_name, module in model.named_modules():
        if not isinstance(module, MoHAttention):
            continue
        for router in ("wg", "wg_0", "wg_1"):
            name = f"{module_name}.{router}.weight"
            if name in left and hasattr(module, router):
                with torch.no_grad():
                    getattr(module, router).weight.zero_()
                report.derived.append(name)
                left.discard(name)


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


def _scale_meta_prenorms(model: nn.Module, gain: float, report: InitReport, left: set) -> None:
    for name, norm in _meta_prenorms(model).items():
        with torch.no_grad():
            norm.weight.mul_(gain)
            norm.bias.mul_(gain)
        for tensor in (f"{name}.weight", f"{name}.bias"):
            if tensor in report.copied:
                report.copied.remove(tensor)
            report.derived.append(tensor)
            left.discard(tensor)


def init_student(model: nn.Module, state: Dict[str, torch.Tensor], meta_branch_gain: float = 1.0) -> InitReport:
    """Copy what matches from ``state`` into ``model`` (in place) and report; ``meta_branch_gain``: the
    factor on every meta mixer's pre-norm, 1 as copied, 0 silenced (module docstring)."""
    report = InitReport()
    own = model.state_dict()
    new = dict(own)
    for name, tensor in state.items():
        if name in own and own[name].shape == tensor.shape:
            new[name] = tensor.to(own[name].dtype)
            report.copied.append(name)
        else:
            report.skipped.append(name)
    used = _split_qkv(state, new, report)
    taken = set(report.copied) | set(report.derived)
    report.skipped = [n for n in report.skipped if n not in used]
    model.load_state_dict(new, strict=True)
    left = {n for n in own if n not in taken}
    _pooling_reduction(model, report, left)
    _uniform_routers(model, report, left)
    if meta_branch_gain != 1.0:
        _scale_meta_prenorms(model, meta_branch_gain, report, left)
    report.left = sorted(left)
    return report
