"""Offline evaluation of a KITTI bag with the METER KITTI checkpoint (real frames, real weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from depth_attn.cli import main as cli_main
from depth_attn.data.bags import BagError
from depth_attn.evaluation import CSV_COLUMNS, read_csv
from depth_attn.evaluation.offline import EvalSettings, evaluate_bag
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.metrics import METRIC_NAMES

REFERENCE_ABS_REL_0000000005 = 0.0772  # specs/meter.md, no crop


@pytest.fixture(scope="module")
def estimator(shared):
    return DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti"))


@pytest.fixture(scope="module")
def offline(kitti_bag, estimator, tmp_path_factory):
    return evaluate_bag(kitti_bag, estimator, tmp_path_factory.mktemp("eval"), progress=False)


def test_frame_5_matches_the_reference(offline, kitti_annotated):
    rows = read_csv(offline.csv)
    annotated = len(list((kitti_annotated / "groundtruth_depth").glob("*.png")))
    assert [r["frame"] for r in rows] == list(range(annotated))  # the annotated frames; 6 has no ground truth
    assert abs(rows[0]["abs_rel"] - REFERENCE_ABS_REL_0000000005) < 0.005
    assert rows[0]["rmse"] == pytest.approx(2.6797, abs=0.05)
    assert rows[0]["delta1"] == pytest.approx(0.9619, abs=0.005)
    for row in rows:
        assert 0.03 < row["abs_rel"] < 0.15 and row["valid_pixels"] > 80_000
        assert row["latency_ms"] >= row["network_ms"] > 0


def test_csv_summary_and_plot(offline, kitti_annotated):
    header = offline.csv.read_text().splitlines()[0].split(",")
    assert tuple(header) == CSV_COLUMNS
    summary = json.loads(offline.summary_path.read_text())
    annotated = len(list((kitti_annotated / "groundtruth_depth").glob("*.png")))
    assert summary["frames"] == {"expected": annotated, "received": annotated, "dropped": 0}
    rows = read_csv(offline.csv)
    for name in METRIC_NAMES:
        assert summary["metrics"][name] == pytest.approx(np.mean([r[name] for r in rows]))
    assert summary["latency_ms"]["p50"] == pytest.approx(np.median([r["latency_ms"] for r in rows]))
    assert summary["model"]["weights"] == "meter-xxs-kitti"
    assert summary["evaluation"] == {"crop": "none", "min_depth": 1e-3, "max_depth": 80.0}
    assert offline.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deterministic_and_crop(kitti_bag, estimator, offline, tmp_path):
    again = evaluate_bag(kitti_bag, estimator, tmp_path / "again", EvalSettings(max_frames=2), progress=False)
    for a, b in zip(read_csv(offline.csv)[:2], read_csv(again.csv), strict=True):
        for name in METRIC_NAMES:
            assert a[name] == b[name]
    settings = EvalSettings(crop="garg", max_frames=1)
    garg = evaluate_bag(kitti_bag, estimator, tmp_path / "garg", settings, progress=False)
    (row,) = read_csv(garg.csv)
    assert row["abs_rel"] == pytest.approx(0.0765, abs=0.005)  # specs/meter.md, Garg crop
    assert row["valid_pixels"] < read_csv(offline.csv)[0]["valid_pixels"]


def test_truncated_bag_keeps_rows_before_the_damage(truncated_kitti_bag, estimator, offline, tmp_path):
    mcap = truncated_kitti_bag
    damaged = mcap.parent
    out = tmp_path / "eval_damaged"
    with pytest.raises(BagError, match=str(mcap)):
        evaluate_bag(damaged, estimator, out, progress=False)
    rows, full = read_csv(out / "frames.csv"), read_csv(offline.csv)
    assert 1 <= len(rows) < len(full)
    for got, want in zip(rows, full, strict=False):
        assert got["stamp_ns"] == want["stamp_ns"]
        assert got["abs_rel"] == pytest.approx(want["abs_rel"], abs=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert str(mcap) in summary["error"] and summary["frames"]["received"] == len(rows)


def test_cli_eval(kitti_bag, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["eval", str(kitti_bag), "--max-frames", "1", "--crop", "eigen", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "abs_rel" in printed and str((out / "frames.csv").resolve()) in printed
    assert len(read_csv(out / "frames.csv")) == 1


def test_binned_camera_with_a_roi_is_read_alike_offline_and_online(kitti_annotated, estimator, tmp_path):
    """A camera binning 2x2 inside a region of interest (the bag's camera info: the sensor's full-size K
    and P, binning_x = binning_y = 2, roi 1000x300+100+20; images 500x150): offline evaluation reads it
    as the depth node does and scores the frame through the same intrinsics, worked out here by hand
    from the raw P as image_geometry defines them: f / 2, (c - offset) / 2."""
    from dataclasses import replace

    from depth_attn.data import bags
    from depth_attn.data.bag_common import CAMERA_FRAME, GT_TOPIC, IMAGE_TOPIC, INFO_TOPIC, typestore
    from depth_attn.data.bag_writer import BagWriter, camera_info_message, image_message
    from depth_attn.geometry import Intrinsics
    from depth_attn.imageio import read_depth_png, read_rgb
    from depth_attn.metrics import evaluate_depth

    meta = json.loads((kitti_annotated / "intrinsics.json").read_text())
    p = np.array(meta["P_rect_02"])
    fx, fy, cx, cy = p[0, 0], p[1, 1], p[0, 2], p[1, 2]  # 721.5377, 721.5377, 609.5593, 172.854
    by_hand = Intrinsics(fx / 2, fy / 2, (cx - 100) / 2, (cy - 20) / 2)
    rgb_full = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt_full = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    window = (slice(20, 320), slice(100, 1100))
    rgb = np.ascontiguousarray(rgb_full[window].reshape(150, 2, 500, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8))
    gt = np.ascontiguousarray(gt_full[window][::2, ::2]).astype(np.float32)
    gt[gt <= 0] = np.nan

    stamp = 1_000_000_000
    RegionOfInterest = typestore().types["sensor_msgs/msg/RegionOfInterest"]
    info = replace(camera_info_message(stamp, CAMERA_FRAME, p, (1242, 375)), binning_x=2, binning_y=2,
                   roi=RegionOfInterest(x_offset=100, y_offset=20, height=300, width=1000, do_rectify=False))
    bag = tmp_path / "binned"
    with BagWriter(bag) as writer:
        writer.write(INFO_TOPIC, info, stamp)
        writer.write(IMAGE_TOPIC, image_message(stamp, CAMERA_FRAME, rgb, "rgb8"), stamp)
        writer.write(GT_TOPIC, image_message(stamp, CAMERA_FRAME, gt, "32FC1"), stamp)

    (frame,) = bags.iter_frames(bag)
    assert frame.rgb.shape == (150, 500, 3)
    offline = frame.intrinsics
    fields = (offline.fx, offline.fy, offline.cx, offline.cy)
    assert fields == pytest.approx((by_hand.fx, by_hand.fy, by_hand.cx, by_hand.cy), abs=1e-9)
    assert fields == pytest.approx((360.76885, 360.76885, 254.77965, 76.427), abs=1e-9)

    pytest.importorskip("sensor_msgs")
    from sensor_msgs.msg import CameraInfo
    from sensor_msgs.msg import RegionOfInterest as RosRoi

    from depth_attn.ros import convert

    online_msg = CameraInfo(width=1242, height=375, k=p[:, :3].reshape(-1).tolist(), p=p.reshape(-1).tolist(),
                            binning_x=2, binning_y=2, roi=RosRoi(x_offset=100, y_offset=20, width=1000, height=300))
    online = convert.check_camera_info(online_msg)
    assert online == offline and convert.camera_info_image_size(online_msg) == (500, 150)

    # the scored frame went through the network with those intrinsics, as the depth node runs it
    result = evaluate_bag(bag, estimator, tmp_path / "eval", EvalSettings(warmup=0), progress=False)
    (row,) = read_csv(result.csv)
    expected = evaluate_depth(estimator.estimate(rgb, intrinsics=by_hand), gt, crop="none")
    assert row["abs_rel"] == pytest.approx(expected["abs_rel"], rel=1e-6)
    stretched = evaluate_depth(estimator.estimate(rgb), gt, crop="none")["abs_rel"]
    assert abs(stretched - expected["abs_rel"]) > 1e-3  # (the camera info makes a difference here)
