"""The one way a checkpoint is fitted into a network, with its report: every tensor whose name and
shape match is copied (``matched``); a few are derived from the checkpoint or set to a start that
keeps the network's function (``derived``); the rest of the network stays as built (``missing``) and
checkpoint tensors with no place in it are ``unused``. ``load_weights``, the estimator's coverage
check (``allow_partial_weights``) and training's student initialisation all use it, so one checkpoint
is fitted one way at inference and in training.

The derivations, because they give a variant a working start instead of random tensors: METER's base
attention holds queries, keys and values in one ``to_qkv``; pyra splits them into ``to_q`` and
``to_kv``: the same rows of the same matrix, so they are copied. Pyra's spatial-reduction conv starts
as a mean over its R x R block (identity across channels), so its reduced keys start as pooled
versions of the base keys. MoH's routers start at zero, which makes every gate 1: MoH then equals the
base attention it copied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Set

import torch
from torch import nn

from depth_attn.models.attention import MoHAttention, PyraAttention


@dataclass
class FitReport:
    matched: List[str] = field(default_factory=list)  # copied: same name, same shape
    derived: List[str] = field(default_factory=list)  # filled from other tensors or set to a known start
    unused: List[str] = field(default_factory=list)  # in the checkpoint, not taken (name or shape)
    missing: List[str] = field(default_factory=list)  # in the network, kept as built

    @property
    def exact(self) -> bool:
        """The checkpoint is this network: every tensor matched, nothing derived, left or unused."""
        return not (self.derived or self.unused or self.missing)

    @property
    def gaps(self) -> List[str]:
        """Where the checkpoint does not cover the network (its trained tensors do not stand there):
        derived and missing tensors of the network, and checkpoint tensors it has no place for (a meta
        network has no parameters where the base attention had them: untrained all the same)."""
        return ([f"{n} (derived)" for n in self.derived] + [f"{n} (missing)" for n in self.missing]
                + [f"{n} (unused)" for n in self.unused])

    def summary(self) -> str:
        return (f"{len(self.matched)} tensors copied, {len(self.derived)} derived, {len(self.unused)} skipped, "
                f"{len(self.missing)} left as built")

    def as_dict(self) -> Dict[str, object]:
        """For a training card (keys as cards have always had them)."""
        return {"copied": len(self.matched), "derived": len(self.derived), "skipped": self.unused,
                "left_as_built": self.missing}


def _split_qkv(state: Mapping[str, torch.Tensor], target: Dict[str, torch.Tensor], report: FitReport) -> Set[str]:
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
        target[name] = qkv[:q_rows].clone().to(target[name].dtype)
        target[kv_name] = qkv[q_rows:].clone().to(target[kv_name].dtype)
        report.derived += [name, kv_name]
        used.add(prefix + "to_qkv.weight")
    return used


def _pooling_reduction(model: nn.Module, report: FitReport, left: Set[str]) -> None:
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


def _uniform_routers(model: nn.Module, report: FitReport, left: Set[str]) -> None:
    """MoH routers left as built start at zero: every gate is then exactly 1 (softmax of zeros times
    the head counts), so the network starts as the base attention it was copied from."""
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


def fit_checkpoint(model: nn.Module, state: Mapping[str, torch.Tensor]) -> FitReport:
    """Fit ``state`` into ``model`` (in place): copy what matches, derive what can be derived (module
    docstring), keep the rest as built; the report says which tensor went which way."""
    report = FitReport()
    own = model.state_dict()
    new = dict(own)
    for name, tensor in state.items():
        if name in own and own[name].shape == tensor.shape:
            new[name] = tensor.to(own[name].dtype)
            report.matched.append(name)
        else:
            report.unused.append(name)
    used = _split_qkv(state, new, report)
    report.unused = [n for n in report.unused if n not in used]
    model.load_state_dict(new, strict=True)
    left = {n for n in own if n not in set(report.matched) | set(report.derived)}
    _pooling_reduction(model, report, left)
    _uniform_routers(model, report, left)
    report.missing = sorted(left)
    return report
