"""The backends behind DepthEstimator: ONNX Runtime session set-up, the torch options, clear errors
for what cannot run here, the timing helpers, int8 calibration sources, and (where TensorRT and a
GPU exist) TensorRT itself."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.inference.backends import BackendError, create_backend
from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend, choose_providers
from depth_attn.inference.backends.tensorrt_backend import (
    calibration_files,
    calibration_fingerprint,
    calibration_images,
    tensorrt_version,
)
from depth_attn.inference.backends.torch_backend import TorchBackend
from depth_attn.inference.export import export_onnx
from depth_attn.inference.parity import random_batch, relative_error
from depth_attn.inference.timing import LatencyStats, measure_interleaved
from depth_attn.models import build_model

HW = (64, 192)


@pytest.fixture(scope="module")
def meter_tiny():
    torch.manual_seed(0)
    return build_model("meter", "tiny").eval()


@pytest.fixture(scope="module")
def meter_onnx(meter_tiny, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "meter_tiny.onnx"
    export_onnx(meter_tiny, path, HW)
    return path


@pytest.fixture(scope="module")
def reference(meter_tiny) -> np.ndarray:
    with torch.inference_mode():
        return meter_tiny(torch.from_numpy(random_batch(HW))).numpy()


# ------------------------------------------------------------------------------- ONNX Runtime


def test_onnxruntime_session_options(meter_onnx, reference):
    import onnxruntime as ort

    backend = OnnxRuntimeBackend(meter_onnx, intra_op_threads=1)
    options = backend.session.get_session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert backend.providers == ["CPUExecutionProvider"]
    assert backend.describe()["providers"] == "CPUExecutionProvider"
    out = backend.run(random_batch(HW))
    assert out.dtype == np.float32 and out.shape == (1, 1, 16, 48)
    assert relative_error(out, reference) < 1e-4
    # every optimisation level computes the same network
    for level in ("disable", "basic", "extended"):
        out = OnnxRuntimeBackend(meter_onnx, optimization=level).run(random_batch(HW))
        assert relative_error(out, reference) < 1e-4, level


def test_onnxruntime_refuses_what_it_cannot_do(meter_onnx):
    with pytest.raises(BackendError, match="needs its TensorRT provider"):
        OnnxRuntimeBackend(meter_onnx, precision="fp16")
    with pytest.raises(BackendError, match="not an int8 file made by depth_attn"):
        OnnxRuntimeBackend(meter_onnx, precision="int8")  # an fp32 file is not run as if it were int8
    with pytest.raises(BackendError, match="int8 with ONNX Runtime runs on the CPU provider"):
        choose_providers("cuda", "int8", ["cpu", "CUDAExecutionProvider"],
                         ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(BackendError, match="CUDAExecutionProvider is not available.*onnxruntime-gpu"):
        choose_providers("cuda", "fp32", None, ["CPUExecutionProvider"])
    with pytest.raises(BackendError, match="optimization must be one of"):
        OnnxRuntimeBackend(meter_onnx, optimization="max")
    # through the estimator: refused before any export work is done
    from depth_attn.inference.cache import artefacts_dir

    with pytest.raises(BackendError, match="needs its TensorRT provider"):
        DepthEstimator(EstimatorConfig(backend="onnxruntime", precision="fp16", input_hw=HW))
    assert not (artefacts_dir() / "onnx").exists()
    backend = OnnxRuntimeBackend(meter_onnx)
    with pytest.raises(BackendError, match="differs from the exported"):
        backend.run(random_batch((64, 224)))
    with pytest.raises(BackendError, match="cannot load"):
        OnnxRuntimeBackend(meter_onnx.parent / "missing.onnx")


def test_provider_lists_for_gpu_builds():
    """What a Jetson's onnxruntime-gpu gets (provider names only: no GPU needed to choose them)."""
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = choose_providers("cuda:1", "fp32", None, available)
    assert chosen == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    trt, cuda, cpu = choose_providers("cuda", "fp16", ["tensorrt", "cuda", "cpu"], available)
    assert trt[0] == "TensorrtExecutionProvider" and trt[1]["trt_fp16_enable"] is True
    assert cuda[0] == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"


def test_estimator_with_onnxruntime_uses_the_same_pre_and_postprocessing():
    rgb = np.random.default_rng(3).integers(0, 256, (120, 400, 3), dtype=np.uint8)
    by_torch = DepthEstimator(EstimatorConfig(input_hw=HW))
    by_ort = DepthEstimator(EstimatorConfig(input_hw=HW, backend="onnxruntime"))
    a = by_torch.estimate(rgb)
    started = time.perf_counter()
    b = by_ort.estimate(rgb)
    wall_ms = (time.perf_counter() - started) * 1e3  # the clock around the call: what the stages fit inside
    assert a.shape == b.shape == (120, 400) and a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    timing = by_ort.last_timing
    assert timing.network_ms > 0 and timing.preprocess_ms > 0 and timing.postprocess_ms > 0
    assert timing.network_ms < timing.total_ms <= wall_ms



def test_estimate_into_a_given_buffer_gives_the_same_depth():
    """The depth node has the estimator write into the outgoing message's buffer."""
    rgb = np.random.default_rng(4).integers(0, 256, (120, 400, 3), dtype=np.uint8)
    estimator = DepthEstimator(EstimatorConfig(input_hw=HW, max_depth=80.0))
    expected = estimator.estimate(rgb)
    buffer = np.full((120, 400), -1.0, dtype=np.float32)
    written = estimator.estimate(rgb, out=buffer)
    assert written is buffer
    np.testing.assert_array_equal(buffer, expected)
    assert buffer.min() >= estimator.min_depth and buffer.max() <= 80.0
    with pytest.raises(ValueError, match="float32 120x400"):
        estimator.estimate(rgb, out=np.zeros((120, 401), np.float32))


# ------------------------------------------------------------------------------- torch


def test_torch_channels_last_computes_the_same(meter_tiny, reference):
    plain = TorchBackend(meter_tiny, channels_last=False)
    assert plain.describe()["channels_last"] == "False"
    out_plain = plain.run(random_batch(HW))
    channels_last = TorchBackend(meter_tiny, channels_last="true")  # options may come as text
    assert channels_last.channels_last and channels_last.describe()["channels_last"] == "True"
    out_cl = channels_last.run(random_batch(HW))
    assert relative_error(out_cl, reference) < 1e-5
    assert relative_error(out_plain, reference) < 1e-6
    TorchBackend(meter_tiny, channels_last=False)  # leave the shared model contiguous


def test_torch_refuses_what_it_cannot_do(meter_tiny):
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        TorchBackend(meter_tiny, precision="fp16")
    with pytest.raises(BackendError, match="int8 is built with the tensorrt backend"):
        TorchBackend(meter_tiny, precision="int8")
    with pytest.raises(BackendError, match="CUDA graphs need a CUDA device"):
        TorchBackend(meter_tiny, cuda_graphs=True)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="PyTorch sees no CUDA device"):
            TorchBackend(meter_tiny, device="cuda")


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendError, match="unknown backend 'tvm'; choose one of torch, onnxruntime, openvino, "):
        create_backend("tvm", lambda: torch.nn.Identity(), {})


# ------------------------------------------------------------------------------- TensorRT, without it


def test_importing_inference_never_needs_tensorrt():
    code = (
        "import sys, depth_attn.inference, depth_attn.inference.backends.tensorrt_backend, depth_attn.cli.doctor; "
        "print('tensorrt' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.skipif(tensorrt_version() is not None, reason="tensorrt is installed here: the missing case cannot occur")
def test_tensorrt_chosen_without_it_says_what_to_install():
    with pytest.raises(BackendError, match="pip install tensorrt") as caught:
        DepthEstimator(EstimatorConfig(backend="tensorrt", input_hw=HW))
    assert "python3-libnvinfer" in str(caught.value) and "--backend onnxruntime" in str(caught.value)
    from depth_attn.cli import main

    assert main(["build-engine", "--input-size", "64x192"]) == 1


# ------------------------------------------------------------------------------- int8 calibration sources


def test_calibration_from_a_folder_of_images(kitti_annotated, tmp_path):
    folder = kitti_annotated / "image_02"
    frames = list(calibration_images(folder, limit=2))
    assert len(frames) == 2
    assert all(f.dtype == np.uint8 and f.shape == (375, 1242, 3) for f in frames)
    assert len(list(calibration_images(folder))) == 3
    fingerprint = calibration_fingerprint(folder, 100)
    assert [name for name, _ in fingerprint["files"]] == ["0000000005.png", "0000000050.png", "0000000100.png"]
    assert calibration_fingerprint(folder, 2) != fingerprint
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="no images"):
        list(calibration_images(tmp_path))
    with pytest.raises(FileNotFoundError, match="neither a folder of images nor a rosbag2"):
        list(calibration_images(tmp_path / "missing"))
    assert calibration_files(tmp_path) == []


def test_calibration_from_a_bag(kitti_annotated, tmp_path):
    from depth_attn.data import bags
    from depth_attn.imageio import read_rgb

    images = [read_rgb(p) for p in sorted((kitti_annotated / "image_02").glob("*.png"))]
    bag = tmp_path / "frames"
    with bags.BagWriter(bag) as writer:
        for i, rgb in enumerate(images):
            stamp = (i + 1) * 100_000_000
            writer.write(bags.IMAGE_TOPIC, bags.image_message(stamp, "camera", rgb, "rgb8"), stamp)
    frames = list(calibration_images(bag, limit=2))
    assert len(frames) == 2
    assert np.array_equal(frames[0], images[0]) and np.array_equal(frames[1], images[1])
    assert calibration_fingerprint(bag, 2)["files"]


# ------------------------------------------------------------------------------- timing


def test_latency_stats_and_round_robin_measurement():
    stats = LatencyStats.from_samples(list(range(1, 101)))
    assert (stats.runs, stats.p50_ms, stats.min_ms, stats.max_ms) == (100, 50.5, 1, 100)
    assert stats.p90_ms == pytest.approx(90.1) and stats.p99_ms == pytest.approx(99.01)
    assert stats.throughput_fps == pytest.approx(1000 / 50.5)
    calls = {"a": [], "b": []}
    result = measure_interleaved({k: (lambda k=k: calls[k].append(1)) for k in calls}, runs=7, warmup=2)
    assert {k: len(v) for k, v in calls.items()} == {"a": 9, "b": 9}
    assert result["a"].runs == 7 and result["a"].p50_ms >= 0
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


# ------------------------------------------------------------------------------- TensorRT itself


def _require_tensorrt():
    if tensorrt_version() is None:
        pytest.skip("TensorRT is not installed on this machine (it needs an NVIDIA GPU): engine build/run not tested")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but PyTorch sees no CUDA device: engine build/run not tested")


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 5e-2)])
@pytest.mark.parametrize("binding_api", ["tensors", "bindings"])
def test_tensorrt_engine_matches_pytorch(precision, tolerance, binding_api):
    _require_tensorrt()
    import tensorrt

    if binding_api == "bindings" and int(tensorrt.__version__.split(".")[0]) >= 10:
        pytest.skip(f"TensorRT {tensorrt.__version__} has no bindings API (removed in 10.0)")
    options = {"binding_api": binding_api}
    engine = DepthEstimator(EstimatorConfig(backend="tensorrt", precision=precision, device="cuda", input_hw=HW,
                                            backend_options=options))
    assert engine.backend.describe()["binding_api"] == binding_api
    torch_ref = DepthEstimator(EstimatorConfig(input_hw=HW))
    batch = random_batch(HW)
    assert relative_error(engine.backend.run(batch), torch_ref.backend.run(batch)) <= tolerance
    again = DepthEstimator(EstimatorConfig(backend="tensorrt", precision=precision, device="cuda", input_hw=HW,
                                           backend_options=options))
    assert again.backend.artefact_status == "hit"


def test_tensorrt_int8_calibrated_on_real_frames(kitti_annotated):
    _require_tensorrt()
    options = {"calibration": str(kitti_annotated / "image_02"), "calibration_frames": 3}
    engine = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="tensorrt", precision="int8",
                                            device="cuda", backend_options=options))
    from depth_attn.imageio import read_depth_png, read_rgb
    from depth_attn.metrics import evaluate_depth

    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    assert evaluate_depth(engine.estimate(rgb), gt)["abs_rel"] < 0.12  # fp32 gives 0.077


# ------------------------------------------------------------------------------- TensorRT binding logic
# STAND-IN: TensorRT cannot be installed here, so these fake engines expose the two TensorRT
# binding APIs (10.x tensors by name; 8.x bindings by index) with METER's tensors, to test how the
# backend finds its input and output BY NAME in either. Running real engines is tested above.


class _FakeTrt:
    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    @staticmethod
    def nptype(dtype):
        return dtype


class _TensorsEngine:  # the TensorRT 10.x API (also in 8.5+)
    tensors = [("depth", "output", (1, 1, 16, 48)), ("image", "input", (1, 3, 64, 192))]  # output listed first
    num_io_tensors = 2

    def get_tensor_name(self, i):
        return self.tensors[i][0]

    def get_tensor_mode(self, name):
        return dict((n, m) for n, m, _ in self.tensors)[name]

    def get_tensor_shape(self, name):
        return dict((n, s) for n, _, s in self.tensors)[name]

    def get_tensor_dtype(self, name):
        return np.float32


class _BindingsEngine:  # the TensorRT 8.x API
    names = ["image", "depth"]
    num_bindings = 2

    def get_binding_name(self, i):
        return self.names[i]

    def get_binding_shape(self, i):
        return [(1, 3, 64, 192), (1, 1, 16, 48)][i]

    def binding_is_input(self, i):
        return i == 0

    def get_binding_dtype(self, i):
        return np.float32


class _ContextV3:
    def execute_async_v3(self, stream):
        return True


class _ContextV2:
    def execute_async_v2(self, bindings, stream):
        return True


def test_tensorrt_binds_by_name_in_both_apis():
    from depth_attn.inference.backends.tensorrt_backend import TensorIO, choose_binding_api

    assert choose_binding_api(_TensorsEngine(), _ContextV3(), "auto") == "tensors"
    assert choose_binding_api(_BindingsEngine(), _ContextV2(), "auto") == "bindings"
    with pytest.raises(BackendError, match="no 'bindings' binding API"):
        choose_binding_api(_TensorsEngine(), _ContextV3(), "bindings")
    by_tensors = TensorIO(_FakeTrt, _TensorsEngine(), "tensors")
    assert by_tensors.tensors["image"] == (True, (1, 3, 64, 192), np.dtype(np.float32))
    assert by_tensors.tensors["depth"][:2] == (False, (1, 1, 16, 48))
    by_bindings = TensorIO(_FakeTrt, _BindingsEngine(), "bindings")
    assert by_bindings.binding_index == {"image": 0, "depth": 1}
    assert by_bindings.tensors == by_tensors.tensors

    class WrongNames(_BindingsEngine):
        names = ["input", "output"]

    with pytest.raises(BackendError, match="expected input 'image' and output 'depth'"):
        TensorIO(_FakeTrt, WrongNames(), "bindings")
