"""The pyramid pooling head both Swin-based networks put on the deepest features (PixelFormer's
Pixel Query Initialiser, NeWCRFs' "PPM" head): pooled context at scales 1, 2, 3, 6, upsampled,
concatenated with the features, then a 3x3 bottleneck to 512 channels."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

POOL_SCALES = (1, 2, 3, 6)


def _bin_matrix(length: int, bins: int, device, dtype) -> torch.Tensor:
    """(bins, length) averaging matrix with adaptive_avg_pool's bins: [floor(i L / n), ceil((i+1) L / n))."""
    idx = torch.arange(length, device=device)
    i = torch.arange(bins, device=device)
    start = torch.div(i * length, bins, rounding_mode="floor")
    end = torch.div((i + 1) * length + bins - 1, bins, rounding_mode="floor")
    inside = (idx[None, :] >= start[:, None]) & (idx[None, :] < end[:, None])
    weights = inside.to(dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """F.adaptive_avg_pool2d(x, bins) as two matrix products: the same numbers, and it exports to
    ONNX for any input size (the ONNX op needs the size to be a multiple of the bins)."""
    ph = _bin_matrix(x.shape[-2], bins, x.device, x.dtype)
    pw = _bin_matrix(x.shape[-1], bins, x.device, x.dtype)
    return torch.einsum("ih,bchw,jw->bcij", ph, x, pw)


class ConvNormAct(nn.Sequential):
    """conv (no bias) + norm + ReLU, mmcv's ConvModule."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, norm: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)
        self.norm = norm
        self.act = nn.ReLU()


class PyramidPoolingHead(nn.Module):
    def __init__(self, in_channels: int, channels: int = 512, scales: Sequence[int] = POOL_SCALES) -> None:
        super().__init__()
        self.scales = tuple(scales)
        # GroupNorm in the pooled branches (the originals' choice: BatchNorm fails on 1x1 maps)
        self.branches = nn.ModuleList(
            ConvNormAct(in_channels, channels, 1, nn.GroupNorm(min(256, channels), channels)) for _ in self.scales
        )
        self.bottleneck = ConvNormAct(in_channels + len(self.scales) * channels, channels, 3, nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [x]
        for scale, branch in zip(self.scales, self.branches, strict=True):
            pooled = branch(adaptive_avg_pool(x, scale))
            outs.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return self.bottleneck(torch.cat(outs, dim=1))
