"""METER loads the official checkpoints exactly and reproduces the spec's reference accuracy."""

from __future__ import annotations

import pytest
import torch

from depth_attn.imageio import read_depth_png, read_rgb
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.metrics import evaluate_depth
from depth_attn.models.meter import Meter
from depth_attn.weights import load_state_dict


@pytest.mark.parametrize("dataset", ["kitti", "nyu"])
def test_xxs_loads_official_checkpoint_strictly(shared, dataset):
    state = load_state_dict(shared / "weights" / "meter" / f"meter_xxs_{dataset}.pth")
    assert len(state) == 261
    model = Meter("tiny")
    model.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    assert sum(p.numel() for p in model.parameters()) == 713_464


@pytest.mark.parametrize("size,params", [("tiny", 713_464), ("base", 1_449_760), ("large", 3_295_168)])
def test_parameter_counts_match_spec(size, params):
    assert sum(p.numel() for p in Meter(size).parameters()) == params


def test_output_is_quarter_resolution():
    with torch.no_grad():
        out = Meter("tiny").eval()(torch.rand(1, 3, 192, 636))
    assert out.shape == (1, 1, 48, 160)


@pytest.fixture(scope="module")
def kitti_estimator():
    return DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti"))


def test_reference_metrics_on_kitti_frame(kitti_estimator, kitti_annotated):
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    depth = kitti_estimator.estimate(rgb)
    assert depth.shape == (375, 1242) and depth.dtype.name == "float32"
    full = evaluate_depth(depth, gt, crop="none")
    assert full["abs_rel"] == pytest.approx(0.0772, abs=0.005)
    assert full["rmse"] == pytest.approx(2.6797, abs=0.05)
    assert full["delta1"] == pytest.approx(0.9619, abs=0.005)
    assert full["silog"] == pytest.approx(9.92, abs=0.2)
    garg = evaluate_depth(depth, gt, crop="garg")
    assert garg["abs_rel"] == pytest.approx(0.0765, abs=0.005)
    assert garg["rmse"] == pytest.approx(2.6118, abs=0.05)


def test_wrong_unit_would_be_caught(kitti_estimator, kitti_annotated):
    """The reference check is sensitive: reading the output as metres instead of decimetres fails it."""
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    depth_in_metres_read_as_dm = kitti_estimator.estimate(rgb) * 10
    assert evaluate_depth(depth_in_metres_read_as_dm, gt)["abs_rel"] > 0.5
