"""Held-out validation during training: the inference path (``preprocess_rgb`` in,
``depth_from_output`` out) and the project's metrics module, per image then averaged."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

from depth_attn.inference.processing import depth_from_output
from depth_attn.metrics import evaluate_depth, mean_metrics
from depth_attn.training.augment import network_input
from depth_attn.training.data import FrameDataset


@torch.no_grad()
def predict_metres(model: nn.Module, rgb_sample, input_hw: Tuple[int, int], to_metres: float,
                   min_depth: float, max_depth: float, device: torch.device) -> np.ndarray:
    image, _ = network_input(rgb_sample, input_hw)
    raw = model(torch.from_numpy(image)[None].to(device)).float().cpu().numpy()
    return depth_from_output(raw, to_metres, rgb_sample.rgb.shape[:2], min_depth, max_depth)


def validate(
    model: nn.Module,
    dataset: FrameDataset,
    input_hw: Tuple[int, int],
    to_metres: float,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    crop: str = "none",
    device: torch.device = torch.device("cpu"),
) -> Dict[str, float]:
    """Mean KITTI metrics of ``model`` over the frames of ``dataset`` that have ground truth."""
    was_training = model.training
    model.eval()
    rows = []
    try:
        for i in range(len(dataset)):
            sample = dataset[i]
            if sample.depth is None:
                continue
            pred = predict_metres(model, sample, input_hw, to_metres, min_depth, max_depth, device)
            gt = np.nan_to_num(sample.depth, nan=0.0)
            rows.append(evaluate_depth(pred, gt, min_depth, max_depth, crop=crop))
    finally:
        model.train(was_training)
    if not rows:
        raise ValueError("the validation set has no frame with ground truth")
    result = mean_metrics(rows)
    result["frames"] = len(rows)
    return result
