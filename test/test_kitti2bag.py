"""kitti2bag on a KITTI raw drive laid out in a temporary folder from the shared frames; the bag is
read back with rosbags itself (not with our reader)."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from depth_attn.cli import main as cli_main
from depth_attn.data import bags
from depth_attn.data.kitti import CameraCalibration, read_timestamps
from depth_attn.data.sample import layout_annotated_drive, layout_velodyne_drive
from depth_attn.imageio import read_depth_png, read_rgb

TYPES = get_typestore(Stores.ROS2_HUMBLE)


def read_back(bag):
    """{topic: [(log time, message)]} and {topic: type}, with rosbags directly."""
    with Reader(bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        messages = {}
        for conn, timestamp, raw in reader.messages():
            messages.setdefault(conn.topic, []).append((timestamp, TYPES.deserialize_cdr(raw, conn.msgtype)))
    return types, messages


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    return layout_annotated_drive(tmp_path_factory.mktemp("kitti"), extra_without_gt=["0000000006"])


def test_annotated_drive_to_bag(drive, tmp_path, kitti_annotated):
    bag = tmp_path / "bag"
    assert cli_main(["kitti2bag", str(drive), "--out", str(bag)]) == 0
    assert (bag / "bag.mcap").is_file()
    types, messages = read_back(bag)
    assert types == {
        bags.IMAGE_TOPIC: "sensor_msgs/msg/Image",
        bags.INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
        bags.GT_TOPIC: "sensor_msgs/msg/Image",
        bags.TF_STATIC_TOPIC: "tf2_msgs/msg/TFMessage",
    }
    stamps = read_timestamps(drive / "image_02" / "timestamps.txt")
    names = ["0000000005", "0000000006", "0000000050", "0000000100"]
    expected_stamps = [stamps[int(n)] for n in names]
    assert expected_stamps[1] - expected_stamps[0] == 100_000_000  # 10 Hz stamps from timestamps.txt

    images = messages[bags.IMAGE_TOPIC]
    assert [t for t, _ in images] == expected_stamps
    for (t, msg), name in zip(images, names, strict=True):
        assert stamp_ns(msg) == t
        assert (msg.width, msg.height, msg.encoding, msg.step) == (1242, 375, "rgb8", 1242 * 3)
        source = "0000000005" if name == "0000000006" else name
        rgb = np.frombuffer(msg.data, np.uint8).reshape(375, 1242, 3)
        np.testing.assert_array_equal(rgb, read_rgb(kitti_annotated / "image_02" / f"{source}.png"))

    calib = CameraCalibration.from_raw_dir(drive.parent)
    infos = messages[bags.INFO_TOPIC]
    assert [t for t, _ in infos] == expected_stamps
    info = infos[0][1]
    assert (info.width, info.height) == (1242, 375)
    np.testing.assert_allclose(info.p.reshape(3, 4), calib.p_rect)
    np.testing.assert_allclose(info.k.reshape(3, 3), [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    np.testing.assert_allclose(info.r.reshape(3, 3), np.eye(3))
    assert info.header.frame_id == bags.CAMERA_FRAME

    # ground truth: only the annotated frames, same stamps as their images, PNG / 256 with NaN for 0
    gts = messages[bags.GT_TOPIC]
    gt_names = ["0000000005", "0000000050", "0000000100"]
    assert [t for t, _ in gts] == [stamps[int(n)] for n in gt_names]
    for (t, msg), name in zip(gts, gt_names, strict=True):
        assert stamp_ns(msg) == t
        assert (msg.width, msg.height, msg.encoding) == (1242, 375, "32FC1")
        depth = np.frombuffer(msg.data, "<f4").reshape(375, 1242)
        png = read_depth_png(kitti_annotated / "groundtruth_depth" / f"{name}.png")
        assert np.array_equal(np.isnan(depth), png == 0)
        np.testing.assert_array_equal(depth[png > 0], png[png > 0])
        assert 80_000 < np.isfinite(depth).sum() < 100_000

    # tf_static: the Velodyne -> camera optical transform of the calibration
    (_, tf_msg), = messages[bags.TF_STATIC_TOPIC]
    tf = tf_msg.transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == (bags.CAMERA_FRAME, bags.VELO_FRAME)
    t = tf.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], calib.velo_to_optical[:3, 3], atol=1e-9)
    q = tf.transform.rotation
    assert abs(q.x**2 + q.y**2 + q.z**2 + q.w**2 - 1.0) < 1e-9


def test_velodyne_ground_truth_matches_reference_projection(tmp_path, shared):
    drive = layout_velodyne_drive(tmp_path / "kitti")
    bag = tmp_path / "velo_bag"
    assert cli_main(["kitti2bag", str(drive), "--gt", "velodyne", "--velo", "--out", str(bag)]) == 0
    types, messages = read_back(bag)
    assert types[bags.VELO_TOPIC] == "sensor_msgs/msg/PointCloud2"
    (_, gt_msg), = messages[bags.GT_TOPIC]
    depth = np.frombuffer(gt_msg.data, "<f4").reshape(375, 1242)
    reference = read_depth_png(shared / "data" / "kitti" / "velodyne_frame" / "projected_velodyne_depth" / "000008.png")
    both = np.isfinite(depth) & (reference > 0)
    assert both.sum() > 15_000
    assert np.abs(depth[both] - reference[both]).max() <= 1 / 256
    assert np.isfinite(depth).sum() == (reference > 0).sum()
    (_, cloud), = messages[bags.VELO_TOPIC]
    scan = np.fromfile(shared / "data" / "kitti" / "velodyne_frame" / "velodyne" / "000008.bin", np.float32)
    assert cloud.width == scan.size // 4 and cloud.point_step == 16
    np.testing.assert_array_equal(np.frombuffer(cloud.data, np.float32), scan)


def test_compressed_sqlite3_and_frame_limit(drive, tmp_path, kitti_annotated):
    bag = tmp_path / "bag_db3"
    assert cli_main(["kitti2bag", str(drive), "--compress", "png", "--storage", "sqlite3", "--max-frames", "2",
                     "--out", str(bag)]) == 0
    assert list(bag.glob("*.db3"))
    types, messages = read_back(bag)
    topic = bags.IMAGE_TOPIC + "/compressed"
    assert types[topic] == "sensor_msgs/msg/CompressedImage"
    assert len(messages[topic]) == 2 and len(messages[bags.GT_TOPIC]) == 1
    frame = next(bags.iter_frames(bag))  # our reader decodes it back losslessly (PNG)
    np.testing.assert_array_equal(frame.rgb, read_rgb(kitti_annotated / "image_02" / "0000000005.png"))


def test_loose_frames_to_bag(tmp_path, shared):
    nyu = shared / "data" / "nyu"
    bag = tmp_path / "nyu_bag"
    assert cli_main(["kitti2bag", "--images", str(nyu / "rgb"), "--gt-dir", str(nyu / "depth"), "--intrinsics",
                     str(nyu / "intrinsics.json"), "--rate", "5", "--out", str(bag)]) == 0
    frames = list(bags.iter_frames(bag))
    assert len(frames) == 3
    assert [f.stamp_ns - frames[0].stamp_ns for f in frames] == [0, 200_000_000, 400_000_000]
    png = read_depth_png(nyu / "depth" / "sync_depth_00000.png", scale=1000.0)
    gt = frames[0].gt
    assert gt.shape == (480, 640) and np.array_equal(np.isnan(gt), png == 0)
    np.testing.assert_allclose(gt[png > 0], png[png > 0], rtol=1e-6)
    assert frames[0].intrinsics.fx == pytest.approx(518.8579)


def test_clear_errors(tmp_path):
    assert cli_main(["kitti2bag", str(tmp_path / "nope"), "--out", str(tmp_path / "b")]) == 1
    with pytest.raises(bags.BagError, match="not found"):
        list(bags.iter_frames(tmp_path / "missing_bag"))


def test_object_and_raw_calibration_agree(shared):
    from depth_attn.data.kitti import project_velodyne, read_velodyne_bin

    kitti = shared / "data" / "kitti"
    raw = CameraCalibration.from_raw_dir(kitti / "raw_calib_2011_09_26")
    obj = CameraCalibration.from_object_file(kitti / "velodyne_frame" / "calib" / "000008.txt", (1242, 375))
    assert raw.image_wh == (1242, 375)
    np.testing.assert_allclose(obj.velo_to_image, raw.velo_to_image, rtol=1e-5, atol=1e-4)
    depth = project_velodyne(read_velodyne_bin(kitti / "velodyne_frame" / "velodyne" / "000008.bin"), obj)
    reference = read_depth_png(kitti / "velodyne_frame" / "projected_velodyne_depth" / "000008.png")
    both = np.isfinite(depth) & (reference > 0)
    assert np.abs(depth[both] - reference[both]).max() <= 1 / 256
    # the optical-frame transform puts a point 10 m ahead of the Velodyne ~10 m ahead of the camera
    ahead = raw.velo_to_optical @ np.array([10.0, 0.0, 0.0, 1.0])
    assert ahead[2] == pytest.approx(10.0 - 0.27, abs=0.05) and abs(ahead[0]) < 0.2
