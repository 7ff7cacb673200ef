"""The rclpy bag player over real DDS: topics, payloads, restamping (one stamp per frame), timing."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from depth_attn.data import bags
from depth_attn.imageio import read_depth_png, read_rgb

pytest.importorskip("rclpy")
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import Probe, RosSession  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from depth_attn.ros import convert  # noqa: E402
from depth_attn.ros.player import BagPlayer  # noqa: E402


def test_player_restamps_each_frame_once(kitti_bag, kitti_annotated):
    ns = f"/p{uuid.uuid4().hex[:8]}"
    session = RosSession()
    try:
        probe = session.add(Probe(session.context, ns))
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        probe.listen(Image, f"{ns}/image", qos)
        probe.listen(CameraInfo, f"{ns}/info", qos)
        probe.listen(Image, f"{ns}/gt", qos)
        remaps = ["--ros-args", "-r", f"{bags.IMAGE_TOPIC}:={ns}/image", "-r", f"{bags.INFO_TOPIC}:={ns}/info",
                  "-r", f"{bags.GT_TOPIC}:={ns}/gt", "-p", f"bag:={kitti_bag}", "-p", "restamp:=true",
                  "-p", "frame_rate:=10.0", "-p", "repeat:=2", "-p", "start_delay:=0.2"]
        before = time.time_ns()
        player = session.add(BagPlayer(node_name=f"player_{ns[2:]}", context=session.context, cli_args=remaps))
        assert player.finished.wait(30) and player.exit_code == 0
        assert probe.wait_for(lambda: len(probe.received[f"{ns}/gt"]) == 6, 10)
        after = time.time_ns()
    finally:
        session.close()
    images, infos, gts = (probe.received[f"{ns}/{t}"] for t in ("image", "info", "gt"))
    assert (len(images), len(infos), len(gts), player.frames_sent) == (8, 8, 6, 8)
    image_stamps = [convert.stamp_to_ns(m.header.stamp) for m in images]
    assert image_stamps == sorted(image_stamps) and len(set(image_stamps)) == 8
    assert before < image_stamps[0] and image_stamps[-1] < after  # send times, not 2011
    assert [convert.stamp_to_ns(m.header.stamp) for m in infos] == image_stamps  # one stamp per frame
    gt_stamps = [convert.stamp_to_ns(m.header.stamp) for m in gts]
    assert gt_stamps == [image_stamps[i] for i in (0, 2, 3, 4, 6, 7)]  # frame 6 (index 1) has no ground truth
    gaps = np.diff(image_stamps) / 1e6
    assert np.median(gaps) == pytest.approx(100.0, abs=30.0)  # 10 frames/s, also across the two passes
    expected = read_rgb(kitti_annotated / "image_02" / "0000000050.png")
    np.testing.assert_array_equal(convert.image_to_rgb(images[2]), expected)
    png = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000050.png")
    depth = convert.image_to_depth(gts[1])
    np.testing.assert_array_equal(depth[png > 0], png[png > 0])
    assert np.isnan(depth[png == 0]).all()


def test_player_clear_errors(tmp_path):
    session = RosSession()
    try:
        with pytest.raises(FileNotFoundError, match="bag not found"):
            BagPlayer(node_name=f"player_{uuid.uuid4().hex[:8]}", context=session.context,
                      cli_args=["--ros-args", "-p", f"bag:={tmp_path / 'nope'}"])
        with pytest.raises(ValueError, match="'bag' is empty"):
            BagPlayer(node_name=f"player_{uuid.uuid4().hex[:8]}", context=session.context)
    finally:
        session.close()


def test_play_command_plays_the_whole_bag_to_a_subscriber(kitti_bag, capsys):
    """`depth-attn play` (its own context, as on a machine without ros2 bag play) reaches a listener."""
    from depth_attn.cli import main as cli_main

    ns = f"/c{uuid.uuid4().hex[:8]}"
    session = RosSession()
    try:
        probe = session.add(Probe(session.context, ns))
        probe.listen(Image, f"{ns}/gt", QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
        code = cli_main(["play", str(kitti_bag), "--frame-rate", "20", "--topics", bags.GT_TOPIC,
                         "--remap", f"{bags.GT_TOPIC}:={ns}/gt"])
        assert probe.wait_for(lambda: len(probe.received[f"{ns}/gt"]) == 3, 10)  # one pass: 3 of 4 frames have GT
    finally:
        session.close()
    assert code == 0
    assert f"played 3 frames (3 messages) from {kitti_bag}" in capsys.readouterr().out
    depths = [convert.image_to_depth(m) for m in probe.received[f"{ns}/gt"]]
    assert all(d.shape == (375, 1242) for d in depths)
    assert cli_main(["play", str(kitti_bag.parent / "no_such_bag")]) == 1


def test_a_camera_info_recorded_after_its_image_goes_out_with_it(tmp_path):
    """A real recording logs the camera info a few ms after its image (the driver order): the player
    pairs them by header stamp, as the depth node does, so restamped they still share one stamp."""
    rgb = np.zeros((4, 6, 3), np.uint8)
    p_rect = np.array([[700.0, 0, 3, 0], [0, 700.0, 2, 0], [0, 0, 1, 0]])
    bag = tmp_path / "driver_order"
    stamps = [1_000_000_000 + i * 100_000_000 for i in range(4)]
    with bags.BagWriter(bag) as writer:
        for i, stamp in enumerate(stamps):
            p_rect[0, 0] = 700.0 + i  # each frame its own fx
            writer.write(bags.IMAGE_TOPIC, bags.image_message(stamp, bags.CAMERA_FRAME, rgb, "rgb8"), stamp)
            writer.write(bags.INFO_TOPIC, bags.camera_info_message(stamp, bags.CAMERA_FRAME, p_rect, (6, 4)),
                         stamp + (i + 1) * 5_000_000)  # logged 5-20 ms after its image
    ns = f"/p{uuid.uuid4().hex[:8]}"
    session = RosSession()
    try:
        probe = session.add(Probe(session.context, ns))
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        probe.listen(Image, f"{ns}/image", qos)
        probe.listen(CameraInfo, f"{ns}/info", qos)
        remaps = ["--ros-args", "-r", f"{bags.IMAGE_TOPIC}:={ns}/image", "-r", f"{bags.INFO_TOPIC}:={ns}/info",
                  "-p", f"bag:={bag}", "-p", "restamp:=true", "-p", "frame_rate:=20.0", "-p", "start_delay:=0.2"]
        player = session.add(BagPlayer(node_name=f"player_{ns[2:]}", context=session.context, cli_args=remaps))
        assert player.finished.wait(30) and player.exit_code == 0
        assert probe.wait_for(lambda: len(probe.received[f"{ns}/info"]) == 4, 10)
    finally:
        session.close()
    assert player.frames_sent == 4  # four frames, not eight
    images, infos = probe.received[f"{ns}/image"], probe.received[f"{ns}/info"]
    by_stamp = {convert.stamp_to_ns(m.header.stamp): m.p[0] for m in infos}
    assert sorted(by_stamp) == sorted(convert.stamp_to_ns(m.header.stamp) for m in images)
    assert [by_stamp[convert.stamp_to_ns(m.header.stamp)] for m in images] == [700.0, 701.0, 702.0, 703.0]
