"""The model zoo registry: 72 configurations, clear errors, every configuration builds with the
mixer really substituted in exactly the placed part, parameter counts, METER at every size.

Base and large Swin networks are built on the ``meta`` device (shapes, no memory, no
arithmetic): parameter counts and module types are exact there. The tiny Swin networks run in
test_zoo_swin.py."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from timm.models.swin_transformer import WindowAttention

from depth_attn.models import ConfigError, ModelConfig, build_model, list_configs, validate_config
from depth_attn.models.attention import HeadAttention, MetaMixer, MoHAttention, PyraAttention
from depth_attn.models.decoders import DECODER_DIMS
from depth_attn.models.registry import model_parts, placement_variants

VARIANT_TYPE = {"meta": MetaMixer, "pyra": PyraAttention, "moh": MoHAttention}
SWIN_BLOCKS = {"tiny": 12, "base": 24, "large": 24}
DECODER_MIXERS = {"pixelformer": 4, "newcrfs": 8}  # one SAM block per level; two CRF blocks per level
METER_PARAMS = {"tiny": 713_464, "base": 1_449_760, "large": 3_295_168}
# the spec's totals (NeWCRFs), backbones, and the 3x3 ``proj`` convolutions PixelFormer's public
# code defines but never calls (left out here: they would train nothing)
# specs/attention-variants.md's figures ("about"), each with half a unit of the last digit it is quoted
# to: whole networks 88.9 / 140 / 270.9 M are PixelFormer's (NeWCRFs' CRF heads come to ~0.45 M fewer, so
# it gets 0.5 M); the smallest decoder level (sam1 / crf0, 0.38 / 0.55 M) moves a total by more than that
NETWORK_PARAMS_M = {"tiny": (88.9, 0.05), "base": (140.0, 0.5), "large": (270.9, 0.05)}
BACKBONE_PARAMS_M = {"tiny": (27.5, 0.05), "base": (86.8, 0.06), "large": (195.0, 0.05)}  # 86.8: 86.74 rounded up
PIXELFORMER_UNUSED_PROJ = sum(d * d * 9 + d for d in DECODER_DIMS)


def test_there_are_72_configurations_with_unique_names():
    configs = list_configs()
    assert len(configs) == 72
    assert Counter(c.network for c in configs) == {"meter": 12, "pixelformer": 30, "newcrfs": 30}
    assert len({c.name for c in configs}) == 72
    assert all(ModelConfig.parse(c.name) == c for c in configs)
    assert ModelConfig.parse("newcrfs-tiny-meta-decoder") == ModelConfig("newcrfs", "tiny", "meta", "decoder")


@pytest.mark.parametrize(
    "args, words",
    [
        (("meter", "tiny", "meta", "decoder"), "encoder only"),
        (("meter", "tiny", "base", "encoder"), "placement"),
        (("pixelformer", "tiny", "base", "decoder"), "replaces nothing"),
        (("newcrfs", "huge"), "unknown size"),
        (("swin",), "unknown network"),
        (("newcrfs", "tiny", "flash"), "unknown variant"),
    ],
)
def test_invalid_combinations_are_clear_errors(args, words):
    with pytest.raises(ConfigError, match=words):
        build_model(*args)


def test_bad_options_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown build option"):
        build_model("meter", "tiny", "pyra", reduction=2)
    with pytest.raises(ConfigError, match="sr_ratio"):
        build_model("meter", "tiny", "pyra", sr_ratio=0)
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("newcrfs", "tiny").eval()(torch.rand(1, 3, 70, 96))


def count_mixers(model: torch.nn.Module, network: str) -> dict:
    """Exact module types per part: {'encoder': Counter, 'decoder': Counter}."""
    return {part: Counter(type(m) for _, m in mods) for part, mods in model_parts(model, network).items()}


def expected_mixers(config: ModelConfig) -> dict:
    enc_variant, dec_variant = placement_variants(config)
    if config.network == "meter":
        enc = {VARIANT_TYPE.get(enc_variant, HeadAttention): 3}
        return {"encoder": enc, "decoder": {}}
    enc = {VARIANT_TYPE.get(enc_variant, WindowAttention): SWIN_BLOCKS[config.size]}
    dec = {VARIANT_TYPE.get(dec_variant, HeadAttention): DECODER_MIXERS[config.network]}
    return {"encoder": enc, "decoder": dec}


MIXER_TYPES = (WindowAttention, HeadAttention, MetaMixer, PyraAttention, MoHAttention)


@pytest.mark.parametrize("config", [c for c in list_configs() if c.network != "meter" and c.size != "tiny"], ids=str)
def test_large_swin_configs_build_with_the_mixer_in_exactly_the_placed_part(config):
    with torch.device("meta"):
        model = build_model(config.network, config.size, config.variant, config.placement)
    counts = count_mixers(model, config.network)
    for part, expected in expected_mixers(config).items():
        found = {t: n for t, n in counts[part].items() if t in MIXER_TYPES}
        assert found == expected, f"{config.name} {part}: {found}"
    if config.variant == "base":
        total = sum(p.numel() for p in model.parameters()) / 1e6
        backbone = sum(p.numel() for p in model.backbone.parameters()) / 1e6
        reference, quoted = BACKBONE_PARAMS_M[config.size]
        assert backbone == pytest.approx(reference, abs=quoted)
        if config.network == "pixelformer":
            total += PIXELFORMER_UNUSED_PROJ / 1e6
        reference, quoted = NETWORK_PARAMS_M[config.size]
        assert total == pytest.approx(reference, abs=quoted if config.network == "pixelformer" else 0.5)


@pytest.mark.parametrize("size", ["tiny", "base", "large"])
def test_meter_every_size_and_variant_runs(size):
    x = torch.rand(2, 3, 128, 192)
    for config in [c for c in list_configs("meter") if c.size == size]:
        model = build_model("meter", size, config.variant).eval()
        counts = count_mixers(model, "meter")
        for part, expected in expected_mixers(config).items():
            assert {t: n for t, n in counts[part].items() if t in MIXER_TYPES} == expected
        if config.variant == "base":
            assert sum(p.numel() for p in model.parameters()) == METER_PARAMS[size]
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, 1, 32, 48)
        assert torch.isfinite(y).all()


def test_placement_maps_to_parts():
    assert placement_variants(validate_config("newcrfs", "tiny", "meta", "decoder")) == ("base", "meta")
    assert placement_variants(validate_config("newcrfs", "tiny", "pyra", "encoder")) == ("pyra", "base")
    assert placement_variants(validate_config("pixelformer", "tiny", "moh", "full")) == ("moh", "moh")


def test_zoo_command_lists_parameters_gmacs_and_weights(tmp_path, capsys):
    import csv

    from depth_attn.cli import main

    out = tmp_path / "zoo.csv"
    assert main(["zoo", "--network", "meter", "--csv", str(out), "--resolution", "192x256"]) == 0
    printed = capsys.readouterr().out
    assert "meter-tiny-base-full" in printed and "meter-xxs-kitti" in printed
    rows = {r["config"]: r for r in csv.DictReader(open(out))}
    assert len(rows) == 12
    # the study's METER GMACs at 192x256 (conv and matmul only): 0.223 / 0.629 / 1.116, meta 0.204 / 0.606 / 1.086
    for size, base, meta in (("tiny", 0.223, 0.204), ("base", 0.629, 0.606), ("large", 1.116, 1.086)):
        assert float(rows[f"meter-{size}-base-full"]["gmacs"]) == pytest.approx(base, abs=0.0015)
        assert float(rows[f"meter-{size}-meta-full"]["gmacs"]) == pytest.approx(meta, abs=0.0015)
    assert float(rows["meter-tiny-base-full"]["params_M"]) == pytest.approx(0.713, abs=1e-3)
    assert main(["zoo", "--network", "meter", "--placement", "decoder"]) == 1  # clear error, no traceback


def test_swin_gmacs_follow_the_study():
    """Meta removes about a quarter to a third of the multiply-adds of the Swin networks; pyra adds
    some inside 7x7 windows; MoH saves almost none (its dense projections dominate)."""
    from depth_attn.models.stats import model_stats

    gmacs = {
        v: model_stats(validate_config("newcrfs", "tiny", v), (480, 640)).gmacs for v in ("base", "meta", "pyra", "moh")
    }
    assert 0.22 < 1 - gmacs["meta"] / gmacs["base"] < 0.36
    assert gmacs["pyra"] > gmacs["base"]
    assert 0.97 * gmacs["base"] < gmacs["moh"] <= gmacs["base"]


def test_bench_times_the_network_alone_after_warm_up():
    """Pitfall 6 (timing = total wall time over a loader, no warm-up, no synchronisation) is absent:
    the benchmark warms each network up, then times one network call per clock reading."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_zoo.py"
    spec = importlib.util.spec_from_file_location("bench_zoo", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1

        return fn

    times = bench.time_round_robin({"a": make("a"), "b": make("b")}, warmup=2, repeats=5, device=torch.device("cpu"))
    assert calls == {"a": 7, "b": 7}  # 2 untimed warm-up calls + 5 timed
    assert {k: len(v) for k, v in times.items()} == {"a": 5, "b": 5}  # one reading per call, not a total
    assert bench.percentile([1, 2, 3, 4, 5], 0.5) == 3
