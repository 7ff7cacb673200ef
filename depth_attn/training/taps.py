"""Feature distillation's taps: which layers of the student are matched to the teacher's (those whose
shapes agree), and the forward hooks that hand their outputs (and, block-wise, the teacher's inputs
to them) to the objective."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from depth_attn.models.spec import NetworkSpec
from depth_attn.training.objectives import FeatureTap, matching_feature_layers


class DistillationTaps:
    """The tapped layers of a student and its teacher. ``blockwise`` (``feature_inputs: teacher``): each
    student block runs on the teacher's input to that block, instead of the student's own forward."""

    def __init__(self, student: nn.Module, teacher: Optional[nn.Module], spec: NetworkSpec, weight: float,
                 names: Optional[Sequence[str]], feature_inputs: str, probe_hw: Tuple[int, int],
                 device: torch.device) -> None:
        self.layers: List[str] = []
        self.skipped: List[str] = []
        if teacher is not None and weight > 0:
            probe = torch.zeros(1, 3, *probe_hw, device=device)
            names = names or spec.feature_layers
            self.layers, self.skipped = matching_feature_layers(student, teacher, names, probe)
        self.blockwise = bool(self.layers) and feature_inputs == "teacher"
        tapped = self.layers and not self.blockwise
        self.student_tap = FeatureTap(student, self.layers) if tapped else None
        modules = dict(student.named_modules())
        self.student_blocks: Dict[str, nn.Module] = {n: modules[n] for n in self.layers} if self.blockwise else {}
        self.teacher_tap = FeatureTap(teacher, self.layers) if self.layers else None

    def teacher_features(self) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """The teacher's tapped outputs (float) and inputs from its last forward."""
        if self.teacher_tap is None:
            return [], []
        return ([f.float() for f in self.teacher_tap.take(self.layers)], self.teacher_tap.take_inputs(self.layers))

    def student_features(self, autocast: AbstractContextManager, teacher_inputs: List[torch.Tensor]
                         ) -> List[torch.Tensor]:
        """The student's tapped outputs (float): from its last forward, or block-wise on ``teacher_inputs``."""
        if self.blockwise:
            with autocast:
                return [self.student_blocks[n](inp).float() for n, inp in zip(self.layers, teacher_inputs, strict=True)]
        tap = self.student_tap
        return [f.float() for f in tap.take(self.layers)] if tap else []

    def close(self) -> None:
        for tap in (self.student_tap, self.teacher_tap):
            if tap is not None:
                tap.close()
