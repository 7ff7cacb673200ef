"""`depth-attn study` on five real KITTI 2015 frames: its accuracy is `depth-attn eval`'s, on the frame
folder and on the bag made from it."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from depth_attn.cli import main as cli_main
from depth_attn.paths import data_dir

CONFIGS = ("meter-tiny-base-full", "meter-tiny-meta-full")


@pytest.fixture(scope="module")
def five_frames(tmp_path_factory):
    """The first five KITTI 2015 frames in the shared layout (image_2/, groundtruth_depth/, intrinsics.json)."""
    source = data_dir() / "kitti" / "kitti2015"
    if not source.is_dir():
        pytest.fail(f"the shared KITTI 2015 frames are missing: {source}")
    root = tmp_path_factory.mktemp("kitti2015_five")
    (root / "image_2").mkdir()
    (root / "groundtruth_depth").mkdir()
    for image in sorted((source / "image_2").iterdir())[:5]:
        shutil.copy(image, root / "image_2" / image.name)
        shutil.copy(source / "groundtruth_depth" / f"{image.stem}.png", root / "groundtruth_depth")
    shutil.copy(source / "intrinsics.json", root)
    return root


@pytest.fixture(scope="module")
def study(five_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    code = cli_main(["study", "--data", str(five_frames), "--out", str(out), "--configs", ",".join(CONFIGS),
                     "--backends", "torch", "--zoo", "chosen", "--runs", "2", "--warmup", "0",
                     "--entropy-dims", "2", "--no-progress"])
    assert code == 0
    return out


def _eval_abs_rel(target, variant, out) -> float:
    assert cli_main(["eval", str(target), "--variant", variant, "--weights", "auto", "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())["metrics"]["abs_rel"]


def test_study_accuracy_is_eval_on_the_folder_and_on_its_bag(study, five_frames, tmp_path):
    with open(study / "accuracy.csv", newline="") as f:
        rows = {r["config"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(CONFIGS) and {r["frames"] for r in rows.values()} == {"5"}
    # base: `depth-attn eval` on the same folder
    base = _eval_abs_rel(five_frames, "base", tmp_path / "eval_base")
    assert float(rows["meter-tiny-base-full"]["abs_rel"]) == pytest.approx(base, abs=1e-6)
    # meta: on the bag `depth-attn kitti2bag` makes of the folder (the reader of bags, not of folders)
    bag = tmp_path / "bag"
    assert cli_main(["kitti2bag", "--images", str(five_frames / "image_2"), "--gt-dir",
                     str(five_frames / "groundtruth_depth"), "--intrinsics", str(five_frames / "intrinsics.json"),
                     "--out", str(bag)]) == 0
    meta = _eval_abs_rel(bag, "meta", tmp_path / "eval_meta")
    assert float(rows["meter-tiny-meta-full"]["abs_rel"]) == pytest.approx(meta, abs=1e-6)
    assert 0.02 < base < 0.5 and 0.02 < meta < 0.5  # real metric depth, not a failed run
    report = (study / "report.md").read_text()
    for name, value in ((CONFIGS[0], base), (CONFIGS[1], meta)):
        assert f"| {name} | meter-xxs-" in report and f" | 5 | {value:.4f} |" in report


def test_study_report_sections_figures_and_entropy(study):
    report = (study / "report.md").read_text()
    for section in ("## The zoo", "## Latency", "## Accuracy", "## Pareto fronts", "## Embedding entropy",
                    "## The study's claims, checked"):
        assert section in report
    for figure in ("zoo.png", "latency.png", "pareto.png", "embeddings.png", "entropy.png"):
        assert (study / figure).read_bytes()[:4] == b"\x89PNG" and f"({figure})" in report
    with open(study / "latency.csv", newline="") as f:
        latency = list(csv.DictReader(f))
    assert {(r["config"], r["backend"], r["kind"]) for r in latency} == {
        (c, "torch", k) for c in CONFIGS for k in ("network", "end_to_end")}
    assert all(float(r["p90_ms"]) >= float(r["p50_ms"]) > 0 for r in latency)
    with open(study / "entropy.csv", newline="") as f:
        entropy = {r["config"]: r for r in csv.DictReader(f)}
    for row in entropy.values():
        # 5 frames of 160-d embeddings: not measurable in full; on 2 principal components the Gaussian one is,
        # k-NN (k = 5) needs more than 5 frames
        assert (row["n"], row["d"], row["gaussian_full"], row["knn_full"], row["knn"]) == ("5", "160", "", "", "")
        assert float(row["gaussian"]) == float(row["gaussian"])
    assert "n=5 samples in d=160 dimensions" in report
    assert "| Meta has the smallest parameter footprint | **holds** |" in report
    assert "PixelFormer/NeWCRFs" in report and "**not measurable here**" in report
