"""The plumbing every token mixer shares (``attention.py`` has the mixers): the token grid, Swin's
relative positions and window mask, heads split out of a projection, the attention product, and
``TokenMixer``, the base with the mixers' common state, output projection and call."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

GridHW = Tuple[int, int]
SOURCES = ("self", "sam", "crf")
LAYOUTS = ("meter", "swin")


def relative_position_index(win: int) -> torch.Tensor:
    """(win^2, win^2) index into a (2 win - 1)^2 table of relative offsets (Swin's layout)."""
    coords = torch.stack(torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[..., 0] + win - 1) * (2 * win - 1) + (rel[..., 1] + win - 1)


def add_window_mask(scores: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """scores (B * nW, H, N, M) + mask (nW, N, M) broadcast over batch and heads."""
    if mask is None:
        return scores
    nw = mask.shape[0]
    bw, h, n, m = scores.shape
    return (scores.view(bw // nw, nw, h, n, m) + mask[None, :, None]).view(bw, h, n, m)


def tokens_to_map(x: torch.Tensor, grid_hw: GridHW) -> torch.Tensor:
    """(B', N, C) -> (B', C, h, w)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], grid_hw[0], grid_hw[1])


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def split_heads(x: torch.Tensor, parts: int, heads: int, head_dim: int) -> torch.Tensor:
    """(B', N, parts * H * d) -> (parts, B', H, N, d): the projected queries, keys or values of each head."""
    b, n = x.shape[:2]
    return x.reshape(b, n, parts, heads, head_dim).permute(2, 0, 3, 1, 4)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None,
           bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """softmax(q k^T + bias + mask) v for already scaled queries q (B', H, N, d), k and v (B', H, M, d);
    ``bias`` broadcasts over the batch, ``mask`` is Swin's window mask (``add_window_mask``)."""
    scores = q @ k.transpose(-2, -1)
    if bias is not None:
        scores = scores + bias
    return add_window_mask(scores, mask).softmax(dim=-1) @ v


def _check_source(source: str, layout: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "meter" and source != "self":
        raise ValueError("the METER layout is self-attention only")


class TokenMixer(nn.Module):
    """What every mixer shares: where its queries, keys and values come from (``source``), the
    parameter layout, the window, the heads and their scale, the output projection and the call
    (``forward`` checks the context and hands over to ``mix``)."""

    def __init__(self, source: str = "self", layout: str = "swin", window: Optional[int] = None) -> None:
        """``source``: where queries, keys and values come from (``self``, ``sam``, ``crf``, see
        ``attention.py``); ``layout``: the parameter names (``meter`` or ``swin``); ``window``: the
        Swin window's side (its grid and relative position bias), None for METER's grid per call."""
        super().__init__()
        _check_source(source, layout)
        self.source, self.layout, self.window = source, layout, window

    def _init_heads(self, dim: int, heads: int, head_dim: Optional[int]) -> int:
        """Set dim, heads, head_dim and the scale; the inner width heads * head_dim."""
        self.dim, self.heads = dim, heads
        self.head_dim = head_dim or dim // heads
        inner = self.heads * self.head_dim
        if self.source == "crf" and inner != dim:
            raise ValueError("the CRF values are not projected: heads * head_dim must equal dim")
        self.scale = self.head_dim**-0.5
        return inner

    def _init_output(self, inner: int, dim: int) -> None:
        """The output projection under the layout's name (``to_out.0`` or ``proj``)."""
        if self.layout == "meter":
            self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))
        else:
            self.proj = nn.Linear(inner, dim)

    def output(self, heads_out: torch.Tensor) -> torch.Tensor:
        """(B', N, H * d) -> (B', N, dim)."""
        return self.to_out(heads_out) if self.layout == "meter" else self.proj(heads_out)

    def grid(self, grid_hw: Optional[GridHW]) -> GridHW:
        """The token grid of this call: ``grid_hw``, else the window."""
        grid = grid_hw or (self.window, self.window)
        if grid[0] is None:
            raise ValueError(f"{type(self).__name__} needs grid_hw (or a window size)")
        return grid

    def forward(
        self,
        x: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        mask: Optional[torch.Tensor] = None,
        grid_hw: Optional[GridHW] = None,
    ) -> torch.Tensor:
        return self.mix(x, context, mask, grid_hw)

    def mix(self, x: torch.Tensor, context: Optional[torch.Tensor], mask: Optional[torch.Tensor],
            grid_hw: Optional[GridHW]) -> torch.Tensor:
        raise NotImplementedError

    def _check_context(self, context: Optional[torch.Tensor], what: str = "attention") -> None:
        if self.source != "self" and context is None:
            raise ValueError(f"{self.source} {what} needs a context tensor")
