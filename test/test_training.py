"""The training engine on the real frames in ../shared: data sources, augmentation, student
initialisation, distillation, DDP through torch's own launcher, resume, signals, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from depth_attn.data.kitti import CameraCalibration, project_velodyne, read_velodyne_bin
from depth_attn.imageio import read_depth_png
from depth_attn.models import build_model
from depth_attn.paths import data_dir
from depth_attn.training import TrainError, load_config, train
from depth_attn.training.augment import AugmentConfig, augment, cutmix_batch, sample_rng
from depth_attn.training.average import average_checkpoints
from depth_attn.training.checkpoint import load_resume
from depth_attn.training.config import META_MIXER_STARTS, TrainConfigError, parse_config
from depth_attn.training.data import DataError, make_source
from depth_attn.training.ema import WeightAverage
from depth_attn.training.init import init_student
from depth_attn.training.loop import lr_factor
from depth_attn.training.validate import predict_metres
from depth_attn.weights import load_state_dict, locate

REPO = Path(__file__).resolve().parents[1]
KITTI = data_dir() / "kitti"
DRIVE_0023 = KITTI / "raw" / "2011_09_26" / "2011_09_26_drive_0023_sync"
CALIB = KITTI / "raw" / "2011_09_26"
FX_KITTI = 721.5377


def small_config(out_dir: Path, **overrides) -> dict:
    """A run that takes seconds: 64x192 input, drive 0023's seven left frames, meta from base."""
    raw = {
        "model": {"network": "meter", "size": "tiny", "variant": "meta", "init": "meter-xxs-kitti",
                  "input_size": [64, 192]},
        "teacher": {"network": "meter", "size": "tiny", "variant": "base", "weights": "meter-xxs-kitti"},
        "data": {"train": [{"type": "kitti_raw", "path": str(DRIVE_0023), "gt": "velodyne_raw"}],
                 "val": {"annotated": [{"type": "images", "path": str(KITTI / "annotated" / "image_02"),
                                        "depth": str(KITTI / "annotated" / "groundtruth_depth"),
                                        "intrinsics": str(KITTI / "annotated" / "intrinsics.json")}]}},
        "augment": {"crop": [64, 128]},
        "objective": {"distill_output": 1.0, "distill_features": 1.0, "silog": 0.1},
        "schedule": {"steps": 6, "batch_size": 2, "lr": 1e-3, "warmup_steps": 2, "threads": 1},
        "output": {"dir": str(out_dir), "name": "test-meta", "checkpoint_every": 3, "validate_every": 100},
    }
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = value
    return raw


def params_of(path: Path) -> dict:
    return load_state_dict(path)


def read_rows(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- data sources -----------------------------------------------------------------------------------


def test_kitti_raw_drive_with_velodyne_raw_ground_truth():
    source = make_source({"type": "kitti_raw", "path": str(DRIVE_0023), "gt": "velodyne_raw"})
    assert len(source) == 7 and source.gt_kind == "velodyne_raw"
    sample = source.load(0)
    assert sample.rgb.shape == (375, 1242, 3) and sample.rgb.dtype == np.uint8
    png = read_depth_png(DRIVE_0023 / "proj_depth" / "velodyne_raw" / "image_02" / f"{sample.name}.png")
    valid = png > 0
    assert np.array_equal(np.isfinite(sample.depth), valid)
    assert np.allclose(sample.depth[valid], png[valid], atol=1 / 256)
    assert 1.0 < np.nanmedian(sample.depth) < 60.0
    assert sample.intrinsics.fx == pytest.approx(FX_KITTI)
    right = make_source({"type": "kitti_raw", "path": str(DRIVE_0023), "gt": "velodyne_raw", "camera": 3})
    assert len(right) == 7 and right.load(0).depth is not None
    assert right.intrinsics.fx == pytest.approx(FX_KITTI)


def test_clip_with_projected_scans_and_no_timestamps():
    clip = KITTI / "sequence_sfnd"
    source = make_source({"type": "kitti_raw", "path": str(clip), "calib": str(CALIB), "gt": "velodyne"})
    assert len(source) == 78
    sample = source.load(10)
    expected = project_velodyne(read_velodyne_bin(clip / "velodyne_points" / "data" / "0000000010.bin"),
                                CameraCalibration.from_raw_dir(CALIB))
    assert sample.depth.shape == (375, 1242)
    assert np.array_equal(np.isfinite(sample.depth), np.isfinite(expected))
    assert np.isfinite(sample.depth).sum() > 1000
    assert 2.0 < np.nanmedian(sample.depth) < 60.0


def test_image_folder_without_ground_truth_and_split_file(tmp_path):
    source = make_source({"type": "images", "path": str(KITTI / "unlabelled" / "drive_b_91"), "calib": str(CALIB)})
    assert len(source) == 91 and not source.has_gt
    sample = source.load(0)
    assert sample.depth is None and sample.rgb.shape == (375, 1242, 3)
    assert sample.intrinsics.fx == pytest.approx(FX_KITTI)
    split = tmp_path / "split.txt"
    split.write_text("2011_09_26/2011_09_26_drive_0023_sync 3 l\n2011_09_26/2011_09_26_drive_0023_sync 5 l\n"
                     "2011_09_26/2011_09_26_drive_0023_sync 5 r\n")
    chosen = make_source({"type": "kitti_raw", "path": str(DRIVE_0023), "split": str(split)})
    assert [f.name for f in chosen.frames] == ["0000000003", "0000000005"]


def test_bag_from_kitti2bag(tmp_path):
    bag = tmp_path / "drive0023"
    cmd = [sys.executable, "-m", "depth_attn", "kitti2bag", str(DRIVE_0023), "--gt", "velodyne_raw", "--out", str(bag)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    source = make_source({"type": "bag", "path": str(bag)})
    assert len(source) == 7 and source.has_gt
    sample = source.load(3)
    png = read_depth_png(DRIVE_0023 / "proj_depth" / "velodyne_raw" / "image_02" / "0000000003.png")
    valid = png > 0
    assert sample.rgb.shape == (375, 1242, 3)
    assert np.array_equal(np.isfinite(sample.depth), valid)
    assert np.allclose(sample.depth[valid], png[valid], atol=1 / 256)
    assert sample.intrinsics.fx == pytest.approx(FX_KITTI, rel=1e-4)


def test_augmentation_sizes_metres_and_intrinsics():
    sample = make_source({"type": "kitti_raw", "path": str(DRIVE_0023), "gt": "velodyne_raw"}).load(2)
    config = AugmentConfig(input_hw=(192, 636), crop_hw=(192, 320), scale=(1.0, 1.0), flip=0.0, rotate_deg=0.0,
                           jitter=0.0)
    view = augment(sample, config, sample_rng(0, 0, 2))
    assert view.image.shape == (3, 192, 320) and view.image.dtype == np.float32
    assert 0.0 <= view.image.min() and view.image.max() <= 1.0
    assert view.depth.shape == (192, 320)
    # metres are kept (never rescaled) and the intrinsics follow resize then crop
    assert np.nanmax(view.depth) <= np.nanmax(sample.depth) + 1e-3
    assert view.intrinsics.fx == pytest.approx(FX_KITTI * 636 / 1242, rel=1e-6)
    assert view.intrinsics.fy == pytest.approx(FX_KITTI * 192 / 375, rel=1e-6)
    # the same seed gives the same view; flipped views mirror cx
    again = augment(sample, config, sample_rng(0, 0, 2))
    assert np.array_equal(view.image, again.image)
    flipped = augment(sample, AugmentConfig(input_hw=(192, 636), crop_hw=(192, 320), flip=1.0, rotate_deg=0.0,
                                            jitter=0.0), sample_rng(0, 0, 2))
    assert flipped.intrinsics.cx == pytest.approx(319 - view.intrinsics.cx, abs=1e-6)
    assert np.allclose(flipped.image, view.image[:, :, ::-1])



def test_cutmix_pastes_a_box_of_the_next_view_with_its_depth():
    images = np.random.default_rng(0).random((3, 3, 16, 40)).astype(np.float32)
    originals = images.copy()
    depths = np.stack([np.full((16, 40), d, np.float32) for d in (5.0, 10.0, 20.0)])
    depths[2, :, :5] = np.nan  # no ground truth there: stays "none" where it is pasted
    config = AugmentConfig(input_hw=(16, 40), mix=1.0, mix_area=(0.25, 0.25))
    mixed_images, mixed_depths, count = cutmix_batch(images, depths, config, np.random.default_rng(1))
    assert count == 3 and mixed_images.shape == images.shape
    for i in range(3):
        j = (i + 1) % 3
        same = (mixed_depths[i] == depths[i]) | (np.isnan(mixed_depths[i]) & np.isnan(depths[i]))
        box = ~same
        pasted = np.argwhere(np.any(mixed_images[i] != images[i], axis=0))
        (top, left), (bottom, right) = pasted.min(0), pasted.max(0) + 1
        assert (bottom - top, right - left) == (8, 20)  # sqrt(0.25) of each side
        assert np.array_equal(mixed_images[i][:, top:bottom, left:right], images[j][:, top:bottom, left:right])
        assert np.array_equal(mixed_depths[i][top:bottom, left:right], depths[j][top:bottom, left:right],
                              equal_nan=True)
        # outside the box: untouched, metres unchanged
        assert not box[:top].any() and not box[bottom:].any() and not box[:, :left].any()
    assert np.array_equal(images, originals)  # the inputs are not modified in place
    untouched, _, none = cutmix_batch(images, depths, AugmentConfig(mix=0.0), np.random.default_rng(1))
    assert none == 0 and untouched is images
    with pytest.raises(ValueError, match="mix"):
        AugmentConfig(mix=1.5).check()

def test_student_initialisation_report():
    state = load_state_dict(locate("meter-xxs-kitti"))
    meta = init_student(build_model("meter", "tiny", "meta"), state)
    assert len(meta.matched) == 252 and len(meta.unused) == 9 and not meta.missing
    pyra_model = build_model("meter", "tiny", "pyra")
    pyra = init_student(pyra_model, state)
    # to_q/to_kv are the rows of to_qkv; the reduction conv starts as a block mean
    assert len(pyra.derived) == 12 and not pyra.unused
    name = "encoder.mvit.0.transformer.layers.0.0.fn"
    qkv = state[f"{name}.to_qkv.weight"]
    own = pyra_model.state_dict()
    assert torch.equal(torch.cat([own[f"{name}.to_q.weight"], own[f"{name}.to_kv.weight"]]), qkv)
    moh_model = build_model("meter", "tiny", "moh")
    moh = init_student(moh_model, state)
    assert len(moh.matched) == 261 and len(moh.derived) == 9 and not moh.missing
    base = build_model("meter", "tiny", "base")
    base.load_state_dict(state)
    x = torch.rand(1, 3, 64, 192)
    with torch.no_grad():  # zero routers: every gate is 1, MoH equals the base attention
        assert torch.allclose(moh_model.eval()(x), base.eval()(x), atol=1e-5)


def test_meta_mixers_start_silenced_halved_or_copied():
    """model.meta_mixers scales the pre-norm in front of each pooling mixer: silenced (0) makes the branch
    add exactly nothing, so the student starts as METER-XXS without its attention branches; halved (0.5)
    makes it add half of what it adds copied (the pooling mixer is linear)."""
    state = load_state_dict(locate("meter-xxs-kitti"))
    student = build_model("meter", "tiny", "meta")
    report = init_student(student, state, meta_branch_gain=META_MIXER_STARTS["silenced"])
    assert len(report.matched) == 246 and len(report.derived) == 6 and not report.missing
    assert all(".transformer.layers.0.0.norm." in name for name in report.derived)
    tokens = torch.randn(2, 30, 64)
    with torch.no_grad():
        branch = student.encoder.mvit[0].transformer.layers[0][0]
        assert torch.count_nonzero(branch(tokens, grid_hw=(5, 6))) == 0
    copied = build_model("meter", "tiny", "meta")
    assert len(init_student(copied, state).derived) == 0
    halved = build_model("meter", "tiny", "meta")
    assert len(init_student(halved, state, meta_branch_gain=META_MIXER_STARTS["halved"]).derived) == 6
    with torch.no_grad():
        full = copied.encoder.mvit[0].transformer.layers[0][0](tokens, grid_hw=(5, 6))
        half = halved.encoder.mvit[0].transformer.layers[0][0](tokens, grid_hw=(5, 6))
    assert torch.count_nonzero(full) > 0 and torch.allclose(half, 0.5 * full, atol=1e-6)
    pyra = init_student(build_model("meter", "tiny", "pyra"), state, meta_branch_gain=0.0)
    assert len(pyra.derived) == 12  # nothing to silence: no meta mixer
    assert parse_config(small_config(Path("unused"), **{"model.meta_mixers": "halved"})).model.meta_mixers == "halved"
    with pytest.raises(TrainConfigError, match="meta_mixers"):
        parse_config(small_config(Path("unused"), **{"model.meta_mixers": "zero"}))


def test_learning_rate_schedule():
    assert lr_factor(0, 100, 10, "cosine", 0.0, 0.9) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine", 0.0, 0.9) == pytest.approx(1.0)
    assert lr_factor(99, 100, 10, "cosine", 0.0, 0.9) < 0.01
    assert lr_factor(55, 100, 10, "poly", 0.1, 1.0) == pytest.approx(0.1 + 0.9 * 0.5, rel=0.03)


# -- the loop -------------------------------------------------------------------------------------


def test_distillation_moves_the_student_towards_the_teacher(tmp_path):
    raw = small_config(tmp_path / "run", **{"schedule.steps": 30, "schedule.threads": 2,
                                            "output.checkpoint_every": 100})
    raw["data"]["train"].append({"type": "kitti_raw", "path": str(KITTI / "sequence_sfnd"), "calib": str(CALIB),
                                 "gt": "none"})
    raw["model"]["input_size"] = [128, 384]
    raw["augment"]["crop"] = [128, 256]
    config = parse_config(raw)
    held_out = make_source({"type": "images", "path": str(KITTI / "annotated" / "image_02")}).load(1)
    state = load_state_dict(locate("meter-xxs-kitti"))
    teacher = build_model("meter", "tiny", "base").eval()
    teacher.load_state_dict(state)
    before = build_model("meter", "tiny", "meta").eval()
    init_student(before, state)

    def error(model):
        s = predict_metres(model, held_out, (128, 384), 0.1, 1e-3, 80.0, torch.device("cpu"))
        t = predict_metres(teacher, held_out, (128, 384), 0.1, 1e-3, 80.0, torch.device("cpu"))
        return float(np.mean(np.abs(np.log(s) - np.log(t))))

    result = train(config, progress=False)
    after = build_model("meter", "tiny", "meta").eval()
    after.load_state_dict(load_state_dict(result.final_weights))
    e0, e1 = error(before), error(after)
    assert e1 < 0.6 * e0, (e0, e1)
    card = json.loads(result.card.read_text())
    assert card["variant"] == "meta" and card["steps"] == 30 and card["teacher"]["weights"] == "meter-xxs-kitti"
    assert card["heldout"]["annotated"]["frames"] == 3 and 0 < card["heldout"]["annotated"]["abs_rel"] < 2
    assert (tmp_path / "run" / "curves.png").stat().st_size > 5000
    rows = read_rows(tmp_path / "run" / "train.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))


def test_resume_continues_at_the_exact_step(tmp_path):
    straight = train(parse_config(small_config(tmp_path / "a")), progress=False)
    first = train(parse_config(small_config(tmp_path / "b")), progress=False, stop_after=3)
    assert first.interrupted and first.steps_done == 3
    resumed = train(parse_config(small_config(tmp_path / "b")), resume="auto", progress=False)
    assert resumed.steps_done == 6 and not resumed.interrupted
    a = load_resume(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_resume(tmp_path / "b" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-6, rtol=0), name
    for key, state in a["optimizer"]["state"].items():
        for field in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(state[field], b["optimizer"]["state"][key][field], atol=1e-7, rtol=1e-5)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6
    rows = read_rows(tmp_path / "b" / "train.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # elapsed_s counts the stopped run's training time too: it never falls back at the resumed step
    elapsed = [float(r["elapsed_s"]) for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[3] > elapsed[2] > 0
    assert b["elapsed_s"] >= elapsed[-1]
    assert straight.final_weights.is_file() and resumed.final_weights.is_file()


def test_weight_average_warms_up_and_swaps_back():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(10.0)
    average.update(model)  # decay min(0.99, 1/10) = 0.1: 0.9 of the way to the new weights
    assert average.average["weight"].flatten().tolist() == pytest.approx([9.0, 9.0])
    assert average.current_decay() == pytest.approx(2 / 11)
    with average.swapped_in(model):
        assert model.weight.flatten().tolist() == pytest.approx([9.0, 9.0])
    assert model.weight.flatten().tolist() == [10.0, 10.0]
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)
    with pytest.raises(TrainConfigError, match="schedule.ema"):
        parse_config(small_config(Path("unused"), **{"schedule.ema": 1.0}))


def test_weight_average_is_validated_shipped_and_resumed(tmp_path):
    overrides = {"schedule.ema": 0.9, "output.validate_every": 3}
    straight = train(parse_config(small_config(tmp_path / "a", **overrides)), progress=False)
    first = train(parse_config(small_config(tmp_path / "b", **overrides)), progress=False, stop_after=3)
    resumed = train(parse_config(small_config(tmp_path / "b", **overrides)), resume="auto", progress=False)
    assert first.interrupted and resumed.steps_done == 6
    a = load_resume(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_resume(tmp_path / "b" / "checkpoints" / "last.pt")
    assert a["ema"]["updates"] == b["ema"]["updates"] == 6
    shipped = load_state_dict(straight.final_weights)
    moved = 0
    for name, tensor in a["ema"]["average"].items():
        assert torch.allclose(tensor, b["ema"]["average"][name], atol=1e-6, rtol=0), name
        assert torch.equal(shipped[name], tensor), name  # the shipped weights are the average ...
        moved += int(not torch.equal(tensor, a["model"][name]))
    assert moved > 10  # ... not the last step's weights
    card = json.loads(straight.card.read_text())
    assert card["config"]["schedule"]["ema"] == 0.9
    best = build_model("meter", "tiny", "meta")
    best.load_state_dict(load_state_dict(tmp_path / "a" / "best.pth"))  # the validated average loads strictly
    # a run without the average cannot be resumed as one that has it
    train(parse_config(small_config(tmp_path / "c")), progress=False, stop_after=3)
    with pytest.raises(TrainError, match="without schedule.ema"):
        train(parse_config(small_config(tmp_path / "c", **overrides)), resume="auto", progress=False)


def test_average_of_two_runs_is_measured_carded_and_importable(tmp_path, capsys):
    """`depth-attn weights average`: the mean of two trained students, its own held-out metrics, and a
    card whose command remakes it (run b started from run a: a's command comes first, once)."""
    from depth_attn.cli import main as cli_main
    from depth_attn.paths import sha256_file
    from depth_attn.training.data import build_dataset
    from depth_attn.training.validate import validate
    from depth_attn.weights import checkpoint_info, import_trained

    run_a = train(parse_config(small_config(tmp_path / "a")), progress=False, argv=["depth-attn", "train", "A"])
    raw_b = small_config(tmp_path / "b", **{"model.init": str(run_a.final_weights)})
    raw_b["schedule"]["seed"] = 1
    run_b = train(parse_config(raw_b), progress=False, argv=["depth-attn", "train", "B"])
    output = tmp_path / "soup" / "test-meta.pth"
    assert cli_main(["weights", "average", str(output), str(run_a.final_weights), str(run_b.final_weights),
                     "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    a, b, soup = (load_state_dict(p) for p in (run_a.final_weights, run_b.final_weights, output))
    differing = 0
    for key, tensor in soup.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (a[key].double() + b[key].double()).div(2).float(), atol=1e-7), key
            differing += int(not torch.equal(a[key], b[key]))
        else:
            assert torch.equal(tensor, a[key]), key
    assert differing > 10
    card = json.loads(output.with_suffix(".json").read_text())
    model = build_model("meter", "tiny", "meta").eval()
    model.load_state_dict(soup, strict=True)
    annotated = parse_config(small_config(tmp_path / "x")).val_data["annotated"]
    measured = validate(model, build_dataset(annotated, cache=False), (64, 192), 0.1)
    assert card["heldout"]["annotated"]["frames"] == 3
    assert card["heldout"]["annotated"]["abs_rel"] == pytest.approx(measured["abs_rel"], abs=1e-6)
    assert f"held-out annotated: abs_rel {measured['abs_rel']:.4f}" in printed
    assert card["command"] == f"depth-attn train A && depth-attn train B && " \
                              f"depth-attn weights average {output} {run_a.final_weights} {run_b.final_weights}"
    assert [s["sha256"] for s in card["averaged_from"]] == [json.loads(r.card.read_text())["sha256"]
                                                           for r in (run_a, run_b)]
    assert card["steps"] == 12 and card["variant"] == "meta" and card["init"] is None
    # a robot takes it like any trained checkpoint
    cached = import_trained(output)
    assert checkpoint_info("test-meta").covers == ("meter", "tiny", "meta", "full")
    assert locate("test-meta") == cached and sha256_file(cached) == card["sha256"]

    # refused: another configuration, a file changed after its card, a file without a card, one input
    other = tmp_path / "other" / "test-meta.pth"
    other.parent.mkdir()
    other.write_bytes(run_b.final_weights.read_bytes())
    other_card = json.loads(run_b.card.read_text())
    other.with_suffix(".json").write_text(json.dumps({**other_card, "variant": "pyra"}))
    with pytest.raises(TrainError, match="variant 'pyra'.*only checkpoints of one configuration"):
        average_checkpoints([run_a.final_weights, other], tmp_path / "bad.pth")
    other.with_suffix(".json").write_text(json.dumps({**other_card, "sha256": "0" * 64}))
    with pytest.raises(TrainError, match="does not match the sha256 on its card"):
        average_checkpoints([run_a.final_weights, other], tmp_path / "bad.pth")
    other.with_suffix(".json").unlink()
    with pytest.raises(TrainError, match="has no card test-meta.json beside it"):
        average_checkpoints([run_a.final_weights, other], tmp_path / "bad.pth")
    with pytest.raises(TrainError, match="at least two"):
        average_checkpoints([run_a.final_weights], tmp_path / "bad.pth")
    assert not (tmp_path / "bad.pth").exists()
    assert cli_main(["weights", "average", str(tmp_path / "bad.pth"), str(run_a.final_weights), str(other)]) == 1
    assert "has no card" in capsys.readouterr().err


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sigint_leaves_a_loadable_checkpoint_and_every_finished_step(tmp_path):
    raw = small_config(tmp_path / "run", **{"schedule.steps": 500, "output.checkpoint_every": 1000})
    config_file = write_yaml(tmp_path / "train.yaml", raw)
    proc = subprocess.Popen([sys.executable, "-m", "depth_attn.training", "--config", str(config_file),
                             "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "train.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.is_file() or len(read_rows(log)) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the run did not stop within 60 s of SIGINT:\n{err[-3000:]}")
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    state = load_resume(tmp_path / "run" / "checkpoints" / "last.pt")
    rows = read_rows(log)
    assert 3 <= state["step"] < 500
    assert [int(r["step"]) for r in rows] == list(range(1, state["step"] + 1))
    assert "--resume" in out


def test_card_command_leaves_out_what_only_steers_the_process():
    from depth_attn.cli.train import recipe_arguments
    args = ["--config", "c.yaml", "--set", "schedule.steps=9", "--resume", "auto", "--no-progress",
            "--set", "output.dir=out/x", "--resume=out/x/checkpoints/last.pt"]
    assert recipe_arguments(args) == ["--config", "c.yaml", "--set", "schedule.steps=9", "--set", "output.dir=out/x"]
    # a --set value is never mistaken for one of them
    assert recipe_arguments(["--set", "output.name=--resume"]) == ["--set", "output.name=--resume"]


def test_ddp_two_processes_through_torch_launcher(tmp_path):
    raw = small_config(tmp_path / "run", **{"schedule.steps": 3, "schedule.batch_size": 1,
                                            "output.check_sync": True, "output.log_shards": True})
    config_file = write_yaml(tmp_path / "train.yaml", raw)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "depth_attn.training", "--config", str(config_file), "--no-progress"]
    # its own session: on a time-out the launcher and both workers are killed together, never orphaned
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)
    try:
        _out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
        pytest.fail(f"DDP run did not finish in 300 s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    rows = read_rows(tmp_path / "run" / "train.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # one writer: not a row per rank
    assert all(float(r["param_spread"]) == 0.0 for r in rows)
    shards = [json.loads(line) for line in (tmp_path / "run" / "shards.jsonl").read_text().splitlines()]
    assert len(shards) == 3
    for entry in shards:
        rank0, rank1 = entry["ranks"]
        assert rank0 and rank1 and not set(rank0) & set(rank1)
    card = json.loads((tmp_path / "run" / "test-meta.json").read_text())
    assert card["processes"] == 2 and card["command"].startswith("torchrun --nproc-per-node 2")
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == sorted(["best.pth", "checkpoints", "config.yaml", "curves.png", "run.json", "shards.jsonl",
                              "test-meta.json", "test-meta.pth", "train.csv"])


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input_is_refused_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        make_source({"type": "images", "path": str(empty)})
    with pytest.raises(DataError, match="ground-truth folder not found"):
        make_source({"type": "images", "path": str(KITTI / "annotated" / "image_02"), "depth": str(tmp_path / "nope")})
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "0000000000.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    raw = small_config(tmp_path / "run")
    raw["data"]["train"] = [{"type": "images", "path": str(corrupt)}]
    with pytest.raises(TrainError, match="cannot decode"):
        train(parse_config(raw), progress=False)
    assert not (tmp_path / "run").exists()  # nothing written before the data were checked
    with pytest.raises(TrainConfigError, match="unknown key"):
        parse_config({**small_config(tmp_path / "x"), "schedule": {"stpes": 3}})


def test_resume_and_output_folder_of_another_run_are_refused(tmp_path):
    run = tmp_path / "run"
    train(parse_config(small_config(run, **{"schedule.steps": 3})), progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.is_file()}
    with pytest.raises(TrainError, match="holds another run"):
        train(parse_config(small_config(run, **{"schedule.steps": 3})), progress=False)
    other = small_config(tmp_path / "other", **{"schedule.steps": 3})
    other["model"]["variant"] = "pyra"
    with pytest.raises(TrainError, match="checkpoint of"):
        train(parse_config(other), resume=str(run / "checkpoints" / "last.pt"), progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.is_file()} == before


def test_train_config_examples_parse():
    for path in sorted(Path(__file__).resolve().parents[1].glob("config/train/*.yaml")):
        config = load_config(path)
        assert config.schedule.steps > 0 and config.train_data


def test_help_of_both_entry_points_explains_torchrun():
    for cmd in ([sys.executable, "-m", "depth_attn", "train", "--help"],
                [sys.executable, "-m", "depth_attn.training", "--help"]):
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        assert "torchrun --nproc-per-node" in text and "--resume" in text and "weights import" in text
        assert "schedule.ema" in text
        named = re.findall(r"config/train/[\w.]+\.yaml", text)
        assert named and all((REPO / path).is_file() for path in named), named  # every example it names exists
