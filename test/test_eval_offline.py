"""Offline evaluation of a KITTI bag with the METER KITTI checkpoint (real frames, real weights)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from depth_attn.cli import main as cli_main
from depth_attn.data.bags import BagError
from depth_attn.data.kitti import KittiDrive
from depth_attn.data.kitti2bag import write_bag
from depth_attn.data.sample import layout_annotated_drive
from depth_attn.evaluation import CSV_COLUMNS, read_csv
from depth_attn.evaluation.offline import EvalSettings, evaluate_bag
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.metrics import METRIC_NAMES

REFERENCE_ABS_REL_0000000005 = 0.0772  # specs/meter.md, no crop


@pytest.fixture(scope="module")
def kitti_bag(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti_eval")
    drive = KittiDrive.open(layout_annotated_drive(root, extra_without_gt=["0000000006"]))
    return write_bag(drive.frames, drive.calib, root / "bag", progress=False).path


@pytest.fixture(scope="module")
def estimator(shared):
    return DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti"))


@pytest.fixture(scope="module")
def offline(kitti_bag, estimator, tmp_path_factory):
    return evaluate_bag(kitti_bag, estimator, tmp_path_factory.mktemp("eval"), progress=False)


def test_frame_5_matches_the_reference(offline):
    rows = read_csv(offline.csv)
    assert [r["frame"] for r in rows] == [0, 1, 2]  # the three annotated frames; frame 6 has no ground truth
    assert abs(rows[0]["abs_rel"] - REFERENCE_ABS_REL_0000000005) < 0.005
    assert rows[0]["rmse"] == pytest.approx(2.6797, abs=0.05)
    assert rows[0]["delta1"] == pytest.approx(0.9619, abs=0.005)
    for row in rows:
        assert 0.03 < row["abs_rel"] < 0.15 and row["valid_pixels"] > 80_000
        assert row["latency_ms"] >= row["network_ms"] > 0


def test_csv_summary_and_plot(offline):
    header = offline.csv.read_text().splitlines()[0].split(",")
    assert tuple(header) == CSV_COLUMNS
    summary = json.loads(offline.summary_path.read_text())
    assert summary["frames"] == {"expected": 3, "received": 3, "dropped": 0}
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


def test_truncated_bag_keeps_rows_before_the_damage(kitti_bag, estimator, offline, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(kitti_bag, damaged)
    mcap = damaged / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.75)])
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
