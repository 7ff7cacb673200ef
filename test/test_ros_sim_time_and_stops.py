"""Real-world timing around the eval graph (issue 30), over real rclpy and Fast DDS: an eval node whose
depth node stopped answering says so and exits non-zero; the package's player publishes /clock for
``use_sim_time`` nodes; a sim-time node that hears no clock warns."""

from __future__ import annotations

import json
import signal
import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import RosSession, eval_feeder, eval_node_process, unique, wait_until  # noqa: E402

from depth_attn.ros import convert  # noqa: E402


def _feed_eval(tmp_path, frames: int, answered: int, period_s: float, *params: str) -> tuple:
    """An eval node in its own process fed ``frames`` ground-truth frames, the first ``answered`` of them
    with their depth, ``period_s`` apart: (its exit code, its output)."""
    ns = f"/t{uuid.uuid4().hex[:8]}"
    proc = eval_node_process(ns, tmp_path / "eval", *params)
    with eval_feeder(ns, proc) as (pub_depth, pub_gt):
        depth = np.full((20, 30), 10.0, np.float32)
        for frame in range(frames):
            header = convert.make_header("cam", time.time_ns())
            pub_gt.publish(convert.depth_to_image(depth, header))
            if frame < answered:
                pub_depth.publish(convert.depth_to_image(depth * 1.1, header))
            time.sleep(period_s)
            if proc.poll() is not None:
                break
        output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


def test_eval_says_the_depth_node_stopped_and_exits_non_zero(tmp_path):
    """Depth for the first two frames, then ground truth only (the depth node was killed)."""
    returncode, output = _feed_eval(tmp_path, 12, 2, 0.4, "depth_timeout:=2.0", "idle_timeout:=30.0")
    assert returncode == 1, output
    assert "the depth node stopped answering: no depth on" in output and "while ground truth kept coming" in output
    assert "dropped" in output  # the table is still printed, with what was scored


def test_one_frame_dropped_at_the_end_is_a_drop_not_a_stop(tmp_path):
    """The last frame's ground truth with no depth (dropped while the network was busy, as on a robot):
    the run ends by its idle time-out with exit code 0 and the drop counted, not as a stopped node."""
    returncode, output = _feed_eval(tmp_path, 4, 3, 0.3, "depth_timeout:=2.0", "idle_timeout:=3.0")
    assert returncode == 0, output
    assert "stopped answering" not in output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["frames"]["received"] == 3, summary["frames"]


def test_a_sim_time_node_without_a_clock_warns(tmp_path):
    ns = f"/t{uuid.uuid4().hex[:8]}"
    proc = eval_node_process(ns, tmp_path / "eval", "use_sim_time:=true")
    try:
        time.sleep(13.0)  # the warning comes 10 s after start (no timed assert: the output is read after the stop)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "use_sim_time is true but nothing publishes /clock" in output, output
    assert output.count("nothing publishes /clock") == 1


def test_the_player_publishes_clock_for_sim_time_nodes(tmp_path):
    """The player with ``clock`` drives a use_sim_time node's clock through the bag's own (2011) stamps, and
    an eval node under sim time still finishes by its idle time-out (a steady timer)."""
    from depth_attn.data.kitti import KittiDrive
    from depth_attn.data.kitti2bag import write_bag
    from depth_attn.data.sample import layout_annotated_drive
    from depth_attn.ros.eval_node import EvalNode
    from depth_attn.ros.player import BagPlayer

    drive = KittiDrive.open(layout_annotated_drive(tmp_path / "kitti"))
    bag = write_bag(drive.frames, drive.calib, tmp_path / "bag", progress=False).path
    first, last = drive.frames[0].stamp_ns, drive.frames[-1].stamp_ns
    session = RosSession()
    ns = "/" + unique("sim")
    try:
        evaluator = session.add(EvalNode(unique("eval"), context=session.context, namespace=ns, parameter_overrides=[
            Parameter("use_sim_time", value=True), Parameter("out_dir", value=str(tmp_path / "eval")),
            Parameter("idle_timeout", value=1.0), Parameter("print_table", value=False)],
            cli_args=["--ros-args", "-r", "ground_truth:=/kitti/depth/ground_truth"]))
        assert evaluator.get_clock().now().nanoseconds == 0  # sim time, nothing on /clock yet
        seen = []
        probe = session.add(rclpy.create_node(unique("clock_probe"), namespace=ns, context=session.context,
                                              parameter_overrides=[Parameter("use_sim_time", value=True)]))
        probe.create_timer(0.01, lambda: seen.append(probe.get_clock().now().nanoseconds))
        player = session.add(BagPlayer(unique("player"), context=session.context, namespace=ns, parameter_overrides=[
            Parameter("bag", value=str(bag)), Parameter("clock", value=40.0), Parameter("frame_rate", value=4.0),
            Parameter("wait_for_subscribers", value=True), Parameter("start_delay", value=0.2)]))
        assert wait_until(player.finished.is_set, 60.0) and player.exit_code == 0
        assert wait_until(evaluator.finished.is_set, 30.0), "the sim-time eval node never finished"
    finally:
        session.close()
    assert evaluator.evaluator.gt_received == 3
    ticks = [t for t in seen if t]
    assert ticks and first <= min(ticks) and max(ticks) <= last + 2_000_000_000, (first, last, ticks[:3], ticks[-3:])
    assert ticks == sorted(ticks)  # ROS time under the player's clock never runs backwards
