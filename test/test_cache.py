"""The artefact cache ($DEPTH_ATTN_HOME/artefacts): built once, hit on the next start, rebuilt with a
warning when the cached file is broken, and a separate entry for different weights or shapes.

Every test has its own empty $DEPTH_ATTN_HOME (conftest.isolated_home)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.inference.artefacts import engine_key
from depth_attn.inference.cache import ArtefactCache, CacheWarning, artefacts_dir, key_digest
from depth_attn.inference.parity import random_batch, relative_error
from depth_attn.paths import home_dir

HW = (64, 192)


def start(weights=None, input_hw=HW) -> DepthEstimator:
    return DepthEstimator(EstimatorConfig(backend="onnxruntime", weights=weights, input_hw=input_hw))


def onnx_path(estimator: DepthEstimator) -> Path:
    return Path(estimator.describe()["onnx"])


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory) -> Path:
    """An artefact folder holding the untrained network's ONNX file, exported once per module."""
    home = tmp_path_factory.mktemp("filled_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPTH_ATTN_HOME", str(home))
        start()
    return home / "artefacts"


@pytest.fixture
def warm_start(filled_cache) -> Path:
    """This test's (empty) home gets a copy of the filled cache: like a robot's second boot."""
    shutil.copytree(filled_cache, artefacts_dir())
    return artefacts_dir()


def test_second_start_hits_the_cache_without_building_the_model():
    first = start()
    assert first.backend.artefact_status == "built (not cached yet)"
    path = onnx_path(first)
    assert path.is_relative_to(home_dir() / "artefacts" / "onnx")
    mtime = path.stat().st_mtime_ns
    second = start()
    assert second.backend.artefact_status == "hit"
    assert second.describe()["artefact"] == "hit"
    assert onnx_path(second) == path and path.stat().st_mtime_ns == mtime
    assert second.source._model is None  # on a hit the PyTorch model is never even built
    batch = random_batch(HW)
    assert np.array_equal(first.backend.run(batch), second.backend.run(batch))
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["key"]["input_shape"] == [1, 3, 64, 192]
    assert meta["key"]["weights_sha256"] == "untrained-seed0"
    assert meta["size"] == path.stat().st_size


def test_cached_untrained_network_is_the_one_pytorch_runs(warm_start):
    """Untrained networks are seeded, so the cached ONNX file and a fresh PyTorch model agree."""
    cached = start()
    assert cached.backend.artefact_status == "hit"
    torch_estimator = DepthEstimator(EstimatorConfig(input_hw=HW))
    batch = random_batch(HW)
    assert relative_error(cached.backend.run(batch), torch_estimator.backend.run(batch)) < 1e-4


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:-64] + bytes(64)), "checksum"),
        (lambda p: (p.parent / "meta.json").unlink(), "record"),
        (lambda p: p.unlink(), "missing"),
    ],
    ids=["truncated", "same-size-corruption", "record-deleted", "artefact-deleted"],
)
def test_broken_cached_file_is_rebuilt_with_a_warning(damage, reason, warm_start):
    path = onnx_path(start())
    good = path.read_bytes()
    damage(path)
    with pytest.warns(CacheWarning, match="rebuilding"):
        rebuilt = start()
    assert rebuilt.backend.artefact_status.startswith("built (")
    assert reason in rebuilt.backend.artefact_status
    assert onnx_path(rebuilt) == path and path.read_bytes() == good  # the same deterministic export
    assert start().backend.artefact_status == "hit"


def test_different_weights_or_shape_get_their_own_entry(kitti_checkpoint, tmp_path):
    by_name = start("meter-xxs-kitti")
    # the same file given by path has the same checksum: the same entry
    by_path = start(str(kitti_checkpoint))
    assert by_path.backend.artefact_status == "hit" and onnx_path(by_path) == onnx_path(by_name)
    # other weights (one tensor changed), same network and size: another entry
    state = torch.load(kitti_checkpoint, map_location="cpu", weights_only=True)
    first_key = next(iter(state))
    state[first_key] = state[first_key] * 1.5
    tuned = tmp_path / "tuned.pth"
    torch.save(state, tuned)
    other_weights = start(str(tuned))
    assert other_weights.backend.artefact_status.startswith("built")
    assert onnx_path(other_weights) != onnx_path(by_name)
    # another input shape: another entry
    other_shape = start("meter-xxs-kitti", input_hw=(128, 256))
    assert other_shape.backend.artefact_status.startswith("built")
    assert len({onnx_path(e) for e in (by_name, other_weights, other_shape)}) == 3
    assert len(ArtefactCache().entries("onnx")) == 3
    batch = random_batch(HW)
    assert not np.allclose(by_name.backend.run(batch), other_weights.backend.run(batch))


# --- engines. TensorRT cannot be installed here (no NVIDIA GPU), so these tests drive the cache with
# --- a STAND-IN builder and loader; the keying logic they test is the one engine_artefact uses.

GPU_A = {"device_name": "Orin (nvgpu)", "compute_capability": "8.7"}
GPU_B = {"device_name": "NVIDIA GeForce RTX 3060", "compute_capability": "8.6"}


def test_engine_entries_are_keyed_by_tensorrt_version_device_precision_and_calibration():
    cache = ArtefactCache()
    builds = []

    def stand_in_build(path: Path) -> None:  # stands in for tensorrt_backend.build_engine
        builds.append(path)
        path.write_bytes(b"serialised engine #%d" % len(builds))

    def get(key):
        return cache.get_or_build("engines", "meter-tiny-base-full_64x192_fp16", key, "model.engine", stand_in_build)

    base = engine_key("ab" * 32, "fp16", "10.3.0", GPU_A, 2.0)
    first = get(base)
    assert not first.hit and get(base).hit and len(builds) == 1
    variants = [
        engine_key("ab" * 32, "fp16", "8.6.2", GPU_A, 2.0),  # another TensorRT
        engine_key("ab" * 32, "fp16", "10.3.0", GPU_B, 2.0),  # another GPU
        engine_key("ab" * 32, "fp32", "10.3.0", GPU_A, 2.0),  # another precision
        engine_key("cd" * 32, "fp16", "10.3.0", GPU_A, 2.0),  # another ONNX key (weights, shape, code...)
        engine_key("ab" * 32, "int8", "10.3.0", GPU_A, 2.0, {"source": "/frames", "frames": 100, "files": []}),
        engine_key("ab" * 32, "int8", "10.3.0", GPU_A, 2.0, {"source": "/frames", "frames": 50, "files": []}),
    ]
    paths = {get(key).path for key in variants}
    assert len(paths) == len(variants) and first.path not in paths
    assert len(builds) == 1 + len(variants)
    assert len({key_digest(k) for k in [base, *variants]}) == len(variants) + 1


def test_engine_that_no_longer_loads_is_rebuilt_with_a_warning():
    """An engine intact on disk but refused by the runtime (e.g. after a TensorRT upgrade under the
    same version string) is caught by the loadability check. Stand-in loader: refuses engine #1."""
    cache = ArtefactCache()
    count = [0]

    def stand_in_build(path: Path) -> None:
        count[0] += 1
        path.write_bytes(b"engine #%d" % count[0])

    def stand_in_load(path: Path) -> None:  # stands in for tensorrt_backend.load_engine
        if path.read_bytes() == b"engine #1":
            raise RuntimeError("cannot deserialise: built by another TensorRT")

    key = engine_key("ef" * 32, "fp16", "10.3.0", GPU_A, 2.0)
    cache.get_or_build("engines", "m", key, "model.engine", stand_in_build)  # no check while building #1
    with pytest.warns(CacheWarning, match="cannot be loaded: RuntimeError: cannot deserialise"):
        result = cache.get_or_build("engines", "m", key, "model.engine", stand_in_build, stand_in_load)
    assert not result.hit and result.path.read_bytes() == b"engine #2"
    assert cache.get_or_build("engines", "m", key, "model.engine", stand_in_build, stand_in_load).hit


def test_cached_engine_is_deserialised_once_and_never_needs_the_onnx_file(monkeypatch):
    """Issue 15's start-up: a cached engine is found by the ONNX file's KEY (configuration, weights,
    shape, code...), so no ONNX file is exported, read or hashed, and the engine is deserialised once
    (the cache's load check hands its result to the backend). STAND-IN TensorRT (it cannot be
    installed here): build writes bytes, load counts; the keying and loading path is engine_artefact's."""
    from depth_attn.inference.artefacts import ModelSource, engine_artefact
    from depth_attn.inference.backends import tensorrt_backend
    from depth_attn.models.registry import build_model, validate_config

    built_from, loads = [], []

    def stand_in_build(onnx_path, path, precision, batches, workspace_gb, device):
        built_from.append(Path(onnx_path))
        path.write_bytes(b"engine of " + Path(onnx_path).read_bytes()[:16])

    def stand_in_load(path):
        loads.append(Path(path))
        return ("runtime", Path(path).read_bytes())

    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: type("trt", (), {"__version__": "10.3.0"}))
    monkeypatch.setattr(tensorrt_backend, "gpu_identity", lambda device="cuda": GPU_A)
    monkeypatch.setattr(tensorrt_backend, "build_engine", stand_in_build)
    monkeypatch.setattr(tensorrt_backend, "load_engine", stand_in_load)
    config = validate_config("meter", "tiny", "base", "full")
    builds = []

    def factory():
        builds.append(1)
        return build_model("meter", "tiny", "base", "full").eval()

    first = engine_artefact(ModelSource(config, HW, factory), "fp16")
    assert not first.hit and len(built_from) == 1 and built_from[0].name == "model.onnx"
    assert first.loaded == ("runtime", first.path.read_bytes()) and len(loads) == 1
    for onnx in (artefacts_dir() / "onnx").rglob("model.onnx"):
        onnx.unlink()  # a second start must not need it
    loads.clear()
    second = engine_artefact(ModelSource(config, HW, factory), "fp16")
    assert second.hit and second.path == first.path and len(built_from) == 1 and len(builds) == 1
    assert loads == [second.path] and second.loaded == first.loaded  # deserialised exactly once
    assert not any((artefacts_dir() / "onnx").rglob("model.onnx"))  # nothing exported again
    # other weights are another ONNX key, so another engine
    other = engine_artefact(ModelSource(config, HW, factory, weights_sha256="ab" * 32), "fp16")
    assert not other.hit and other.path != first.path and len(built_from) == 2


def test_failed_build_leaves_nothing_behind():
    cache = ArtefactCache()

    def failing_build(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_build("onnx", "m", {"k": 1}, "model.onnx", failing_build)
    folder = cache.entry_folder("onnx", "m", {"k": 1})
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert cache.entries() == []
    assert artefacts_dir() == home_dir() / "artefacts"


def test_cache_command_lists_and_clears_entries(warm_start, capsys):
    from depth_attn.cli import main

    [entry] = ArtefactCache().entries()
    assert main(["cache", "list"]) == 0
    listing = capsys.readouterr().out
    assert "1 entry" in listing and entry.label in listing and str(entry.path) in listing
    assert main(["cache", "clear", "--kind", "engines"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--match", entry.label[:10]]) == 0
    assert f"removed 1 entry ({entry.size / 1e6:.1f} MB)" in capsys.readouterr().out
    assert ArtefactCache().entries() == [] and not entry.folder.exists()
    assert start().backend.artefact_status == "built (not cached yet)"
