"""Training objectives: supervised SILog, distillation from a teacher (output and feature level) and
MoH's load-balance loss. Every term is returned by name, so the loop logs each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.attention import load_balance_loss


@dataclass(frozen=True)
class ObjectiveConfig:
    silog: float = 0.0  # weight of the supervised term (frames with ground truth)
    silog_variance_focus: float = 0.85
    distill_output: float = 0.0  # log-depth L1 to the teacher
    distill_features: float = 0.0  # normalised MSE at the feature layers
    feature_layers: Optional[Tuple[str, ...]] = None  # None: the network spec's feature_layers
    # "student": compare the layers' outputs in the student's own forward pass; "teacher": feed each
    # student layer the teacher's input to that layer (block-wise distillation: every block learns its
    # teacher block's function directly, which converges in far fewer steps; one process only)
    feature_inputs: str = "student"
    load_balance: float = 0.01  # MoH routers (0 for other variants: nothing to balance)
    min_depth: float = 1e-3
    max_depth: float = 80.0

    def check(self) -> None:
        if min(self.silog, self.distill_output, self.distill_features, self.load_balance) < 0:
            raise ValueError("objective weights must be >= 0")
        if self.silog == 0 and self.distill_output == 0 and self.distill_features == 0:
            raise ValueError("no objective: give objective.silog and/or objective.distill_output/distill_features "
                             "a weight")
        if self.feature_inputs not in ("student", "teacher"):
            raise ValueError(f"feature_inputs must be 'student' or 'teacher', got {self.feature_inputs!r}")
        if not 0 <= self.silog_variance_focus <= 1:
            raise ValueError("silog_variance_focus must be in [0, 1]")

    @property
    def needs_teacher(self) -> bool:
        return self.distill_output > 0 or self.distill_features > 0

    @property
    def needs_student_forward(self) -> bool:
        """False for pure block-wise distillation: then only the student's blocks run."""
        return self.silog > 0 or self.distill_output > 0 or self.feature_inputs == "student"


def silog_loss(pred_m: torch.Tensor, gt_m: torch.Tensor, variance_focus: float = 0.85,
               min_depth: float = 1e-3, max_depth: float = 80.0) -> Optional[torch.Tensor]:
    """BTS's scale-invariant log loss, x10, over the valid ground-truth pixels of the batch; the
    prediction (N, 1, h, w) is upsampled bilinearly to the ground truth's (N, H, W). None when no
    pixel is valid."""
    if pred_m.shape[-2:] != gt_m.shape[-2:]:
        pred_m = F.interpolate(pred_m, size=gt_m.shape[-2:], mode="bilinear", align_corners=False)
    pred_m = pred_m[:, 0]
    valid = torch.isfinite(gt_m) & (gt_m > min_depth) & (gt_m < max_depth)
    if not bool(valid.any()):
        return None
    g = torch.log(pred_m[valid].clamp_min(min_depth)) - torch.log(gt_m[valid])
    return 10.0 * torch.sqrt((g**2).mean() - variance_focus * g.mean() ** 2 + 1e-8)


def output_distillation(student_m: torch.Tensor, teacher_m: torch.Tensor, min_depth: float = 1e-3) -> torch.Tensor:
    """Mean |log d_student - log d_teacher| over every pixel of the network's output."""
    return (torch.log(student_m.clamp_min(min_depth)) - torch.log(teacher_m.clamp_min(min_depth))).abs().mean()


def feature_distillation(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of ||f_s - f_t||^2 / ||f_t||^2 (scale-free, so layers weigh alike)."""
    terms = [((s - t) ** 2).mean() / (t.pow(2).mean() + 1e-6) for s, t in zip(student, teacher, strict=True)]
    return torch.stack(terms).mean()


class FeatureTap:
    """Keeps the outputs of named submodules during a forward pass (forward hooks)."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"feature layer(s) {', '.join(missing)} not in the network")
        self.names = list(names)
        self.modules = {n: modules[n] for n in names}
        self.outputs: Dict[str, torch.Tensor] = {}
        self.inputs: Dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):
        def keep(_module, inputs, output):
            self.outputs[name] = output
            self.inputs[name] = inputs[0]

        return keep

    def take(self, names: Sequence[str]) -> List[torch.Tensor]:
        out = [self.outputs[n] for n in names]
        self.outputs = {}
        return out

    def take_inputs(self, names: Sequence[str]) -> List[torch.Tensor]:
        out = [self.inputs[n] for n in names]
        self.inputs = {}
        return out

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def matching_feature_layers(student: nn.Module, teacher: nn.Module, names: Sequence[str],
                            probe: torch.Tensor) -> Tuple[List[str], List[str]]:
    """(layers whose output shapes agree, layers skipped) for one probe input."""
    s_tap, t_tap = FeatureTap(student, names), FeatureTap(teacher, names)
    try:
        with torch.no_grad():
            student(probe)
            teacher(probe)
        kept = [n for n in names if s_tap.outputs[n].shape == t_tap.outputs[n].shape]
    finally:
        s_tap.close()
        t_tap.close()
    return kept, [n for n in names if n not in kept]


def total_loss(
    config: ObjectiveConfig,
    student_model: nn.Module,
    student_m: Optional[torch.Tensor],
    gt_m: torch.Tensor,
    teacher_m: Optional[torch.Tensor] = None,
    student_features: Sequence[torch.Tensor] = (),
    teacher_features: Sequence[torch.Tensor] = (),
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The weighted sum and each term's value (unweighted) for the log."""
    terms: Dict[str, float] = {}
    total = gt_m.new_zeros(())
    if config.silog > 0 and student_m is not None:
        sil = silog_loss(student_m, gt_m, config.silog_variance_focus, config.min_depth, config.max_depth)
        if sil is not None:
            total = total + config.silog * sil
            terms["silog"] = float(sil.detach())
        else:
            terms["silog"] = float("nan")
    if config.distill_output > 0 and teacher_m is not None and student_m is not None:
        out = output_distillation(student_m, teacher_m, config.min_depth)
        total = total + config.distill_output * out
        terms["distill_output"] = float(out.detach())
    if config.distill_features > 0 and student_features:
        feat = feature_distillation(student_features, teacher_features)
        total = total + config.distill_features * feat
        terms["distill_features"] = float(feat.detach())
    if config.load_balance > 0:
        balance = load_balance_loss(student_model, config.load_balance).to(total.device)
        if balance.requires_grad:
            total = total + balance
            terms["load_balance"] = float(balance.detach())
    return total, terms
