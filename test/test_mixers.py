"""The token mixers on their own: meta on the true 2-D grid, pyra's reduction, MoH's per-token
routing that really skips heads, its load-balance loss, and batch independence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from depth_attn.models.attention import (
    HeadAttention,
    MetaMixer,
    MoHAttention,
    PyraAttention,
    add_window_mask,
    load_balance_loss,
    make_mixer,
)
from depth_attn.models.swin import shift_window_mask, window_mix


def test_meta_on_a_hand_made_grid_is_the_2d_average_minus_the_input():
    # 3 x 4 grid, one channel, values 0..11 row-major: token (i, j) = 4 i + j
    grid = torch.arange(12, dtype=torch.float32).reshape(1, 12, 1)
    out = MetaMixer()(grid, grid_hw=(3, 4)).reshape(3, 4)
    # corner (0, 0): neighbours {0, 1, 4, 5} -> mean 2.5 (count_include_pad=False: 4 cells, not 9)
    assert out[0, 0].item() == pytest.approx(2.5 - 0)
    # edge (0, 1): {0, 1, 2, 4, 5, 6} -> mean 3
    assert out[0, 1].item() == pytest.approx(3.0 - 1)
    # centre (1, 1): all nine of 0, 1, 2, 4, 5, 6, 8, 9, 10 -> mean 5 = itself: a linear ramp is a fixed point
    assert out[1, 1].item() == pytest.approx(0.0, abs=1e-6)
    # corner (2, 3): {6, 7, 10, 11} -> 8.5
    assert out[2, 3].item() == pytest.approx(8.5 - 11)
    # a spike spreads over its true 2-D neighbours, not its neighbours in the flattened order
    spike = torch.zeros(1, 12, 1)
    spike[0, 5, 0] = 9.0  # (1, 1)
    pooled = (MetaMixer()(spike, grid_hw=(3, 4)) + spike).reshape(3, 4)
    touched = (pooled != 0).nonzero().tolist()
    assert sorted(map(tuple, touched)) == [(i, j) for i in range(3) for j in range(3)]
    assert pooled[0, 3].item() == 0.0  # (0, 3) follows (0, 2) in flat order, yet is not a neighbour of (1, 1)


def test_meta_in_shifted_windows_pools_only_within_each_region():
    torch.manual_seed(0)
    win, shift = 7, 3
    mask = shift_window_mask(14, 21, win, shift, "cpu", torch.float32)
    nw = mask.shape[0]
    x = torch.randn(2 * nw, win * win, 3)
    out = MetaMixer(win)(x, mask=mask)
    same = mask == 0
    ref = torch.empty_like(x)
    for b in range(x.shape[0]):
        for i in range(win):
            for j in range(win):
                cells = [
                    x[b, ii * win + jj]
                    for ii in range(max(0, i - 1), min(win, i + 2))
                    for jj in range(max(0, j - 1), min(win, j + 2))
                    if same[b % nw, i * win + j, ii * win + jj]
                ]
                ref[b, i * win + j] = torch.stack(cells).mean(0) - x[b, i * win + j]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # without a mask the window is one region: exactly AvgPool2d on the 7x7 grid
    plain = MetaMixer(win)(x)
    grid = x.transpose(1, 2).reshape(-1, 3, win, win)
    expect = F.avg_pool2d(grid, 3, 1, 1, count_include_pad=False).flatten(2).transpose(1, 2) - x
    torch.testing.assert_close(plain, expect)


def test_meta_in_windows_sees_the_image_grid_not_window_indices():
    """Through the window machinery a spike in the image spreads to its 2-D image neighbours."""
    img = torch.zeros(1, 14, 14, 1)
    img[0, 5, 5, 0] = 9.0
    out = window_mix(MetaMixer(7), img, None, 7, 0) + img
    assert sorted(map(tuple, (out[0, :, :, 0] != 0).nonzero().tolist())) == [
        (i, j) for i in (4, 5, 6) for j in (4, 5, 6)
    ]


def test_pyra_reduces_keys_by_r_squared_and_is_exact_for_uniform_tokens():
    torch.manual_seed(0)
    pyra = PyraAttention(16, 2, sr_ratio=2, window=7)
    x = torch.randn(3, 49, 16)
    assert pyra._reduce(x, (7, 7), pyra.sr, pyra.norm).shape == (3, 16, 16)  # 7x7 -> padded 8x8 -> 4x4
    meter = PyraAttention(16, 2, head_dim=8, sr_ratio=4, layout="meter")
    assert meter(torch.randn(2, 12 * 40, 16), grid_hw=(12, 40)).shape == (2, 480, 16)
    assert meter.reduced_grid((12, 40)) == (3, 10)
    # the reduced mask keeps, for every query, the region of each key block's top-left token
    mask = shift_window_mask(14, 14, 7, 3, "cpu", torch.float32)
    small = pyra.reduce_mask(mask, (7, 7))
    assert small.shape == (4, 49, 16)
    assert torch.equal(small[:, :, 0], mask[:, :, 0]) and torch.equal(small[:, :, 5], mask[:, :, 2 * 7 + 2])


def _dense_moh_reference(moh: MoHAttention, x: torch.Tensor, mask) -> torch.Tensor:
    """Every head computed, then gated (the study's way): must equal the skipping implementation."""
    q, k, v = moh.project(x, None)
    scores = (q * moh.scale) @ k.transpose(-2, -1)
    bias = moh.position_bias()
    if bias is not None:
        scores = scores + bias[None]
    heads = add_window_mask(scores, mask).softmax(-1) @ v
    shared, routed, index = moh.gates(x)
    routed_dense = torch.zeros(*x.shape[:2], moh.routed).scatter(2, index, routed)
    gates = torch.cat([shared, routed_dense], dim=-1)
    return moh.output((heads.transpose(1, 2) * gates[..., None]).reshape(*x.shape[:2], -1))


def test_moh_skips_unselected_heads_and_equals_the_gated_dense_result():
    torch.manual_seed(0)
    heads, shared, top_k, dim = 24, 4, 12, 96  # Swin-T stage 4: 4 shared + top 12 of 20
    moh = MoHAttention(dim, heads, shared=shared, top_k=top_k, window=7).eval()
    mask = shift_window_mask(7, 14, 7, 3, "cpu", torch.float32)
    x = torch.randn(4, 49, dim)
    with torch.no_grad():
        torch.testing.assert_close(moh(x, mask=mask), _dense_moh_reference(moh, x, mask), atol=1e-5, rtol=1e-4)
    # per token, exactly top_k routed heads are non-zero before the output projection
    _, _, index = moh.gates(x)
    assert index.shape == (4, 49, top_k) and all(len(set(t.tolist())) == top_k for t in index.reshape(-1, top_k)[:50])

    # the attention core (scores, weighted sum) costs (shared + top_k) / heads of the base: count it
    def core_flops(module):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(x, mask=mask)
        counts = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
        return counts["aten.bmm"]  # projections and router are (add)mm; the per-head core is bmm

    base = HeadAttention(dim, heads, window=7).eval()
    ratio = core_flops(moh) / core_flops(base)
    assert ratio == pytest.approx((shared + top_k) / heads, rel=0.02)


def test_moh_load_balance_loss_reaches_the_router_and_is_not_detached():
    torch.manual_seed(0)
    moh = MoHAttention(32, 8, shared=2, top_k=3, window=7).train()
    moh(torch.randn(2, 49, 32))
    loss = load_balance_loss(moh)
    assert loss.requires_grad and loss.grad_fn is not None
    assert loss.item() > 0
    loss.backward()
    assert moh.wg.weight.grad is not None and moh.wg.weight.grad.abs().sum() > 0
    # it trains only the router: the attention projections get nothing from it
    assert moh.qkv.weight.grad is None or moh.qkv.weight.grad.abs().sum() == 0
    # uniform routing: E * sum f_i P_i with f_i = K/E, P_i = 1/E gives K; the loss weight is 0.01
    moh.wg.weight.data.zero_()
    moh(torch.randn(2, 49, 32))
    assert load_balance_loss(moh).item() == pytest.approx(0.01 * 3, rel=1e-5)


@pytest.mark.parametrize("variant", ["base", "meta", "pyra", "moh"])
@pytest.mark.parametrize("source", ["self", "sam", "crf"])
def test_mixers_are_batch_independent(variant, source):
    torch.manual_seed(0)
    mixer = make_mixer(variant, 32, 4, source=source, window=7).eval()
    mask = shift_window_mask(7, 14, 7, 3, "cpu", torch.float32)  # 2 windows per image
    x = torch.randn(6, 49, 32)
    ctx = torch.randn(6, 49, 32) if source != "self" else None
    with torch.no_grad():
        together = mixer(x, context=ctx, mask=mask)
        for i in range(3):
            one = slice(2 * i, 2 * i + 2)
            alone = mixer(x[one], context=None if ctx is None else ctx[one], mask=mask)
            torch.testing.assert_close(together[one], alone, atol=1e-5, rtol=1e-5)
