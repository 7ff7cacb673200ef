"""depth_attn.ros.convert on real rclpy messages (no DDS needed): encodings against rosbags-image,
zero-copy views, depth images, camera info, and the PointCloud2 builder."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from rosbags.image import compressed_image_to_cvimage, image_to_cvimage  # noqa: E402  (the reference)
from sensor_msgs.msg import CameraInfo, Image, PointField  # noqa: E402

from depth_attn.encodings import SUPPORTED_ENCODINGS, EncodingError  # noqa: E402
from depth_attn.geometry import Intrinsics, depth_to_points, project_points  # noqa: E402
from depth_attn.imageio import read_rgb  # noqa: E402
from depth_attn.ros import convert  # noqa: E402

K = Intrinsics(721.5377, 721.5377, 609.5593, 172.854)


@pytest.fixture(scope="module")
def rgb(kitti_annotated):
    return read_rgb(kitti_annotated / "image_02" / "0000000005.png")


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_every_encoding_matches_rosbags_image(rgb, encoding):
    if encoding in ("nv21", "nv12"):
        rgb = rgb[:374]  # 4:2:0 needs an even height
    msg = convert.rgb_to_image(rgb, encoding, convert.make_header("cam", 5))
    assert isinstance(msg, Image) and msg.encoding == encoding
    ours = convert.image_to_rgb(msg)
    if encoding == "8UC1":  # rosbags-image does not colour a generic one-channel image: OpenCV's own
        reference = cv2.cvtColor(convert.image_to_numpy(msg), cv2.COLOR_GRAY2RGB)
    elif encoding in ("nv21", "nv12"):  # our height is the image's; rosbags-image takes the planes' rows
        assert msg.height == rgb.shape[0] and len(msg.data) == msg.step * msg.height * 3 // 2
        planes = Image(height=msg.height * 3 // 2, width=msg.width, encoding=encoding, step=msg.step, data=msg.data)
        reference = image_to_cvimage(planes, "rgb8")
    else:
        reference = image_to_cvimage(msg, "rgb8")
    assert ours.shape == reference.shape == rgb.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, reference), f"{encoding}: {np.abs(ours.astype(int) - reference).max()}"


def test_rgb8_is_a_view_of_the_message_buffer(rgb):
    msg = convert.rgb_to_image(rgb, "rgb8")
    out = convert.image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert np.array_equal(out, rgb)


def test_malformed_image_messages_raise_encoding_errors(rgb):
    msg = convert.rgb_to_image(rgb[:10, :10].copy(), "rgb8")
    msg.step = 29
    with pytest.raises(EncodingError, match="shorter than one row"):
        convert.image_to_rgb(msg)
    msg = convert.rgb_to_image(rgb[:10, :10].copy(), "rgb8")
    msg.encoding = "64FC3"
    with pytest.raises(EncodingError, match="unsupported encoding '64FC3'"):
        convert.image_to_rgb(msg)


def test_depth_images_32fc1_and_16uc1():
    depth = np.array([[1.5, np.nan, 80.0], [0.25, 3.0, 7.125]], dtype=np.float32)
    msg = convert.depth_to_image(depth, convert.make_header("cam", 7))
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("32FC1", 12, 2, 3)
    back = convert.image_to_depth(msg)
    assert np.array_equal(back, depth, equal_nan=True) and np.shares_memory(back, np.frombuffer(msg.data, np.uint8))
    mm = convert.numpy_to_image(np.array([[1500, 0, 65535]], dtype=np.uint16))
    assert mm.encoding == "16UC1"
    assert np.allclose(convert.image_to_depth(mm), [[1.5, np.nan, 65.535]], equal_nan=True)
    with pytest.raises(EncodingError, match="not a depth image"):
        convert.image_to_depth(convert.numpy_to_image(np.zeros((2, 2), np.uint8)))


def test_depth_image_builder_reuses_its_buffer():
    builder = convert.DepthImageBuilder()
    a = np.full((4, 5), 2.0, np.float32)
    m1 = builder.build(a, convert.make_header("cam", 1))
    m2 = builder.build(a * 2, convert.make_header("cam", 2))
    assert m1.data is m2.data and np.all(convert.image_to_depth(m2) == 4.0)
    assert convert.stamp_to_ns(m2.header.stamp) == 2


def test_compressed_round_trip(rgb):
    png = convert.rgb_to_compressed(rgb, "png", convert.make_header("cam", 3))
    assert png.format == "png" and np.array_equal(convert.compressed_to_rgb(png), rgb)
    assert np.array_equal(compressed_image_to_cvimage(png, "rgb8"), rgb)
    jpeg = convert.rgb_to_compressed(rgb, "jpeg")
    assert np.array_equal(convert.message_to_rgb(jpeg), compressed_image_to_cvimage(jpeg, "rgb8"))


def test_camera_info_to_intrinsics_from_p_and_k(kitti_annotated):
    import json

    meta = json.loads((kitti_annotated / "intrinsics.json").read_text())
    info = convert.make_camera_info([700.0, 710.0, 600.0, 170.0], 1242, 375, P=meta["P_rect_02"])
    assert isinstance(info, CameraInfo) and (info.width, info.height) == (1242, 375)
    assert convert.camera_info_to_intrinsics(info) == K
    assert convert.camera_info_to_intrinsics(info, rectified=False) == Intrinsics(700.0, 710.0, 600.0, 170.0)
    info.p = [0.0] * 12
    with pytest.raises(ValueError, match="P is all zeros"):
        convert.camera_info_to_intrinsics(info)
    info.p = [0.0, 0, 600, 0, 0, 700, 170, 0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="P has focal lengths fx=0 fy=700: they must be > 0"):
        convert.camera_info_to_intrinsics(info)


def test_stamps_convert_both_ways():
    ns = 1_700_000_123_456_789_012
    assert convert.stamp_to_ns(convert.ns_to_stamp(ns)) == ns


@pytest.mark.parametrize("stride", [1, 3])
def test_point_cloud_is_organised_and_projects_back(rgb, stride):
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 60.0, (375, 1242)).astype(np.float32)
    depth[30, 20:40] = np.nan
    depth[60, :] = 0.0
    builder = convert.PointCloudBuilder()
    msg = builder.build(depth, K, convert.make_header("cam", 9), stride=stride, rgb=rgb)
    hs, ws = -(-375 // stride), -(-1242 // stride)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (hs, ws, 16, 16 * ws)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1), ("z", 8, PointField.FLOAT32, 1),
        ("rgb", 12, PointField.FLOAT32, 1)]
    assert msg.is_dense is False and len(msg.data) == hs * ws * 16
    xyz = convert.pointcloud2_xyz(msg)
    expected = depth_to_points(depth, K, stride=stride)
    assert np.array_equal(xyz, expected, equal_nan=True)
    sub = depth[::stride, ::stride]
    invalid = ~(np.isfinite(sub) & (sub > 0))
    assert invalid.any() and np.all(np.isnan(xyz[invalid])) and np.all(np.isfinite(xyz[~invalid]))
    u, v, z = project_points(xyz, K)
    rows, cols = np.mgrid[0:375:stride, 0:1242:stride]
    assert np.allclose(u[~invalid], cols[~invalid], atol=1e-2) and np.allclose(v[~invalid], rows[~invalid], atol=1e-2)
    assert np.array_equal(z[~invalid], sub[~invalid])
    assert np.array_equal(convert.pointcloud2_rgb(msg), rgb[::stride, ::stride])


def test_point_cloud_xyz_only_and_buffer_reuse():
    depth = np.full((6, 8), 5.0, np.float32)
    builder = convert.PointCloudBuilder()
    m1 = builder.build(depth, K, convert.make_header("cam", 1))
    assert m1.point_step == 12 and [f.name for f in m1.fields] == ["x", "y", "z"]
    m2 = builder.build(depth * 2, K, convert.make_header("cam", 2))
    assert m2.data is m1.data  # allocated once per shape
    assert np.all(convert.pointcloud2_xyz(m2)[..., 2] == 10.0)
    m3 = builder.build(depth, K, convert.make_header("cam", 3), stride=2, max_depth=4.0)
    assert m3.data is not m1.data and (m3.height, m3.width) == (3, 4)
    assert np.all(np.isnan(convert.pointcloud2_xyz(m3)))  # beyond max_depth


@pytest.mark.parametrize("stride", [1, 3])
def test_point_cloud_range_cap_keeps_the_near_field_only(stride):
    """A fronto-parallel wall at 4 m: its points farther than 5 m from the camera (straight-line,
    worked out here from each pixel's ray) are NaN, the others exactly as without the cap."""
    k = Intrinsics(300.0, 300.0, 319.5, 239.5)
    depth = np.full((480, 640), 4.0, np.float32)
    depth[:10, :10] = np.nan
    builder = convert.PointCloudBuilder()
    full = convert.pointcloud2_xyz(builder.build(depth, k, convert.make_header(), stride=stride)).copy()
    capped = convert.pointcloud2_xyz(builder.build(depth, k, convert.make_header(), stride=stride, max_range=5.0))
    v, u = np.mgrid[0:480:stride, 0:640:stride]
    distance = 4.0 * np.sqrt(1.0 + ((u - k.cx) / k.fx) ** 2 + ((v - k.cy) / k.fy) ** 2)
    beyond = distance > 5.0
    assert 0.1 < beyond.mean() < 0.9
    assert np.isnan(capped[beyond]).all()
    near = ~beyond & np.isfinite(full[..., 2])
    assert np.array_equal(capped[near], full[near])
    assert np.isnan(capped[~np.isfinite(full[..., 2])]).all()


def test_pointcloud2_reader_rejects_short_data():
    msg = convert.PointCloudBuilder().build(np.ones((2, 2), np.float32), K, convert.make_header())
    msg.data = array.array("B", bytes(10))
    with pytest.raises(ValueError, match="expected row_step"):
        convert.pointcloud2_to_array(msg)
