"""Every tiny configuration (20 Swin-based, 4 METER) really runs: right shape, finite positive
metres, the mixer substituted in exactly the placed part and used, every trainable parameter
connected to the output (the study's NeWCRFs meta/pyra decoders are not), batch-independent, and
a variant takes every baseline tensor outside the replaced attention (the study's MoH-PixelFormer
drops its encoder weights).

One model is built per configuration and all checks run on it, at 32x64 (METER 128x192)."""

from __future__ import annotations

import functools

import pytest
import torch
from test_zoo import MIXER_TYPES, count_mixers, expected_mixers

from depth_attn.models import build_model, list_configs
from depth_attn.models.attention import HeadAttention, MetaMixer, MoHAttention, PyraAttention
from depth_attn.models.registry import load_weights
from depth_attn.paths import shared_weights_dir
from depth_attn.weights import load_state_dict

TINY = [c for c in list_configs() if c.size == "tiny"]
HW = {"meter": (128, 192), "pixelformer": (32, 64), "newcrfs": (32, 64)}
VARIANT_MIXERS = (MetaMixer, PyraAttention, MoHAttention)


@functools.cache
def base_state(network: str) -> dict:
    """METER: the official KITTI checkpoint; the others: a freshly initialised baseline."""
    if network == "meter":
        return load_state_dict(shared_weights_dir() / "meter" / "meter_xxs_kitti.pth")
    torch.manual_seed(1)
    return {k: v.clone() for k, v in build_model(network, "tiny").state_dict().items()}


def check_forward(model, config, x):
    with torch.no_grad():
        y = model(x)
    h, w = x.shape[-2:]
    expect = (x.shape[0], 1, h // 4, w // 4) if config.network == "meter" else (x.shape[0], 1, h, w)
    assert y.shape == expect
    assert torch.isfinite(y).all()
    if config.network != "meter":  # metres in (0, max_depth]
        assert y.min() > 0 and y.max() <= 80.0
    return y


def check_batch_independent(model, x, y):
    with torch.no_grad():
        for i in range(x.shape[0]):
            torch.testing.assert_close(model(x[i : i + 1]), y[i : i + 1], atol=1e-5, rtol=1e-5)


def check_connected_and_mixers_used(model, config, x):
    """One backward pass: every trainable parameter gets a non-zero gradient from the output, and so
    does every mixer's output (nothing is computed and thrown away: the study's meta decoders)."""
    outputs = {}

    def keep(name):
        def hook(module, inputs, out):
            out.retain_grad()
            outputs[name] = out

        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, MIXER_TYPES)]
    try:
        model.zero_grad(set_to_none=True)
        y = model(x[:1])
        # metres are positive: a log loss; METER's raw output is not: a squared one
        (y.pow(2).mean() if config.network == "meter" else y.log().mean()).backward()
    finally:
        for hook in hooks:
            hook.remove()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not dead, f"parameters with no gradient from the output: {dead[:10]} ({len(dead)} in all)"
    assert outputs, "no mixer ran"
    unused = [n for n, out in outputs.items() if out.grad is None or out.grad.abs().sum() == 0]
    assert not unused, f"mixer outputs that do not reach the depth: {unused}"


def check_loads_baseline(model, config):
    state = base_state(config.network)
    report = load_weights(model, state, config)
    not_taken = report.missing + report.unused + report.derived
    if config.variant == "base":
        assert not_taken == []
        return
    # every key not taken belongs to a replaced attention module; everything else was loaded
    replaced = tuple(n + "." for n, m in model.named_modules() if isinstance(m, VARIANT_MIXERS))
    # a decoder block whose mixer has no queries (meta) has no query pre-norm either
    replaced += tuple(
        n + ".norm1."
        for n, m in model.named_modules()
        if isinstance(getattr(m, "attn", None), MetaMixer) and not n.startswith("backbone.")
    )
    for key in not_taken:
        assert key.startswith(replaced), f"{config.name}: {key} is outside the replaced attention"
    own = model.state_dict()
    for key, value in state.items():
        if key in own and key not in report.unused:
            assert torch.equal(own[key], value), key
    if config.variant == "moh":  # MoH keeps every projection: only its routers are new
        assert report.unused == []
        assert all(k.split(".")[-2] in ("wg", "wg_0", "wg_1") for k in report.missing + report.derived)
    if config.placement == "decoder":  # the whole encoder comes from the baseline
        assert not [k for k in not_taken if k.startswith(("backbone.", "encoder."))]


@pytest.mark.heavy
@pytest.mark.parametrize("config", TINY, ids=str)
def test_tiny_configuration(config):
    torch.manual_seed(0)
    model = build_model(config.network, config.size, config.variant, config.placement).eval()
    counts = count_mixers(model, config.network)
    for part, expected in expected_mixers(config).items():
        assert {t: n for t, n in counts[part].items() if t in MIXER_TYPES} == expected
    check_loads_baseline(model, config)  # METER: from here on with the official weights
    x = torch.rand(3, 3, *HW[config.network])  # METER 128x192, Swin 32x64 (stage 4 is one padded window)
    y = check_forward(model, config, x)
    check_batch_independent(model, x, y)
    check_connected_and_mixers_used(model, config, x)


def test_study_disconnection_is_absent_newcrfs_meta_and_pyra_decoders():
    """Pitfall 1: with meta or pyra in the decoder, perturbing the pyramid head, CRF levels 3..1 and
    Swin stages 2..4 must change the output."""
    x = torch.rand(1, 3, 32, 64)
    for variant in ("meta", "pyra"):
        torch.manual_seed(0)
        model = build_model("newcrfs", "tiny", variant, "decoder").eval()
        with torch.no_grad():
            ref = model(x)
            for name in (
                "decoder",
                "crf3",
                "crf2",
                "crf1",
                "backbone.backbone.layers.1",
                "backbone.backbone.layers.2",
                "backbone.backbone.layers.3",
            ):
                part = model.get_submodule(name)
                saved = [p.clone() for p in part.parameters()]
                for p in part.parameters():
                    p.add_(0.05 * torch.randn_like(p))
                assert (model(x) - ref).abs().max() > 1e-4, f"{variant}: perturbing {name} changes nothing"
                for p, s in zip(part.parameters(), saved, strict=True):
                    p.copy_(s)


def test_decoder_base_attention_is_head_attention_with_position_bias():
    model = build_model("pixelformer", "tiny")
    sam = model.sam1.sam_block.attn
    assert type(sam) is HeadAttention and sam.source == "sam" and sam.window == 7
    crf = build_model("newcrfs", "tiny").crf0.blocks[1]
    assert crf.attn.source == "crf" and crf.shift == 3
