"""depth_attn.colormap (no ROS): the one colour mapping of depth (node, CLI and reports), checked
against a plain numpy reading of its definition."""

from __future__ import annotations

import numpy as np
import pytest

from depth_attn.colormap import DepthColorizer, all_in_range
from depth_attn.imageio import read_depth_png


def colorize_depth(depth_m: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """The definition, in plain numpy: grey 255 (1 - (d - min) / span), clipped, through TURBO; invalid
    (NaN, <= 0, inf) black."""
    import cv2

    valid = np.isfinite(depth_m) & (depth_m > 0)
    norm = np.clip((np.nan_to_num(depth_m, nan=max_depth) - min_depth) / (max_depth - min_depth), 0.0, 1.0)
    gray = (255.0 * (1.0 - norm)).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def _levels(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The colour-table index of each pixel (nearest colour)."""
    lut = table[:, 0, :].astype(np.int32)
    flat = rgb.reshape(-1, 1, 3).astype(np.int32)
    return np.argmin(((flat - lut[None]) ** 2).sum(-1), axis=1)


def test_colours_match_colorize_depth_on_real_depth(kitti_annotated):
    depth = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")  # sparse: many zeros
    depth[5, 5:9] = np.nan
    depth[6, 5:9] = np.inf
    colorizer = DepthColorizer(0.0, 80.0)
    out = np.empty(depth.shape + (3,), np.uint8)
    ours = colorizer.colorize(depth, out=out)
    reference = colorize_depth(depth, 0.0, 80.0)
    assert ours is out
    invalid = ~(np.isfinite(depth) & (depth > 0))
    assert invalid.mean() > 0.5 and np.all(ours[invalid] == 0)
    same = np.all(ours == reference, axis=-1)
    assert same.mean() > 0.999
    valid = ~invalid
    assert np.abs(_levels(ours[valid], colorizer.table) - _levels(reference[valid], colorizer.table)).max() <= 1


def test_out_of_range_depths_saturate_like_colorize_depth():
    depth = np.array([[0.5, 1.0, 10.0, 80.0, 200.0]], np.float32)
    colorizer = DepthColorizer(1.0, 80.0)
    assert np.array_equal(colorizer.colorize(depth), colorize_depth(depth, 1.0, 80.0))


@pytest.mark.parametrize(
    "values, low, high, expected",
    [([1.0, 2.0], 0.0, np.inf, True), ([1.0, 0.0], 0.0, np.inf, False), ([1.0, np.nan], 0.0, np.inf, False),
     ([1.0, np.inf], 0.0, np.inf, False), ([1.0, 80.0], 0.0, 80.0, True), ([1.0, 80.001], 0.0, 80.0, False),
     ([-1.0], 0.0, np.inf, False), ([0.5], 0.5, 1.0, False)],
)
def test_all_in_range(values, low, high, expected):
    assert all_in_range(np.array([values], np.float32), low, high) is expected
