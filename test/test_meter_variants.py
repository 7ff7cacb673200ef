"""METER variants start from the official baseline: every tensor outside the replaced attention
keeps its name and shape, so the KITTI checkpoint loads with strict=False and the report lists
exactly the attention keys; the baseline itself still loads strictly. MoH-METER is per sample
(the study's code used only x[0] of a batch)."""

from __future__ import annotations

import pytest
import torch

from depth_attn.models import build_model, validate_config
from depth_attn.models.registry import load_weights
from depth_attn.weights import load_state_dict

ATTENTION_KEYS = [
    f"encoder.mvit.{i}.transformer.layers.0.0.fn.{name}"
    for i in range(3)
    for name in ("to_qkv.weight", "to_out.0.weight", "to_out.0.bias")
]


@pytest.fixture(scope="module")
def kitti_state(kitti_checkpoint):
    return load_state_dict(kitti_checkpoint)


def _report(variant, state):
    model = build_model("meter", "tiny", variant)
    return model, load_weights(model, state, validate_config("meter", "tiny", variant))


def test_base_loads_strictly(kitti_state):
    model, report = _report("base", kitti_state)
    assert report.exact and len(report.matched) == 261
    assert len(kitti_state) == 261


def test_meta_takes_everything_but_the_attention(kitti_state):
    model, report = _report("meta", kitti_state)
    assert report.missing == [] and report.derived == []
    assert sorted(report.unused) == sorted(ATTENTION_KEYS)


def test_pyra_keeps_the_output_projection_and_derives_q_kv(kitti_state):
    model, report = _report("pyra", kitti_state)
    assert report.unused == []  # to_qkv is taken: its rows are to_q and to_kv
    prefix = "encoder.mvit.{}.transformer.layers.0.0.fn."
    derived = ("to_q.weight", "to_kv.weight", "sr.weight", "sr.bias")
    assert sorted(report.derived) == sorted(prefix.format(i) + n for i in range(3) for n in derived)
    norms = ("norm.weight", "norm.bias")
    assert sorted(report.missing) == sorted(prefix.format(i) + n for i in range(3) for n in norms)
    qkv = kitti_state[prefix.format(1) + "to_qkv.weight"]
    q = model.state_dict()[prefix.format(1) + "to_q.weight"]
    assert torch.equal(q, qkv[: q.shape[0]])
    assert torch.equal(
        model.state_dict()[prefix.format(0) + "to_out.0.weight"], kitti_state[prefix.format(0) + "to_out.0.weight"]
    )


def test_moh_keeps_every_projection_and_adds_only_routers(kitti_state):
    model, report = _report("moh", kitti_state)
    assert report.unused == [] and report.missing == []
    prefix = "encoder.mvit.{}.transformer.layers.0.0.fn."  # routers start at zero: every gate 1
    assert sorted(report.derived) == sorted(
        prefix.format(i) + f"{n}.weight" for i in range(3) for n in ("wg", "wg_0", "wg_1")
    )


def test_every_non_attention_tensor_is_loaded(kitti_state):
    for variant in ("meta", "pyra", "moh"):
        model, _ = _report(variant, kitti_state)
        own = model.state_dict()
        for key, value in kitti_state.items():
            if key not in ATTENTION_KEYS:
                assert torch.equal(own[key], value), f"{variant}: {key}"


@pytest.mark.heavy
@pytest.mark.parametrize("variant", ["base", "meta", "pyra", "moh"])
def test_meter_variants_are_per_sample(variant, kitti_state):
    torch.manual_seed(0)
    model, _ = _report(variant, kitti_state)
    model.eval()
    x = torch.rand(3, 3, 192, 256)
    with torch.no_grad():
        together = model(x)
        for i in range(3):
            torch.testing.assert_close(model(x[i : i + 1]), together[i : i + 1], atol=1e-5, rtol=1e-5)
    assert together.shape == (3, 1, 48, 64)


def test_pyra_ratio_is_an_option():
    two = build_model("meter", "tiny", "pyra")
    four = build_model("meter", "tiny", "pyra", sr_ratio=4)
    assert two.encoder.mvit[0].transformer.layers[0][0].fn.sr.kernel_size == (2, 2)
    assert four.encoder.mvit[0].transformer.layers[0][0].fn.sr.kernel_size == (4, 4)
