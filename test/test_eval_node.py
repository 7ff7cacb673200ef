"""eval_node in its own process: real DDS, real frames; SIGINT mid-run leaves every scored frame in
the CSV (rows are flushed one by one) and a summary."""

from __future__ import annotations

import json
import signal
import time
import uuid

import numpy as np
import pytest

from depth_attn.data.kitti2bag import ground_truth_png
from depth_attn.evaluation import read_csv
from depth_attn.evaluation.online import OnlineEvaluator
from depth_attn.metrics import evaluate_depth

rclpy = pytest.importorskip("rclpy")

from ros_harness import eval_feeder, eval_node_process  # noqa: E402

from depth_attn.ros import convert  # noqa: E402


@pytest.fixture(scope="module")
def frames(kitti_annotated):
    """(ground truth, a prediction) of the three shared frames: the prediction is the ground truth's
    median everywhere, so its metrics are known independently."""
    out = []
    for name in ("0000000005", "0000000050", "0000000100"):
        gt = ground_truth_png(kitti_annotated / "groundtruth_depth" / f"{name}.png")
        out.append((gt, np.full(gt.shape, np.nanmedian(gt), np.float32)))
    return out


def test_depth_at_the_network_resolution_is_scored_on_the_ground_truth_grid(tmp_path, frames):
    """depth_resolution: network publishes 636x192 depth for 1242x375 ground truth: upsampled
    (bilinear) onto the ground truth's grid and scored there; a larger depth than the ground truth is refused."""
    import cv2

    gt, _ = frames[0]
    ramp = np.tile(np.linspace(5.0, 60.0, 636, dtype=np.float32), (192, 1))
    ev = OnlineEvaluator(tmp_path / "a")
    ev.add_ground_truth(1_000, gt)
    row = ev.add_depth(1_000, ramp, received_ns=2_000)
    expected = evaluate_depth(cv2.resize(ramp, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR), gt)
    assert row["abs_rel"] == pytest.approx(expected["abs_rel"]) and row["abs_rel"] > 0.1
    ev.add_ground_truth(2_000, gt[::2, ::2].copy())
    with pytest.raises(ValueError, match="larger than the ground truth"):
        ev.add_depth(2_000, np.ones((375, 1242), np.float32), received_ns=3_000)


def test_pairing_by_exact_stamp_without_ros(tmp_path, frames):
    ev = OnlineEvaluator(tmp_path)
    (gt0, pred0), (gt1, pred1), _ = frames
    assert ev.add_depth(2_000, pred1, received_ns=2_000 + 7_000_000) is None  # depth before its ground truth
    assert ev.add_ground_truth(1_000, gt0) is None
    assert ev.add_depth(1_500, pred0, received_ns=9_999) is None  # no ground truth with this stamp: never paired
    row = ev.add_ground_truth(2_000, gt1)
    assert row["frame"] == 1 and row["latency_ms"] == pytest.approx(7.0)
    assert row["abs_rel"] == pytest.approx(evaluate_depth(pred1, gt1)["abs_rel"])
    ev.update_diagnostics({"network_ms_p50": "11.0"})
    ev.add_timing(1_000, {"network_ms": "2.5", "preprocess_ms": "1.0"})
    row = ev.add_depth(1_000, pred0, received_ns=1_000 + 3_000_000)
    assert row["frame"] == 0 and row["latency_ms"] == pytest.approx(3.0)
    assert row["network_ms"] == pytest.approx(2.5)  # the frame's own timing, not the running median
    summary = ev.finish(frames_expected=4)
    assert summary["frames"] == {"expected": 4, "received": 2, "dropped": 2}
    assert summary["unpaired"]["depth"] == 1
    assert len(read_csv(tmp_path / "frames.csv")) == 2


def test_timing_may_come_after_the_pair_and_rows_keep_their_order(tmp_path, frames):
    ev = OnlineEvaluator(tmp_path)
    ev.expect_timing = True  # a depth/timing publisher is connected
    (gt0, pred0), (gt1, pred1), (gt2, pred2) = frames
    ev.update_diagnostics({"network_ms_p50": "11.0"})
    ev.add_ground_truth(1_000, gt0)
    ev.add_depth(1_000, pred0, received_ns=5_000_000)  # scored; its timing has not come yet
    assert ev.frames_scored == 1 and ev.rows == []  # kept back for its timing
    ev.add_ground_truth(2_000, gt1)
    ev.add_depth(2_000, pred1, received_ns=6_000_000)
    ev.add_timing(2_000, {"network_ms": "4.0"})  # frame 1's timing: frame 0 is logged first, with the median
    assert [(r["frame"], r["network_ms"]) for r in ev.rows] == [(0, 11.0), (1, 4.0)]
    ev.add_ground_truth(3_000, gt2)
    ev.add_depth(3_000, pred2, received_ns=7_000_000)
    summary = ev.finish()  # frame 2 never got its timing: logged at the end with the median
    logged = [(r["frame"], r["network_ms"]) for r in read_csv(tmp_path / "frames.csv")]
    assert logged == [(0, 11.0), (1, 4.0), (2, 11.0)]
    assert summary["frames"]["received"] == 3


def test_sigint_keeps_every_scored_frame(tmp_path, frames):
    ns = f"/t{uuid.uuid4().hex[:8]}"
    out = tmp_path / "eval"
    proc = eval_node_process(ns, out, "expected_frames:=10")
    with eval_feeder(ns, proc) as (pub_depth, pub_gt):
        for gt, pred in frames:
            header = convert.make_header("cam", time.time_ns())  # stamped at sending, as the player restamps
            pub_gt.publish(convert.depth_to_image(gt, header))
            pub_depth.publish(convert.depth_to_image(pred, header))
        csv_path = out / "frames.csv"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (csv_path.is_file() and len(read_csv(csv_path)) == 3):
            time.sleep(0.1)
        rows_before = read_csv(csv_path)  # flushed per row: readable while the node runs
        assert len(rows_before) == 3 and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    rows = read_csv(out / "frames.csv")
    assert [r["frame"] for r in rows] == [0, 1, 2]
    for row, (gt, pred) in zip(rows, frames, strict=True):
        expected = evaluate_depth(pred, gt)
        for name in ("abs_rel", "rmse", "delta1"):
            assert row[name] == pytest.approx(expected[name], abs=1e-9)
        assert row["latency_ms"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == {"expected": 10, "received": 3, "dropped": 7}
    assert "abs_rel" in output and str(out / "frames.csv") in output  # the table and the paths were printed
