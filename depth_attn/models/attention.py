"""Token mixers: the attention sub-layers that the study's variants replace, all in one place.

Every mixer takes query tokens ``x`` (B', N, C) laid row-major on a 2-D grid (h, w), h * w = N,
and returns (B', N, C_out). The grid is the Swin window (fixed at construction) or, for METER's
patch tokens, given per call as ``grid_hw``. Cross-attention mixers also take ``context``, the
token tensor keys/values come from. ``mask`` is Swin's additive shifted-window mask
(nW, N, N): 0 inside a region, -100 across regions; B' = batch * nW then.

Where the queries, keys and values come from (``source``):

- ``self``: all from ``x`` (METER, Swin encoder).
- ``sam``: queries from ``x`` (the decoder stream), keys and values from ``context`` (the
  encoder skip) -- PixelFormer's Skip Attention Module.
- ``crf``: queries and keys from ``x`` (the encoder features), values from ``context`` (the
  upstream prediction), not projected -- NeWCRFs' window FC-CRF.

Parameter names follow the layouts of the originals (``meter``: ``to_qkv``/``to_out.0``;
``swin``: ``qkv``/``proj``/``relative_position_bias_table``; ``sam``: ``q``/``kv``; ``crf``:
``qk``), so a variant that keeps a projection (MoH keeps them all, Pyra keeps the output
projection) loads it from the baseline checkpoint.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.mixing import (  # noqa: F401 (add_window_mask, relative_position_index: imported from here)
    LAYOUTS,
    SOURCES,
    GridHW,
    TokenMixer,
    add_window_mask,
    attend,
    map_to_tokens,
    relative_position_index,
    split_heads,
    tokens_to_map,
)

# ---------------------------------------------------------------------------------------------
# base attention (self or cross), optional window relative position bias


class HeadAttention(TokenMixer):
    """Multi-head attention with the projections of the originals; the base of MoH.

    ``window`` adds Swin's learned relative position bias for a ``window`` x ``window`` grid."""

    def __init__(self, dim: int, heads: int, head_dim: Optional[int] = None, qkv_bias: bool = True,
                 **where: Any) -> None:
        """``where``: ``TokenMixer``'s source, layout and window."""
        super().__init__(**where)
        inner = self._init_heads(dim, heads, head_dim)
        if self.layout == "meter":
            self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        elif self.source == "self":
            self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        elif self.source == "sam":
            self.q = nn.Linear(dim, inner, bias=qkv_bias)
            self.kv = nn.Linear(dim, 2 * inner, bias=qkv_bias)
        else:
            self.qk = nn.Linear(dim, 2 * inner, bias=qkv_bias)
        self._init_output(inner, dim)
        if self.window is not None:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * self.window - 1) ** 2, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            self.register_buffer("relative_position_index", relative_position_index(self.window), persistent=False)

    # -- pieces shared with the variants
    def project(self, x: torch.Tensor, context: Optional[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """q (B', H, N, d), k and v (B', H, M, d)."""
        h, d = self.heads, self.head_dim
        if self.layout == "meter" or self.source == "self":
            q, k, v = split_heads((self.to_qkv if self.layout == "meter" else self.qkv)(x), 3, h, d)
            return q, k, v
        self._check_context(context)
        if self.source == "sam":
            k, v = split_heads(self.kv(context), 2, h, d)
            return split_heads(self.q(x), 1, h, d)[0], k, v
        q, k = split_heads(self.qk(x), 2, h, d)
        return q, k, split_heads(context, 1, h, d)[0]

    def position_bias(self) -> Optional[torch.Tensor]:
        if self.window is None:
            return None
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.reshape(n, n, self.heads).permute(2, 0, 1)  # (H, N, N)

    def mix(self, x, context, mask, grid_hw) -> torch.Tensor:
        q, k, v = self.project(x, context)
        bias = self.position_bias()
        out = attend(q * self.scale, k, v, mask, None if bias is None else bias[None])
        b, n = x.shape[:2]
        return self.output(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


# ---------------------------------------------------------------------------------------------
# meta: MetaFormer / PoolFormer pooling on the 2-D grid


def _restricted_mean(x: torch.Tensor, same: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of each element and its two neighbours along ``dim``, a neighbour counting only where
    ``same`` (1 between element i and i+1 along ``dim``, 0 across a cut) says it belongs."""
    length = x.shape[dim]
    nxt = x.narrow(dim, 1, length - 1) * same
    prv = x.narrow(dim, 0, length - 1) * same
    pad_after = [0, 0] * (x.dim() - 1 - dim) + [0, 1]
    pad_before = [0, 0] * (x.dim() - 1 - dim) + [1, 0]
    total = x + F.pad(nxt, pad_after) + F.pad(prv, pad_before)
    count = 1.0 + F.pad(same, pad_after) + F.pad(same, pad_before)
    return total / count


class MetaMixer(TokenMixer):
    """AvgPool2d(3, stride 1, padding 1, count_include_pad=False) on the 2-D token grid, minus the
    input (self mixing). No queries, keys, values or parameters.

    Cross mixing (SAM, CRF) pools the value stream ``context`` and does not subtract it: the
    block's residual adds the query stream, not the values, so there is no identity to cancel
    (and subtracting would leave only a high-pass of the upstream prediction).

    With a shifted-window ``mask`` the 3x3 neighbourhood is restricted to the token's own region
    (tokens rolled in from the far side of the image are not neighbours), counted as
    count_include_pad=False does: the regions are axis-aligned rectangles, so the restricted 3x3
    mean is a restricted mean along rows, then along columns."""

    def __init__(self, window: Optional[int] = None, source: str = "self") -> None:
        super().__init__(source, "swin", window)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def mix(self, x, context, mask, grid_hw) -> torch.Tensor:
        grid = self.grid(grid_hw)
        self._check_context(context, "mixing")
        src = x if self.source == "self" else context
        if mask is None:
            pooled = map_to_tokens(self.pool(tokens_to_map(src, grid)))
        else:
            pooled = self._masked_pool(src, mask, grid)
        return pooled - src if self.source == "self" else pooled

    @staticmethod
    def _masked_pool(src: torch.Tensor, mask: torch.Tensor, grid: GridHW) -> torch.Tensor:
        h, w = grid
        nw = mask.shape[0]
        bw, n, c = src.shape
        same = (mask == 0).to(src.dtype).reshape(nw, h, w, h, w)
        rows = torch.arange(h, device=src.device)
        cols = torch.arange(w, device=src.device)
        # same region as the neighbour below (nW, h-1, w) and to the right (nW, h, w-1)
        below = same[:, rows[:-1, None], cols[None, :], rows[1:, None], cols[None, :]]
        right = same[:, rows[:, None], cols[None, :-1], rows[:, None], cols[None, 1:]]
        grid_x = src.reshape(bw // nw, nw, h, w, c)
        out = _restricted_mean(grid_x, below[None, ..., None], dim=2)
        out = _restricted_mean(out, right[None, ..., None], dim=3)
        return out.reshape(bw, n, c)


# ---------------------------------------------------------------------------------------------
# pyra: PVT spatial-reduction attention


class PyraAttention(TokenMixer):
    """Queries from every token; keys and values from the grid reduced by Conv2d(d, d, R, R) and a
    LayerNorm (R^2 fewer keys). The grid is zero-padded up to a multiple of R (7x7 windows with
    R = 2 give 4x4 keys). In cross-attention the reduction applies to the key/value input(s).

    Under a shifted-window mask a reduced key takes the region of its block's top-left token,
    which is exact whenever (window - shift) is a multiple of R (7 - 3 = 4, R = 2)."""

    def __init__(self, dim: int, heads: int, head_dim: Optional[int] = None, sr_ratio: int = 2,
                 qkv_bias: bool = True, **where: Any) -> None:
        """``where``: ``TokenMixer``'s source, layout and window."""
        super().__init__(**where)
        layout, source = self.layout, self.source
        if sr_ratio < 1:
            raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
        self.sr_ratio = sr_ratio
        inner = self._init_heads(dim, heads, head_dim)
        bias = qkv_bias and layout != "meter"
        if layout == "meter":
            self.to_q = nn.Linear(dim, inner, bias=False)
            self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        else:
            self.q = nn.Linear(dim, inner, bias=bias)
            if source == "crf":
                self.k = nn.Linear(dim, inner, bias=bias)
            else:
                self.kv = nn.Linear(dim, 2 * inner, bias=bias)
        self._init_output(inner, dim)
        self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
        self.norm = nn.LayerNorm(dim)
        if source == "crf":  # keys come from x, values from the upstream stream: reduce both
            self.sr_v = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm_v = nn.LayerNorm(dim)

    def reduced_grid(self, grid: GridHW) -> GridHW:
        r = self.sr_ratio
        return (-(-grid[0] // r), -(-grid[1] // r))

    def _reduce(self, tokens: torch.Tensor, grid: GridHW, conv: nn.Conv2d, norm: nn.LayerNorm) -> torch.Tensor:
        r = self.sr_ratio
        fmap = tokens_to_map(tokens, grid)
        fmap = F.pad(fmap, (0, (-grid[1]) % r, 0, (-grid[0]) % r))
        return norm(map_to_tokens(conv(fmap)))

    def reduce_mask(self, mask: torch.Tensor, grid: GridHW) -> torch.Tensor:
        """(nW, N, N) -> (nW, N, M): a reduced key carries its block's top-left token's region."""
        r = self.sr_ratio
        rh, rw = self.reduced_grid(grid)
        rows = torch.arange(rh, device=mask.device) * r
        cols = torch.arange(rw, device=mask.device) * r
        keys = (rows[:, None] * grid[1] + cols[None, :]).reshape(-1)
        return mask.index_select(2, keys)

    def mix(self, x, context, mask, grid_hw) -> torch.Tensor:
        grid = self.grid(grid_hw)
        b, n, _ = x.shape
        h, d = self.heads, self.head_dim
        self._check_context(context)
        if self.layout == "meter":
            q = self.to_q(x)
            kv = self.to_kv(self._reduce(x, grid, self.sr, self.norm))
        else:
            q = self.q(x)
            if self.source == "crf":
                k = self.k(self._reduce(x, grid, self.sr, self.norm))
                v = self._reduce(context, grid, self.sr_v, self.norm_v)
                kv = torch.cat([k, v], dim=-1)
            else:
                kv = self.kv(self._reduce(x if self.source == "self" else context, grid, self.sr, self.norm))
        k, v = split_heads(kv, 2, h, d)
        reduced_mask = None if mask is None else self.reduce_mask(mask, grid)
        out = attend(split_heads(q, 1, h, d)[0] * self.scale, k, v, reduced_mask)
        return self.output(out.transpose(1, 2).reshape(b, n, h * d))


# ---------------------------------------------------------------------------------------------
# moh: Mixture-of-Head attention


class MoHAttention(HeadAttention):
    """Mixture-of-Head attention (Jin et al. 2024): output = sum_i g_i head_i W_O,i.

    ``shared`` heads are always active, gate a1 * softmax(W_s x)_i * shared; the other
    ``heads - shared`` are routed: each token keeps its top-``top_k``, gate
    a2 * (renormalised softmax(W_r x) over the kept) * top_k; [a1, a2] = 2 softmax(W_h x). (The
    factors ``shared``, ``top_k`` and 2 are the official code's, so gates average about one and
    the baseline projections, which MoH keeps under their names, stay meaningful.)

    Unselected routed heads are skipped, not computed and zeroed: each token gathers the keys and
    values of its own top-K heads (topk + gather, scatter back), so the scores, softmax and
    weighted sum cost K / (heads - shared) of the dense routed part. Everything is per token, so
    results do not depend on the batch. The projections stay dense (every head's keys serve some
    token). In training, ``aux_loss`` holds this call's load-balance loss, E * sum_i f_i P_i,
    attached to the graph (never detached); ``load_balance_loss(model)`` collects it."""

    def __init__(self, dim: int, heads: int, head_dim: Optional[int] = None, shared: int = 1, top_k: int = 1,
                 **attention: Any) -> None:
        """``attention``: the rest of ``HeadAttention``'s arguments (source, layout, window, qkv_bias)."""
        super().__init__(dim, heads, head_dim, **attention)
        routed = heads - shared
        if not 1 <= shared <= heads or not (0 <= top_k <= routed) or (routed > 0 and top_k == 0):
            raise ValueError(f"MoH split {shared} shared + top-{top_k} of {routed} routed is invalid for {heads} heads")
        self.shared, self.routed, self.top_k = shared, routed, top_k
        if routed > 0:
            self.wg = nn.Linear(dim, routed, bias=False)
            self.wg_0 = nn.Linear(dim, 2, bias=False)
        if shared > 1:
            self.wg_1 = nn.Linear(dim, shared, bias=False)
        self.aux_loss: Optional[torch.Tensor] = None

    def gates(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """shared gates (B', N, S), routed gates (B', N, K) and indices (B', N, K) of the kept heads."""
        b, n, _ = x.shape
        if self.shared > 1:
            shared = self.wg_1(x).softmax(dim=-1) * self.shared
        else:
            shared = x.new_ones(b, n, 1)
        if self.routed == 0:
            return shared, None, None
        probs = self.wg(x).softmax(dim=-1)
        kept, index = probs.topk(self.top_k, dim=-1)
        routed = kept / kept.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(kept.dtype).eps) * self.top_k
        if self.training:
            chosen = F.one_hot(index, self.routed).to(probs.dtype).sum(dim=2)  # (B', N, E)
            f = chosen.reshape(-1, self.routed).mean(dim=0)
            p = probs.reshape(-1, self.routed).mean(dim=0)
            self.aux_loss = self.routed * (f * p).sum()
        balance = self.wg_0(x).softmax(dim=-1) * 2
        return shared * balance[..., :1], routed * balance[..., 1:], index

    def mix(self, x, context, mask, grid_hw) -> torch.Tensor:
        b, n, _ = x.shape
        s, d = self.shared, self.head_dim
        q, k, v = self.project(x, context)
        q = q * self.scale
        bias = self.position_bias()
        shared_gates, routed_gates, index = self.gates(x)

        # shared heads: dense attention
        shared_bias = None if bias is None else bias[None, :s]
        out_shared = attend(q[:, :s], k[:, :s], v[:, :s], mask, shared_bias)  # (B', S, N, d)
        parts = [out_shared.transpose(1, 2) * shared_gates[..., None]]  # (B', N, S, d)

        if self.routed > 0:
            parts.append(self._routed(q[:, s:], k[:, s:], v[:, s:], bias, mask, routed_gates, index))
        out = torch.cat(parts, dim=2).reshape(b, n, self.heads * d)
        return self.output(out)

    def _routed(self, q, k, v, bias, mask, gates, index) -> torch.Tensor:
        """q (B', E, N, d), k/v (B', E, M, d) -> (B', N, E, d), zero for the heads a token skips."""
        bw, e, n, d = q.shape
        m = k.shape[2]
        kk = self.top_k
        if kk == e:  # every routed head is kept: nothing to skip, gate them densely
            out = attend(q, k, v, mask, None if bias is None else bias[None, self.shared :])
            dense_gates = torch.zeros(bw, n, e, dtype=gates.dtype, device=gates.device).scatter(2, index, gates)
            return out.transpose(1, 2) * dense_gates[..., None]
        # gather, per token, the query, keys, values (and position bias) of its own top-K heads
        q_sel = q.transpose(1, 2).gather(2, index[..., None].expand(bw, n, kk, d))  # (B', N, K, d)
        kv_index = index[..., None, None].expand(bw, n, kk, m, d)
        k_sel = k[:, None].expand(bw, n, e, m, d).gather(2, kv_index)  # (B', N, K, M, d)
        v_sel = v[:, None].expand(bw, n, e, m, d).gather(2, kv_index)
        scores = torch.einsum("bnkd,bnkmd->bnkm", q_sel, k_sel)
        if bias is not None:
            routed_bias = bias[self.shared :].transpose(0, 1)  # (N, E, M)
            scores = scores + routed_bias[None].expand(bw, n, e, m).gather(2, index[..., None].expand(bw, n, kk, m))
        if mask is not None:
            nw = mask.shape[0]
            scores = (scores.view(bw // nw, nw, n, kk, m) + mask[None, :, :, None, :]).view(bw, n, kk, m)
        out_sel = torch.einsum("bnkm,bnkmd->bnkd", scores.softmax(dim=-1), v_sel) * gates[..., None]
        zeros = torch.zeros(bw, n, e, d, dtype=out_sel.dtype, device=out_sel.device)
        return zeros.scatter(2, index[..., None].expand(bw, n, kk, d), out_sel)


def load_balance_loss(model: nn.Module, weight: float = 0.01) -> torch.Tensor:
    """The MoH load-balance loss of the last training forward, weighted (0 without MoH). Add it to
    the task loss: it is part of the graph, so it trains the routers."""
    losses: List[torch.Tensor] = [
        m.aux_loss for m in model.modules() if isinstance(m, MoHAttention) and m.aux_loss is not None
    ]
    if not losses:
        return torch.zeros(())
    return weight * torch.stack(losses).sum()


def clear_load_balance_loss(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, MoHAttention):
            module.aux_loss = None


def make_mixer(variant: str, dim: int, heads: int, head_dim: Optional[int] = None, sr_ratio: int = 2,
               moh_split: Optional[Tuple[int, int]] = None, **where: Any) -> nn.Module:
    """The token mixer of a variant: ``base`` (HeadAttention), ``meta``, ``pyra`` or ``moh``
    (``moh_split`` = (shared heads, top-K of the rest); default a quarter shared, top half).
    ``where``: where it mixes, as ``HeadAttention`` takes it (``source``, ``layout``, ``window``)."""
    if variant == "meta":
        return MetaMixer(where.get("window"), source=where.get("source", "self"))
    if variant == "base":
        return HeadAttention(dim, heads, head_dim, **where)
    if variant == "pyra":
        return PyraAttention(dim, heads, head_dim, sr_ratio=sr_ratio, **where)
    if variant == "moh":
        shared, top_k = moh_split or default_moh_split(heads)
        return MoHAttention(dim, heads, head_dim, shared=shared, top_k=top_k, **where)
    raise ValueError(f"unknown variant {variant!r}")


def default_moh_split(heads: int) -> Tuple[int, int]:
    """Where the study gives no split (the decoders): a quarter of the heads shared, each token
    keeping the top half of the heads (4 heads: 1 shared + top 2 of 3; 32: 8 + top 16 of 24)."""
    shared = max(1, heads // 4)
    return shared, min(heads - shared, max(1, heads // 2)) if heads > shared else 0
