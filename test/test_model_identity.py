"""Issue 26's defects, each checked against an independent reference: the export's weights (a shipped
checkpoint read with torch.load), one cache entry for any clamp and for export, node and predict alike,
and pyra's partial weights fitted at inference as in training (slices of the checkpoint's to_qkv)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from depth_attn.cli import main
from depth_attn.imageio import read_rgb
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.models import ModelConfig
from depth_attn.models.meter import Meter, variant_mixer
from depth_attn.models.spec import network_spec
from depth_attn.paths import package_weights_dir

HW = (192, 636)  # the shipped checkpoints' input size (what export picks from their cards)


def shipped(pattern: str) -> Path:
    found = sorted(package_weights_dir().glob(pattern))
    assert found, f"no {pattern} in {package_weights_dir()}"
    return found[0]


def onnx_output(path: Path, batch: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def test_export_without_weights_is_the_shipped_student_and_none_says_untrained(tmp_path, capsys):
    assert main(["export", "--variant", "meta", "--out", str(tmp_path / "meta.onnx"), "--no-parity"]) == 0
    assert "UNTRAINED" not in capsys.readouterr().err
    # the reference: METER-XXS meta with the shipped file's tensors, loaded strictly by torch itself
    reference = Meter("tiny", variant_mixer("meta")).eval()
    reference.load_state_dict(torch.load(shipped("meter_xxs_meta_kitti*.pth"), map_location="cpu",
                                         weights_only=True), strict=True)
    batch = np.random.default_rng(3).random((1, 3, *HW), dtype=np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(onnx_output(tmp_path / "meta.onnx", batch), expected, rtol=1e-4,
                               atol=1e-4 * float(np.abs(expected).max()))
    assert main(["export", "--variant", "meta", "--weights", "none", "--input-size", "64x192", "--no-parity"]) == 0
    assert "UNTRAINED" in capsys.readouterr().err


def onnx_folders(home: Path):
    return sorted(p.parent for p in (home / "artefacts" / "onnx").rglob("model.onnx"))


def test_one_cache_entry_for_two_clamps_and_for_export_node_and_predict(tmp_path, kitti_annotated):
    home = Path(os.environ["DEPTH_ATTN_HOME"])
    assert main(["export", "--no-parity"]) == 0  # the default: weights auto, i.e. meter-xxs-kitti
    assert len(onnx_folders(home)) == 1
    # the node's estimator: weights auto, max_depth 80 (its default); a robot operator's 10 m clamp
    node_like = DepthEstimator(EstimatorConfig(weights="auto", backend="onnxruntime", max_depth=80.0))
    clamped = DepthEstimator(EstimatorConfig(weights="auto", backend="onnxruntime", max_depth=10.0))
    assert node_like.backend.artefact_status == "hit" and clamped.backend.artefact_status == "hit"
    image = kitti_annotated / "image_02" / "0000000005.png"
    rgb = read_rgb(image)
    far, near = node_like.estimate(rgb), clamped.estimate(rgb)
    assert float(np.nanmax(near)) <= 10.0 < float(np.nanmax(far))  # the clamp is applied at run time
    np.testing.assert_array_equal(np.minimum(far, 10.0), near)
    assert main(["predict", str(image), "--backend", "onnxruntime", "--max-depth", "50",
                 "--out", str(tmp_path / "predict")]) == 0
    assert len(onnx_folders(home)) == 1, "predict, node and export must share the one ONNX file"


def test_the_clamp_is_never_in_a_key_and_the_output_scale_only_where_the_graph_uses_it():
    from depth_attn.inference.artefacts import ModelSource

    def key(network: str, output_scale: float):
        source = ModelSource(ModelConfig(network), (64, 192), lambda: None, output_scale=output_scale)
        return source.onnx_key(17, "auto")

    assert not network_spec("meter").output_scale_in_graph
    assert key("meter", 80.0) == key("meter", 10.0)  # METER's graph never sees it
    assert network_spec("newcrfs").output_scale_in_graph
    assert key("newcrfs", 80.0) != key("newcrfs", 10.0)  # sigmoid x max depth: another graph
    assert not any("max_depth" in str(k) for k in key("pixelformer", 80.0))


def test_pyra_partial_weights_take_q_and_kv_from_the_base_to_qkv_as_training_does():
    from depth_attn.models import build_model
    from depth_attn.training.init import init_student

    checkpoint = torch.load(shipped("meter_xxs_kitti.pth"), map_location="cpu", weights_only=True)
    estimator = DepthEstimator(EstimatorConfig(model=ModelConfig(variant="pyra"), weights="meter-xxs-kitti",
                                               allow_partial_weights=True))
    running = estimator.source.model().state_dict()
    torch.manual_seed(0)  # what the estimator builds with, so tensors left as built agree too
    student = build_model("meter", "tiny", "pyra")
    init_student(student, checkpoint)
    trained_start = student.state_dict()
    layers = sorted(k[: -len(".to_qkv.weight")] for k in checkpoint
                    if k.endswith(".to_qkv.weight") and k.replace("to_qkv", "to_q") in running)
    assert layers
    for layer in layers:
        qkv = checkpoint[f"{layer}.to_qkv.weight"]
        q, kv = running[f"{layer}.to_q.weight"], running[f"{layer}.to_kv.weight"]
        assert torch.equal(q, qkv[: q.shape[0]]) and torch.equal(kv, qkv[q.shape[0]:])
    for name, tensor in running.items():  # the whole network: as training starts it
        assert torch.equal(tensor, trained_start[name]), name
    assert estimator.coverage_gaps  # still partial: derived is not trained, and it says so
