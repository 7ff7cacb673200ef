"""The openvino backend (issue 28), with the real OpenVINO: the same cached ONNX file as ONNX Runtime,
compiled once into OpenVINO's model cache inside the artefact cache; parity with PyTorch on the four
shipped METER-tiny checkpoints and on PixelFormer-tiny meta; and what ``auto`` picks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.inference.backends import BackendError, choose_backend, create_backend
from depth_attn.inference.backends import openvino_backend as ov_backend
from depth_attn.inference.backends import tensorrt_backend as trt_backend
from depth_attn.inference.cache import ArtefactCache
from depth_attn.inference.parity import random_batch, relative_error
from depth_attn.models import ModelConfig

pytest.importorskip("openvino", reason="OpenVINO is not installed (pinned for x86_64 only)")

PARITY = 1e-4  # OpenVINO fp32 against PyTorch fp32, max |out - ref| / max |ref|
SMALL_HW = (64, 192)


def torch_reference(config: EstimatorConfig, batch: np.ndarray) -> np.ndarray:
    return DepthEstimator(EstimatorConfig(**{**config.__dict__, "backend": "torch"})).backend.run(batch)


@pytest.mark.parametrize("variant", ["base", "meta", "pyra", "moh"])
def test_shipped_meter_checkpoints_match_pytorch(variant):
    config = EstimatorConfig(model=ModelConfig(variant=variant), weights="auto", backend="openvino")
    estimator = DepthEstimator(config)
    assert estimator.weights_name and estimator.weights_name.startswith("meter-xxs")  # the shipped checkpoint
    batch = random_batch(estimator.input_hw, seed=1)
    out = estimator.backend.run(batch)
    assert relative_error(out, torch_reference(config, batch)) <= PARITY
    info = estimator.describe()
    assert info["backend"] == "openvino" and info["precision"] == "fp32" and info["quantized"] == "no"
    # The one export: ONNX Runtime starts from the same cached ONNX file (a hit), not a second export.
    ort = DepthEstimator(EstimatorConfig(model=ModelConfig(variant=variant), weights="auto", backend="onnxruntime"))
    assert ort.backend.onnx_path == estimator.backend.onnx_path and ort.backend.artefact_status == "hit"


def test_pixelformer_tiny_meta_matches_pytorch():
    config = EstimatorConfig(model=ModelConfig("pixelformer", "tiny", "meta"), backend="openvino", input_hw=SMALL_HW)
    estimator = DepthEstimator(config)
    batch = random_batch(SMALL_HW, seed=2)
    assert relative_error(estimator.backend.run(batch), torch_reference(config, batch)) <= PARITY


def test_the_second_start_loads_the_compiled_model_from_the_cache():
    config = EstimatorConfig(input_hw=SMALL_HW, backend="openvino", backend_options={"threads": 1})
    cold = DepthEstimator(config)
    assert not cold.backend.loaded_from_cache and cold.backend.artefact_status == "built (not cached yet); compiled now"
    folder = cold.backend.model_cache_dir
    assert folder is not None and folder.parent.parent == ArtefactCache().root  # inside the artefact cache
    assert list(folder.glob("*.blob"))
    warm = DepthEstimator(config)
    assert warm.backend.loaded_from_cache and warm.backend.artefact_status == "hit; compiled blob loaded"
    assert warm.describe()["compiled"].startswith("loaded from cache")
    batch = random_batch(SMALL_HW)
    np.testing.assert_array_equal(warm.backend.run(batch), cold.backend.run(batch))
    # `depth-attn cache list` sees the folder.
    entries = ArtefactCache().entries("openvino")
    assert [e.folder for e in entries] == [folder]
    assert entries[0].key["openvino"] == ov_backend.openvino_version()
    # Threads and the hint are applied when the blob is loaded: the same blob serves them.
    other = DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino",
                                           backend_options={"threads": 2, "hint": "throughput"}))
    assert other.backend.loaded_from_cache and other.backend.model_cache_dir == folder
    assert other.backend.threads == 2 and other.describe()["hint"] == "throughput"
    assert len(list(folder.glob("*.blob"))) == 1
    # Another network (another ONNX key) is another folder.
    meta = DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, model=ModelConfig(variant="meta"), backend="openvino"))
    assert meta.backend.model_cache_dir != folder


def test_backend_options_reach_openvino():
    config = EstimatorConfig(input_hw=SMALL_HW, backend="openvino",
                             backend_options={"threads": "2", "hint": "throughput", "streams": "2",
                                              "pinning": "false", "model_cache": "false"})
    backend = DepthEstimator(config).backend
    assert (backend.threads, backend.streams, backend.model_cache_dir) == (2, 2, None)
    assert backend.compiled.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
    assert backend.compiled.get_property("ENABLE_CPU_PINNING") is False
    default = DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino")).backend
    assert default.pinning is False and default.describe()["pinning"] == "False"  # a shared CPU: not pinned
    assert backend.describe()["model_cache"] == "off"
    with pytest.raises(BackendError, match="hint must be one of"):
        DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino", backend_options={"hint": "fastest"}))
    with pytest.raises(BackendError, match="fp32 or int8"):
        DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino", precision="fp16"))
    with pytest.raises(BackendError, match="needs calibration frames"):
        DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino", precision="int8"))


def test_a_read_only_cache_still_starts(tmp_path, monkeypatch):
    """A robot's read-only image: an ONNX file given by path and a cache folder that cannot be written
    compile at every start, with a warning, instead of failing."""
    source = DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="onnxruntime")).backend.onnx_path
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        backend = ov_backend.OpenVINOBackend(source, model_cache_dir=locked / "openvino" / "x")
        if backend.model_cache_dir is None:  # not root: the folder really cannot be made
            assert backend.describe()["model_cache"] == "off"
        assert backend.run(random_batch(SMALL_HW)).shape[:2] == (1, 1)
    finally:
        locked.chmod(0o700)


def test_int8_runs_the_calibrated_qdq_file_of_onnx_runtime():
    from depth_attn.paths import data_dir

    calibration = {"calibration": str(data_dir() / "kitti" / "unlabelled" / "drive_a_268"), "calibration_frames": 4}
    config = dict(weights="meter-xxs-kitti", precision="int8", backend_options=calibration)
    ov = DepthEstimator(EstimatorConfig(backend="openvino", **config))
    ort = DepthEstimator(EstimatorConfig(backend="onnxruntime", **config))
    assert ov.backend.onnx_path == ort.backend.onnx_path  # one quantised file for both runtimes
    assert ov.describe()["quantized"].startswith("int8")
    batch = random_batch(ov.input_hw, seed=3)
    fp32 = torch_reference(EstimatorConfig(weights="meter-xxs-kitti"), batch)
    out = ov.backend.run(batch)
    assert 0 < relative_error(out, fp32) < 0.25  # another network, close to fp32
    with pytest.raises(BackendError, match="no int8 card"):
        ov_backend.OpenVINOBackend(DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="onnxruntime"))
                                   .backend.onnx_path, precision="int8")


def test_auto_picks_openvino_on_this_x86_cpu():
    import platform

    chosen, why = choose_backend("cpu")
    if platform.machine() == "x86_64" and trt_backend.tensorrt_version() is None:
        assert chosen == "openvino" and "OpenVINO" in why and "TensorRT is not installed" in why
    backend = create_backend("auto", lambda: None, {"device": "cpu"}, DepthEstimator(
        EstimatorConfig(input_hw=SMALL_HW, backend="onnxruntime")).source)
    assert backend.name == chosen and backend.auto_choice == f"{chosen}: {why}"


def test_auto_falls_back_in_order(monkeypatch):
    """Stand-ins for machines this one is not: TensorRT with a CUDA GPU (a Jetson), and an x86 CPU
    without OpenVINO. Only the facts choose_backend reads are replaced."""
    import torch

    monkeypatch.setattr(ov_backend, "openvino_version", lambda: None)
    assert choose_backend("cpu")[0] == "onnxruntime"
    assert "OpenVINO is not installed" in choose_backend("cpu")[1]
    monkeypatch.setattr(trt_backend, "tensorrt_version", lambda: "10.3.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Orin (stand-in)")
    chosen, why = choose_backend("cpu")
    assert chosen == "tensorrt" and "TensorRT 10.3.0" in why


def test_cache_list_shows_the_openvino_folder(capsys):
    from depth_attn.cli import main

    DepthEstimator(EstimatorConfig(input_hw=SMALL_HW, backend="openvino"))
    assert main(["cache", "list"]) == 0
    assert "openvino" in capsys.readouterr().out
    meta = json.loads(next(ArtefactCache().root.glob("openvino/*/meta.json")).read_text())
    assert meta["kind"] == "openvino" and meta["filename"].endswith(".blob")


def test_the_node_on_backend_auto_runs_openvino_and_says_why(kitti_annotated):
    """The depth node over real rclpy and DDS with backend auto: it picks what choose_backend says
    (OpenVINO here), says why on /diagnostics, and its depth equals PyTorch's for the same frame."""
    pytest.importorskip("rclpy")
    import time

    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from ros_harness import Probe, RosSession, unique, wait_until
    from sensor_msgs.msg import CameraInfo, Image
    from test_ros_depth_node import FRAME_ID, kitti_camera_info

    from depth_attn.imageio import read_rgb
    from depth_attn.ros import convert
    from depth_attn.ros.depth_node import DepthNode

    chosen, why = choose_backend("cpu")
    session = RosSession()
    try:
        ns = "/" + unique("auto")
        node = session.add(DepthNode(unique("depth_node"), context=session.context, namespace=ns, parameter_overrides=[
            Parameter("backend", value="auto"), Parameter("weights", value="meter-xxs-kitti"),
            Parameter("diagnostics_period", value=0.2)]))
        assert node.estimator.backend.name == chosen and node.backend_name == chosen
        probe = session.add(Probe(session.context, ns))
        probe.listen(Image, "depth/image_rect")
        probe.listen(DiagnosticArray, "/diagnostics")
        probe.publisher(Image, "image")
        probe.publisher(CameraInfo, "camera_info")
        assert wait_until(lambda: node.sub_image.get_publisher_count() > 0
                          and probe.count_subscribers(f"{ns}/depth/image_rect") > 0, 20.0)
        rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
        stamp = 1_700_000_000_000_000_000
        info = kitti_camera_info(kitti_annotated, stamp)
        deadline = time.monotonic() + 30.0
        while not probe.received["depth/image_rect"] and time.monotonic() < deadline:
            probe.publishers_["camera_info"].publish(info)
            probe.publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8", convert.make_header(FRAME_ID, stamp)))
            wait_until(lambda: bool(probe.received["depth/image_rect"]), 1.0)
        assert probe.received["depth/image_rect"], "no depth from the node"
        depth = convert.image_to_depth(probe.received["depth/image_rect"][-1])
        reference = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="torch")).estimate(
            rgb, intrinsics=convert.camera_info_to_intrinsics(info))
        assert depth.shape == reference.shape
        finite = np.isfinite(reference)
        assert np.array_equal(finite, np.isfinite(depth))
        assert np.max(np.abs(depth[finite] - reference[finite])) < 1e-3 * np.max(reference[finite])

        def choice_reported() -> bool:
            for array in reversed(probe.received["/diagnostics"]):
                for status in array.status:
                    if status.name.startswith(node.get_name()):
                        values = {kv.key: kv.value for kv in status.values}
                        return values["backend"] == chosen and values["backend_choice"] == f"{chosen}: {why}"
            return False

        assert wait_until(choice_reported, 10.0), "diagnostics do not say what auto chose"
        assert node.estimator.describe()["auto_choice"] == f"{chosen}: {why}"
    finally:
        session.close()
