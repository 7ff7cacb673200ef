"""Token mixers: the attention sub-layers that the study's variants replace.

Every mixer takes tokens (B, N, C) laid row-major on a 2-D grid ``grid_hw`` = (h, w), h * w = N,
and returns (B, N, C). Cross-attention mixers also take a key/value token tensor.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Plain multi-head self-attention (METER's layout: ``to_qkv`` without bias, ``to_out.0``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, grid_hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.to_qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        out = attn.softmax(dim=-1) @ v
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))
