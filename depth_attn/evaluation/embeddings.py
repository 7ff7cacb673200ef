"""The study's embeddings: the encoder's last-stage features, global-average-pooled, one vector per
frame. They are read with a forward hook on the PyTorch network of a ``DepthEstimator`` fed the
frame exactly as ``estimate`` prepares it (same canonical view, same input size), whatever backend
the estimator times with."""

from __future__ import annotations

from typing import Iterable, List

import numpy as np
import torch
from torch import nn

from depth_attn.models.spec import network_spec


def last_stage(output: object) -> torch.Tensor:
    """METER's encoder returns (last-stage features, skips); the Swin encoder a list of the four
    stages' features. Either way the deepest (N, C, h, w) map."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor) and isinstance(output[1], list):
        return output[0]
    if isinstance(output, (list, tuple)) and output and isinstance(output[-1], torch.Tensor):
        return output[-1]
    raise TypeError(f"cannot find the last encoder stage in an output of type {type(output).__name__}")


def encoder_of(model: nn.Module, network: str) -> nn.Module:
    """The network's encoder module (its spec's ``encoder_prefix``)."""
    try:
        return getattr(model, network_spec(network).encoder_prefix.rstrip("."))
    except (ValueError, AttributeError):
        raise ValueError(f"no encoder known for network {network!r}") from None


def embed_frames(estimator, frames: Iterable[np.ndarray], intrinsics=None) -> np.ndarray:
    """(n frames, C) float64: each frame's last-stage encoder features averaged over space."""
    model = estimator.source.model()  # the same (cached) PyTorch network the torch backend runs
    encoder = encoder_of(model, estimator.model_config.network)
    captured: List[torch.Tensor] = []

    def keep(_module, _inputs, output) -> None:
        features = last_stage(output)
        captured.append(features.float().mean(dim=(2, 3)).cpu())

    handle = encoder.register_forward_hook(keep)
    first = next(model.parameters())
    try:
        with torch.inference_mode():
            for rgb in frames:
                view = estimator.view_for(intrinsics or estimator.config.intrinsics, (rgb.shape[1], rgb.shape[0]))
                batch = estimator.preprocess(rgb, view)
                model(torch.from_numpy(np.ascontiguousarray(batch)).to(device=first.device, dtype=first.dtype))
    finally:
        handle.remove()
    if not captured:
        raise ValueError("no frames to embed")
    return torch.cat(captured).double().numpy()
