"""ONNX export: the contract (opset >= 17, input 'image', output 'depth', onnx.checker clean) and
ONNX Runtime vs PyTorch parity for every METER configuration (the tiny Swin ones: test_export_swin.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depth_attn.imageio import read_depth_png, read_rgb
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_attn.inference.export import ExportError, check_onnx, export_onnx
from depth_attn.inference.parity import random_batch, relative_error
from depth_attn.metrics import evaluate_depth
from depth_attn.models import build_model, list_configs

# Small inputs keep the suite fast; every size is a multiple of 32 (METER's and Swin's stride).
METER_HW = (64, 192)
PARITY_TOLERANCE = 1e-4  # the bound on the max relative error, fp32

METER_CONFIGS = list_configs("meter")


def seeded_model(config):
    torch.manual_seed(0)
    return build_model(config.network, config.size, config.variant, config.placement).eval()


def export_and_compare(config, input_hw, tmp_path: Path) -> float:
    model = seeded_model(config)
    path = tmp_path / f"{config.name}.onnx"
    info = export_onnx(model, path, input_hw)
    assert info.opset >= 17
    assert info.input_shape == (1, 3, *input_hw)
    assert len(info.output_shape) == 4 and set(info.output_shape[:2]) <= {1, -1}  # -1: left symbolic
    batch = random_batch(input_hw, seed=1)
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    out = OnnxRuntimeBackend(path).run(batch)
    assert out.shape == reference.shape
    assert all(d in (-1, o) for d, o in zip(info.output_shape, out.shape, strict=True))
    assert np.all(np.isfinite(out))
    assert np.max(np.abs(reference)) > 0  # a network that outputs zeros would pass any relative check
    path.unlink()  # Swin files are hundreds of MB: do not keep them for the rest of the session
    return relative_error(out, reference)


@pytest.mark.parametrize("config", METER_CONFIGS, ids=[c.name for c in METER_CONFIGS])
def test_meter_onnx_matches_pytorch(config, tmp_path):
    assert export_and_compare(config, METER_HW, tmp_path) <= PARITY_TOLERANCE


def test_export_contract(tmp_path):
    """What ONNX Runtime, TensorRT and other tools rely on: names, fixed shape, opset, checker."""
    import onnx

    path = tmp_path / "meter.onnx"
    export_onnx(seeded_model(METER_CONFIGS[0]), path, METER_HW)
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["depth"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 192]
    # METER answers at a quarter of the input resolution
    assert check_onnx(path, METER_HW)["output_shape"] == (1, 1, 16, 48)
    with pytest.raises(ExportError, match="input shape"):
        check_onnx(path, (64, 224))


def test_check_onnx_rejects_files_that_break_the_contract(tmp_path):
    wrong_names = tmp_path / "wrong_names.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 1, 1), (torch.rand(1, 3, 8, 8),), str(wrong_names),
                      input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    with pytest.raises(ExportError, match="expected \\['image'\\]"):
        check_onnx(wrong_names)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(ExportError, match="not a valid ONNX model"):
        check_onnx(garbage)
    with pytest.raises(ExportError, match="too old"):
        export_onnx(torch.nn.Conv2d(3, 1, 1), tmp_path / "old.onnx", (8, 8), opset=13)


@pytest.mark.heavy
def test_dynamo_exporter_also_meets_the_contract(tmp_path):
    """The fallback exporter writes opset 18 (its lowest) and computes the same network."""
    model = seeded_model(METER_CONFIGS[0])
    info = export_onnx(model, tmp_path / "dynamo.onnx", METER_HW, exporter="dynamo")
    assert info.exporter == "dynamo" and info.opset >= 18
    batch = random_batch(METER_HW)
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    assert relative_error(OnnxRuntimeBackend(info.path).run(batch), reference) <= PARITY_TOLERANCE


def test_kitti_checkpoint_same_metrics_through_onnxruntime(kitti_annotated):
    """The official METER KITTI checkpoint, full 192x636 input, on the shared frame: the metrics
    through ONNX Runtime equal those through PyTorch (and both match the published reference)."""
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    metrics = {}
    for backend in ("torch", "onnxruntime"):
        estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend=backend))
        metrics[backend] = evaluate_depth(estimator.estimate(rgb), gt)
    for name, value in metrics["torch"].items():
        assert metrics["onnxruntime"][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert metrics["onnxruntime"]["abs_rel"] == pytest.approx(0.0772, abs=5e-4)
    assert metrics["onnxruntime"]["rmse"] == pytest.approx(2.6797, abs=5e-3)


def test_export_command_writes_a_checked_file(tmp_path, capsys):
    from depth_attn.cli import main

    out = tmp_path / "meter.onnx"
    assert main(["export", "--input-size", "64x192", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "opset 17" in printed and "max relative error" in printed
    error = float(printed.split("max relative error ")[1].split(";")[0].split()[0])
    assert error <= PARITY_TOLERANCE
    assert check_onnx(out, (64, 192))["opset"] == 17
