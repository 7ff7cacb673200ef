"""The sweep over configurations: trained ones evaluated, untrained ones timed only, Pareto report."""

from __future__ import annotations

import csv

import pytest

from depth_attn.cli import main as cli_main
from depth_attn.data.kitti import KittiDrive
from depth_attn.data.kitti2bag import write_bag
from depth_attn.data.sample import layout_annotated_drive
from depth_attn.evaluation.sweep import SweepRow, mark_frontier, parse_configs, trained_weights
from depth_attn.models.registry import ModelConfig, list_configs


@pytest.fixture(scope="module")
def kitti_bag(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti_sweep")
    drive = KittiDrive.open(layout_annotated_drive(root))
    return write_bag(drive.frames, drive.calib, root / "bag", progress=False).path


@pytest.mark.heavy
def test_sweep_two_configs_tiny_input(kitti_bag, tmp_path, shared, capsys):
    out = tmp_path / "sweep"
    code = cli_main(["sweep", str(kitti_bag), "--configs", "meter-tiny-base,meter-tiny-meta,meter-base-base",
                     "--input-size", "64x192",
                     "--max-frames", "2", "--timing-runs", "3", "--out", str(out)])
    assert code == 0
    with open(out / "sweep.csv", newline="") as f:
        rows = {r["config"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"meter-tiny-base-full", "meter-tiny-meta-full", "meter-base-base-full"}
    meta = rows["meter-tiny-meta-full"]  # the shipped distilled variant is on the accuracy axis
    assert meta["trained"] == "True" and meta["weights"] == "meter-xxs-meta-kitti" and 0 < float(meta["abs_rel"]) < 2
    tiny, base = rows["meter-tiny-base-full"], rows["meter-base-base-full"]
    assert tiny["trained"] == "True" and tiny["weights"] == "meter-xxs-kitti" and tiny["frames"] == "2"
    assert 0 < float(tiny["rmse"]) < 80 and 0 < float(tiny["abs_rel"]) < 2 and float(tiny["latency_p50_ms"]) > 0
    assert tiny["pareto"] == "True"
    # no meter-xs-kitti on this machine: timed only, no accuracy, never on the frontier
    assert base["trained"] == "False" and base["status"].startswith("untrained")
    assert base["rmse"] == "" and float(base["latency_p50_ms"]) > 0 and base["pareto"] == "False"
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "pareto.md").read_text()
    assert "| meter/tiny/base/full | yes | 2 |" in md and "meter/base/base/full" in md
    assert (out / "configs" / "meter-tiny-base-full" / "frames.csv").is_file()
    assert str((out / "pareto.png").resolve()) in capsys.readouterr().out


def test_frontier_and_config_parsing(tmp_path):
    def row(name, latency, rmse, trained=True):
        return SweepRow(ModelConfig.parse(name), trained, "w", latency_p50_ms=latency, rmse=rmse)

    rows = [row("meter-tiny-base", 10, 3.0), row("meter-base-base", 20, 2.5), row("meter-large-base", 30, 2.8),
            row("meter-tiny-meta", 5, float("nan"), trained=False)]
    frontier = mark_frontier(rows)
    assert [r.config.size for r in frontier] == ["tiny", "base"]
    assert [r.pareto for r in rows] == [True, True, False, False]

    assert parse_configs("all") == list_configs()
    listing = tmp_path / "configs.txt"
    listing.write_text("# mine\nmeter-tiny-base\nmeter-tiny-pyra-full  # a variant\n")
    assert [c.name for c in parse_configs(str(listing))] == ["meter-tiny-base-full", "meter-tiny-pyra-full"]
    with pytest.raises(FileNotFoundError):
        parse_configs("no_such_file")
    assert trained_weights(ModelConfig.parse("meter-tiny-pyra"))[0] == "meter-xxs-pyra-kitti"
    assert trained_weights(ModelConfig.parse("meter-tiny-base"))[0] == "meter-xxs-kitti"
    name, why = trained_weights(ModelConfig.parse("meter-base-meta"))
    assert name is None and why.startswith("untrained")
