"""Back-projection and intrinsics under resize/crop/stride."""

from __future__ import annotations

import numpy as np
import pytest

from depth_attn.geometry import Intrinsics, depth_to_points, project_points

KITTI = Intrinsics(721.5377, 721.5377, 609.5593, 172.854)


def random_depth(h=375, w=1242, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 80.0, size=(h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = np.nan
    depth[0, 0] = 0.0
    return depth


def test_points_project_back_onto_their_pixels_with_their_depths():
    depth = random_depth()
    pts = depth_to_points(depth, KITTI)
    assert pts.shape == (375, 1242, 3) and pts.dtype == np.float32
    valid = np.isfinite(depth) & (depth > 0)
    assert np.isnan(pts[~valid]).all()
    u, v, z = project_points(pts[valid].astype(np.float64), KITTI)
    rows, cols = np.nonzero(valid)
    np.testing.assert_allclose(u, cols, atol=1e-3)
    np.testing.assert_allclose(v, rows, atol=1e-3)
    np.testing.assert_allclose(z, depth[valid], rtol=1e-6)


def test_optical_frame_axes():
    depth = np.full((3, 3), 2.0, dtype=np.float32)
    k = Intrinsics(1.0, 1.0, 1.0, 1.0)
    pts = depth_to_points(depth, k)
    np.testing.assert_allclose(pts[1, 1], [0, 0, 2])  # principal point: straight ahead
    np.testing.assert_allclose(pts[1, 2], [2, 0, 2])  # right of centre: +x
    np.testing.assert_allclose(pts[2, 1], [0, 2, 2])  # below centre: +y (y down)


def test_unorganized_form_keeps_only_valid_points_in_pixel_order():
    depth = random_depth(40, 50)
    organised = depth_to_points(depth, KITTI)
    flat = depth_to_points(depth, KITTI, organized=False)
    valid = np.isfinite(depth) & (depth > 0)
    assert flat.shape == (valid.sum(), 3)
    np.testing.assert_array_equal(flat, organised[valid])


def test_stride_subsamples_grid_and_matches_strided_intrinsics():
    depth = random_depth(375, 1242, seed=3)
    pts = depth_to_points(depth, KITTI, stride=4)
    assert pts.shape == (94, 311, 3)
    np.testing.assert_array_equal(pts, depth_to_points(depth, KITTI)[::4, ::4])


def test_resized_intrinsics_keep_points_consistent():
    """Depth of a plane at z = 10 seen by the camera, rendered at half resolution: the points of the
    small image, back-projected with the resized intrinsics, land on the same rays."""
    small = KITTI.resized((1242, 375), (621, 188))
    assert small.fx == pytest.approx(721.5377 / 2)
    assert small.fy == pytest.approx(721.5377 * 188 / 375)
    # a pixel centre of the small image maps to the big image's coordinates
    u_small = 100.0
    u_big = (u_small + 0.5) * 2 - 0.5
    x_small = (u_small - small.cx) / small.fx
    x_big = (u_big - KITTI.cx) / KITTI.fx
    assert x_small == pytest.approx(x_big, rel=1e-9)
    assert KITTI.cropped(10, 20).cx == pytest.approx(KITTI.cx - 10)


def test_intrinsics_validation_and_parsing():
    assert Intrinsics.parse("1,2,3,4") == Intrinsics(1, 2, 3, 4)
    np.testing.assert_allclose(Intrinsics.from_matrix(KITTI.matrix()).matrix(), KITTI.matrix())
    p = [721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791, 0.0, 0.0, 1.0, 0.002745884]
    assert Intrinsics.from_matrix(p) == KITTI
    with pytest.raises(ValueError):
        Intrinsics.parse("1,2,3")
    with pytest.raises(ValueError):
        Intrinsics.from_matrix(np.zeros((3, 3)))
