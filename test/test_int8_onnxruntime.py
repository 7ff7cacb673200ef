"""int8 ONNX Runtime on the CPU (issue 14): a statically quantised file calibrated on real KITTI frames
from ../shared (not the held-out ones), cached under the calibration set's checksum, within 0.005
abs_rel of fp32 on the held-out annotated frames; a corrupt file is rebuilt with a warning."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from depth_attn.imageio import read_depth_png, read_rgb
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.inference.artefacts import (
    Calibration,
    int8_card,
    int8_onnx_artefact,
    int8_onnx_key,
    onnx_artefact,
)
from depth_attn.inference.backends import BackendError
from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_attn.inference.cache import ArtefactCache, CacheWarning, key_digest
from depth_attn.inference.calibration import calibration_files, calibration_fingerprint
from depth_attn.metrics import evaluate_depth, mean_metrics
from depth_attn.paths import data_dir, sha256_file

FRAMES = 8  # calibration frames: enough for the accuracy target here, and a build of seconds


@pytest.fixture(scope="module")
def calibration_dir():
    return data_dir() / "kitti" / "unlabelled" / "drive_a_268"  # same drive family, not held out


@pytest.fixture(scope="module")
def fp32_estimator():
    return DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="torch"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return ArtefactCache(tmp_path_factory.mktemp("int8_cache"))


@pytest.fixture(scope="module")
def built(fp32_estimator, calibration_dir, cache):
    return int8_onnx_artefact(fp32_estimator.source, Calibration(calibration_dir, FRAMES), cache=cache)


def annotated():
    folder = data_dir() / "kitti" / "annotated"
    for image in sorted((folder / "image_02").glob("*.png")):
        yield read_rgb(image), read_depth_png(folder / "groundtruth_depth" / image.name)


def test_calibration_frames_are_from_the_training_pool_not_the_held_out_sets(calibration_dir):
    """The int8 file is scored on kitti/annotated (and kitti2015 is held out too): none of the frames it
    is calibrated on may be one of those, by content, whatever the files are called."""
    used = {sha256_file(path) for path in calibration_files(calibration_dir)[:FRAMES]}
    assert len(used) == FRAMES
    held_out = [p for name in ("annotated", "kitti2015") for p in (data_dir() / "kitti" / name).rglob("*.png")]
    assert held_out and used.isdisjoint(sha256_file(path) for path in held_out)
    assert "unlabelled" in calibration_dir.parts


def test_int8_estimator_is_within_the_accuracy_target_of_fp32(calibration_dir):
    """The node's path: backend onnxruntime, precision int8, calibration as a backend option."""
    config = dict(weights="meter-xxs-kitti", backend="onnxruntime", backend_options={"intra_op_threads": 1})
    fp32 = DepthEstimator(EstimatorConfig(**config))
    int8 = DepthEstimator(EstimatorConfig(**{**config, "precision": "int8", "backend_options": {
        "intra_op_threads": 1, "calibration": str(calibration_dir), "calibration_frames": FRAMES}}))
    info = int8.describe()
    assert info["quantized"].startswith("int8") and info["precision"] == "int8"
    assert info["artefact"].startswith("built")
    rows32, rows8 = [], []
    for rgb, gt in annotated():  # held out: never among the calibration frames
        d32, d8 = fp32.estimate(rgb), int8.estimate(rgb)
        assert d8.shape == d32.shape == gt.shape and d8.dtype == np.float32
        assert not np.array_equal(d8, d32)  # it is another network
        rows32.append(evaluate_depth(d32, gt, 1e-3, 80.0))
        rows8.append(evaluate_depth(d8, gt, 1e-3, 80.0))
    abs32, abs8 = mean_metrics(rows32)["abs_rel"], mean_metrics(rows8)["abs_rel"]
    assert abs32 == pytest.approx(0.0699, abs=5e-4)  # the checkpoint's recorded held-out figure
    assert abs(abs8 - abs32) <= 0.005, (abs8, abs32)
    with pytest.raises(BackendError, match="needs calibration frames"):
        DepthEstimator(EstimatorConfig(**{**config, "precision": "int8"}))


def test_int8_file_loads_runs_and_carries_its_card(built, fp32_estimator, calibration_dir, cache):
    assert not built.hit
    card = int8_card(built.path)
    assert card["calibration"]["sha256"] == calibration_fingerprint(calibration_dir, FRAMES)["sha256"]
    assert card["calibration_frames_used"] == FRAMES and card["quantized_nodes"] > 50
    assert card["keep_fp32_prefixes"] == ["/decoder/ups_block_3/", "/decoder/conv2d_out/"]
    assert card["recipe"]["reduce_range"] is True  # 7-bit weights: full-range ones saturate on AVX2 without VNNI
    assert "/decoder/conv2d_out/Conv" in card["fp32_nodes"]
    fp32_path = onnx_artefact(fp32_estimator.source, cache).path
    assert built.path.stat().st_size < 0.6 * fp32_path.stat().st_size  # int8 convolution weights
    rgb, _ = next(annotated())
    batch = fp32_estimator.preprocess(rgb)
    out8 = OnnxRuntimeBackend(built.path, precision="int8", intra_op_threads=1).run(batch)
    out32 = OnnxRuntimeBackend(fp32_path, intra_op_threads=1).run(batch)
    rel = np.median(np.abs(out8 - out32) / out32)
    assert 0 < rel < 0.05, rel


def test_the_cache_key_follows_the_calibration_set(built, fp32_estimator, calibration_dir, cache, tmp_path):
    source = fp32_estimator.source
    # The same frames elsewhere: the same set (keyed by content, not path), served from the cache.
    copy = tmp_path / "copy"
    copy.mkdir()
    files = calibration_files(calibration_dir)[:FRAMES]
    for path in files:
        shutil.copyfile(path, copy / path.name)
    again = int8_onnx_artefact(source, Calibration(copy, FRAMES), cache=cache)
    assert again.hit and again.path == built.path
    fp32_sha = sha256_file(onnx_artefact(source, cache).path)
    keep = ("/decoder/ups_block_3/", "/decoder/conv2d_out/")

    def digest(folder, frames=FRAMES):
        return key_digest(int8_onnx_key(fp32_sha, calibration_fingerprint(folder, frames), keep))

    original = digest(calibration_dir)
    assert digest(copy) == original
    assert digest(calibration_dir, FRAMES - 1) != original  # fewer frames
    shutil.copyfile(files[-1], copy / files[0].name)  # one frame replaced by another
    assert digest(copy) != original
    assert cache.entry_folder("onnx", "x", int8_onnx_key(fp32_sha, calibration_fingerprint(copy, FRAMES), keep)) != \
        cache.entry_folder("onnx", "x", int8_onnx_key(fp32_sha, calibration_fingerprint(calibration_dir, FRAMES), keep))
    assert key_digest(int8_onnx_key(fp32_sha, calibration_fingerprint(calibration_dir, FRAMES), ())) != original


def test_a_corrupt_int8_file_is_rebuilt_with_a_warning(built, fp32_estimator, calibration_dir, cache):
    data = bytearray(built.path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\0" * 64
    built.path.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="unusable.*rebuilding"):
        rebuilt = int8_onnx_artefact(fp32_estimator.source, Calibration(calibration_dir, FRAMES), cache=cache)
    assert not rebuilt.hit and rebuilt.path == built.path
    assert int8_card(rebuilt.path)["calibration_frames_used"] == FRAMES
    OnnxRuntimeBackend(rebuilt.path, precision="int8").run(fp32_estimator.preprocess(next(annotated())[0]))
    assert int8_onnx_artefact(fp32_estimator.source, Calibration(calibration_dir, FRAMES), cache=cache).hit


def test_export_command_builds_the_int8_file(calibration_dir, capsys):
    from depth_attn.cli import main

    assert main(["export", "--weights", "meter-xxs-kitti", "--precision", "int8"]) == 1
    assert "--precision int8 needs --calibration" in capsys.readouterr().err
    assert main(["export", "--weights", "meter-xxs-kitti", "--precision", "int8", "--calibration", str(calibration_dir),
                 "--calibration-frames", "4"]) == 0
    printed = capsys.readouterr().out
    assert "int8: 4 calibration frames" in printed and "14 nodes kept fp32" in printed
    path = printed.split("int8: ")[1].split(" -> ")[1].split(";")[0]
    assert int8_card(path)["calibration"]["frames"] == 4
    error = float(printed.split("int8 vs fp32 max relative error ")[1].split()[0])
    assert 0 < error < 0.5  # random input: a loose bound; the held-out accuracy is tested above
