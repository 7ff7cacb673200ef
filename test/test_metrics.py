"""Metrics against hand-computed values; crops select the documented rows and columns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_attn.metrics import crop_mask, evaluate_depth, mean_metrics


def test_metrics_equal_hand_computed_values():
    gt = np.array([[2.0, 4.0], [10.0, 0.0]], dtype=np.float32)  # 0 = invalid
    pred = np.array([[1.0, 5.0], [10.0, 7.0]], dtype=np.float32)
    m = evaluate_depth(pred, gt, max_depth=80.0)
    # valid pairs (gt, pred): (2, 1), (4, 5), (10, 10)
    assert m["valid_pixels"] == 3
    assert m["abs_rel"] == pytest.approx((0.5 + 0.25 + 0.0) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 2 + 1 / 4 + 0) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 1 + 0) / 3))
    e = [math.log(1 / 2), math.log(5 / 4), 0.0]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in e) / 3))
    mean_e = sum(e) / 3
    assert m["silog"] == pytest.approx(100 * math.sqrt(sum(x * x for x in e) / 3 - mean_e**2))
    assert m["log10"] == pytest.approx((abs(math.log10(0.5)) + abs(math.log10(1.25)) + 0) / 3)
    # max ratios 2.0, 1.25, 1.0: < 1.25 only the last; < 1.5625 two; < 1.953 two
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == pytest.approx(2 / 3)
    assert m["delta3"] == pytest.approx(2 / 3)


def test_depth_range_and_prediction_clamp():
    gt = np.array([[0.0005, 5.0, 85.0, np.nan]], dtype=np.float32)
    pred = np.array([[1.0, 100.0, 1.0, 1.0]], dtype=np.float32)
    m = evaluate_depth(pred, gt, min_depth=1e-3, max_depth=80.0)
    assert m["valid_pixels"] == 1  # only gt 5.0 is inside (1e-3, 80)
    assert m["abs_rel"] == pytest.approx(abs(5.0 - 80.0) / 5.0)  # prediction clamped to 80


def test_median_scaling_is_opt_in():
    gt = np.full((4, 4), 10.0, dtype=np.float32)
    pred = np.full((4, 4), 5.0, dtype=np.float32)
    assert evaluate_depth(pred, gt)["abs_rel"] == pytest.approx(0.5)
    assert evaluate_depth(pred, gt, median_scaling=True)["abs_rel"] == pytest.approx(0.0)


def test_garg_and_eigen_crops_select_documented_rows_and_columns():
    h, w = 375, 1242
    garg = crop_mask(h, w, "garg")
    rows = np.flatnonzero(garg.any(axis=1))
    cols = np.flatnonzero(garg.any(axis=0))
    assert (rows[0], rows[-1] + 1) == (int(0.40810811 * h), int(0.99189189 * h)) == (153, 371)
    assert (cols[0], cols[-1] + 1) == (int(0.03594771 * w), int(0.96405229 * w)) == (44, 1197)
    assert garg.sum() == (371 - 153) * (1197 - 44)
    eigen = crop_mask(h, w, "eigen")
    rows = np.flatnonzero(eigen.any(axis=1))
    assert (rows[0], rows[-1] + 1) == (int(0.3324324 * h), int(0.91351351 * h)) == (124, 342)
    assert crop_mask(h, w, "none").all()
    with pytest.raises(ValueError, match="crop"):
        crop_mask(h, w, "kb")


def test_crop_changes_which_pixels_count():
    gt = np.full((375, 1242), 10.0, dtype=np.float32)
    pred = gt.copy()
    pred[:100] = 20.0  # error only above the Garg crop
    assert evaluate_depth(pred, gt, crop="none")["abs_rel"] > 0.2
    assert evaluate_depth(pred, gt, crop="garg")["abs_rel"] == 0.0


def test_mean_over_images_skips_empty_ones():
    rows = [{"abs_rel": 0.1, "valid_pixels": 5}, {"abs_rel": 0.3, "valid_pixels": 9},
            {"abs_rel": float("nan"), "valid_pixels": 0}]
    assert mean_metrics(rows, ["abs_rel"])["abs_rel"] == pytest.approx(0.2)
