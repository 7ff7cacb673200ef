"""The laser scan from a depth image against exact geometry: walls of known distance and angle,
their ranges worked out here by intersecting each beam's ray with the wall in the laser frame
(x forward, y left), not by the code's column interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_attn.geometry import Intrinsics
from depth_attn.laser_scan import depth_to_scan, horizontal_fov, scan_layout

K = Intrinsics(520.0, 520.0, 311.3, 242.7)
W, H = 640, 480


def wall_depth(distance: float, normal_deg: float, k: Intrinsics = K, shape=(H, W)) -> np.ndarray:
    """Depth (z, optical frame) of a vertical wall whose closest point to the camera is ``distance``
    metres away in the horizontal direction ``normal_deg`` (left positive): the points p of the
    laser frame with p . (cos a, sin a) = distance. A pixel's ray in the laser frame is
    z * (1, -(u - cx) / fx) horizontally."""
    a = math.radians(normal_deg)
    u = np.arange(shape[1], dtype=np.float64)
    lateral = -(u - k.cx) / k.fx
    denominator = math.cos(a) + lateral * math.sin(a)
    with np.errstate(divide="ignore"):
        z = np.where(denominator > 0, distance / denominator, np.nan)
    return np.broadcast_to(z, shape).astype(np.float32)


def beam_angles(width: int, k: Intrinsics, beams: int) -> np.ndarray:
    left = math.atan((k.cx - 0.0) / k.fx)  # the ray through column 0's centre
    right = -math.atan((width - 1 - k.cx) / k.fx)
    return np.linspace(right, left, beams)


def wall_ranges(angles: np.ndarray, distance: float, normal_deg: float) -> np.ndarray:
    return distance / np.cos(angles - math.radians(normal_deg))


@pytest.mark.parametrize("distance,normal_deg", [(3.0, 0.0), (4.2, 25.0), (2.5, -35.0), (7.5, 10.0)])
def test_a_wall_gives_its_exact_range_on_every_beam(distance, normal_deg):
    layout, ranges = depth_to_scan(wall_depth(distance, normal_deg), K, scan_height=5, range_min=0.1,
                                   range_max=50.0)
    assert ranges.shape == (W,) and ranges.dtype == np.float32  # one beam per column
    expected_angles = beam_angles(W, K, W)
    np.testing.assert_allclose(layout.angles, expected_angles, atol=1e-12)
    assert layout.angle_min == pytest.approx(expected_angles[0])
    assert layout.angle_max == pytest.approx(expected_angles[-1])
    assert layout.angle_increment == pytest.approx((expected_angles[-1] - expected_angles[0]) / (W - 1))
    np.testing.assert_allclose(ranges, wall_ranges(expected_angles, distance, normal_deg), atol=1e-4, rtol=0)


def test_the_angles_span_the_horizontal_field_of_view_and_stride_thins_the_beams():
    layout, ranges = depth_to_scan(wall_depth(3.0, 15.0), K, stride=4)
    assert ranges.shape == (W // 4,)
    fov = math.atan(K.cx / K.fx) + math.atan((W - 1 - K.cx) / K.fx)
    assert layout.angle_max - layout.angle_min == pytest.approx(fov) == horizontal_fov(W, K)
    np.testing.assert_allclose(ranges, wall_ranges(beam_angles(W, K, W // 4), 3.0, 15.0), atol=1e-4, rtol=0)


def test_left_of_the_image_is_positive_angle_and_the_nearest_row_wins():
    depth = np.full((H, W), 6.0, dtype=np.float32)
    rows = slice(int(K.cy) - 1, int(K.cy) + 1)
    depth[rows, 100:140] = 2.0  # a post left of the optical centre, in the scan's rows only
    depth[: int(K.cy) - 20, 400:450] = 1.0  # above the scan's rows: not seen
    layout, ranges = depth_to_scan(depth, K, scan_height=10)
    near = ranges < 3.0
    assert near.any() and np.all(layout.angles[near] > 0)
    post_angles = np.arctan(-(np.arange(101, 139) - K.cx) / K.fx)  # inside the post, away from its edges
    inside = (layout.angles > post_angles.min()) & (layout.angles < post_angles.max())
    np.testing.assert_allclose(ranges[inside], 2.0 / np.cos(layout.angles[inside]), atol=1e-4)
    assert np.all(ranges[~near] > 5.9)


def test_range_limits_no_depth_and_edges():
    depth = np.full((H, W), 30.0, dtype=np.float32)
    depth[:, :200] = np.nan  # no depth on the left third
    depth[:, 300:310] = 0.05  # closer than range_min
    layout, ranges = depth_to_scan(depth, K, scan_height=3, range_min=0.2, range_max=10.0)
    columns = K.cx - K.fx * np.tan(layout.angles)  # where each beam falls
    assert np.isnan(ranges[columns < 199]).all()  # no return: NaN
    assert np.isneginf(ranges[(columns > 301) & (columns < 308)]).all()  # only closer than range_min: -inf
    assert np.isposinf(ranges[columns > 320]).all()  # only beyond range_max: +inf (REP 117)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        depth_to_scan(np.zeros((2, 3, 4)), K)
    with pytest.raises(ValueError, match="range_min"):
        depth_to_scan(np.zeros((4, 4)), K, range_min=5.0, range_max=1.0)
    with pytest.raises(ValueError, match="scan_height"):
        depth_to_scan(np.zeros((4, 4)), K, scan_height=0)
    assert scan_layout(W, K, 1) is scan_layout(W, K, 1)  # cached per camera


def test_the_scan_of_a_real_annotated_frame_is_within_the_networks_accuracy(kitti_annotated):
    """meter-xxs-kitti on annotated frame 0000000005: its scan against the scan of the ground truth
    (both from the pixels that have ground truth). The network's abs_rel on this frame is about 0.07;
    the scan's median relative range error must be inside 0.15 and its angles the camera's FOV."""
    from depth_attn.data.kitti import read_intrinsics_json
    from depth_attn.imageio import read_depth_png, read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    k = read_intrinsics_json(kitti_annotated / "intrinsics.json")[0]
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    gt = np.where(gt > 0, gt, np.nan)
    pred = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="onnxruntime")).estimate(rgb)
    layout, gt_scan = depth_to_scan(gt, k, scan_height=10, range_max=80.0)
    _, pred_scan = depth_to_scan(np.where(np.isfinite(gt), pred, np.nan), k, scan_height=10, range_max=80.0)
    width = rgb.shape[1]
    assert gt_scan.shape == (width,)
    assert layout.angle_max - layout.angle_min == pytest.approx(
        math.atan(k.cx / k.fx) + math.atan((width - 1 - k.cx) / k.fx))
    both = np.isfinite(gt_scan) & np.isfinite(pred_scan)
    assert both.sum() > 300
    relative = np.abs(pred_scan[both] - gt_scan[both]) / gt_scan[both]
    assert np.median(relative) < 0.15
