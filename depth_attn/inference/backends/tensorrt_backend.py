"""TensorRT 8.6 and 10.x: build an engine from the ONNX file (fp32, fp16, or int8 calibrated on real
images), serialise it, deserialise it, and run it on a CUDA stream with the input and output bound
BY NAME (``image`` -> ``depth``).

Device memory and the stream come from PyTorch (which a Jetson has from NVIDIA's wheels), so no
pycuda is needed. ``tensorrt`` is imported only when this backend is used: importing
``depth_attn.inference`` never needs it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from depth_attn.inference.backends.base import Backend, BackendError, import_runtime, runtime_version
from depth_attn.inference.calibration import (  # noqa: F401  (one calibration source for every int8 backend)
    IMAGE_SUFFIXES,
    build_calibration_batches,
    calibration_files,
    calibration_fingerprint,
    calibration_images,
)
from depth_attn.inference.export import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the tensorrt backend needs NVIDIA TensorRT's Python bindings (8.6 or 10.x) and a CUDA GPU. "
    "On a Jetson they come with JetPack 6 (`sudo apt install python3-libnvinfer`; create the virtualenv "
    "with --system-site-packages so it sees them); on an x86 machine with an NVIDIA GPU, "
    "`pip install tensorrt`. Without a GPU choose --backend onnxruntime or --backend torch "
    "(`depth-attn doctor` lists what works here)."
)
SHORT_HINT = (
    "TensorRT is not installed (JetPack: sudo apt install python3-libnvinfer; x86 with an NVIDIA GPU: "
    "pip install tensorrt)"
)
BINDING_APIS = ("auto", "tensors", "bindings")


def import_tensorrt():
    return import_runtime("tensorrt", INSTALL_HINT)


def tensorrt_version() -> Optional[str]:
    """The installed TensorRT version, or None (without importing anything heavy when absent)."""
    return runtime_version("tensorrt", import_tensorrt)


def _torch_cuda(device: str):
    import torch

    if not device.startswith("cuda"):
        raise BackendError(f"TensorRT runs on a CUDA device, not {device!r}: use --device cuda")
    if not torch.cuda.is_available():
        raise BackendError(
            "TensorRT needs a CUDA device that PyTorch can see (torch.cuda.is_available() is False); "
            "on a Jetson install NVIDIA's PyTorch wheel for JetPack"
        )
    return torch, torch.device(device)


def gpu_identity(device: str = "cuda") -> Dict[str, str]:
    """What an engine is tied to: the GPU's name and compute capability."""
    torch, dev = _torch_cuda(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return {"device_name": torch.cuda.get_device_name(index), "compute_capability": f"{major}.{minor}"}


def _major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


# ---------------------------------------------------------------------------------------------- build


def make_calibrator(trt, batches: List[np.ndarray], device: str = "cuda"):
    """An entropy calibrator (IInt8EntropyCalibrator2) over preprocessed (1, 3, H, W) batches."""
    torch, dev = _torch_cuda(device)

    class BatchCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.device_input = torch.empty(batches[0].shape, dtype=torch.float32, device=dev)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, *_):  # names: the network's input names
            if self.index >= len(batches):
                return None
            self.device_input.copy_(torch.from_numpy(np.ascontiguousarray(batches[self.index])))
            torch.cuda.synchronize(dev)
            self.index += 1
            return [int(self.device_input.data_ptr())]

        def read_calibration_cache(self):
            return None  # the engine itself is cached; calibrate afresh whenever it is rebuilt

        def write_calibration_cache(self, cache) -> None:
            return None

    return BatchCalibrator()


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    precision: str = "fp16",
    calibration_batches: Optional[List[np.ndarray]] = None,
    workspace_gb: float = 2.0,
    device: str = "cuda",
) -> None:
    """ONNX -> serialised engine file. int8 needs ``calibration_batches`` (preprocessed like inference)."""
    trt = import_tensorrt()
    torch, dev = _torch_cuda(device)
    torch.cuda.set_device(dev)
    if precision not in ("fp32", "fp16", "int8"):
        raise BackendError(f"precision must be fp32, fp16 or int8, got {precision!r}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.6 must be told.
    flags = 0 if _major(trt) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision in ("fp16", "int8"):
        if not getattr(builder, "platform_has_fast_fp16", True):
            log.warning("this GPU has no fast fp16; the engine may be slow")
        config.set_flag(trt.BuilderFlag.FP16)  # int8: layers without an int8 kernel fall back to fp16, not fp32
    calibrator = None  # must outlive the build: TensorRT calls back into it
    if precision == "int8":
        if not calibration_batches:
            raise BackendError("int8 needs calibration images: pass --calibration FOLDER_OR_BAG")
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_calibrator(trt, calibration_batches, device)
        config.int8_calibrator = calibrator
    serialized = builder.build_serialized_network(network, config)
    del calibrator
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    Path(engine_path).write_bytes(memoryview(serialized))


def load_engine(engine_path: Path):
    """Deserialise an engine; a clear error when it was built by another TensorRT or for another GPU."""
    trt = import_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise BackendError(
            f"TensorRT {trt.__version__} cannot deserialise {engine_path}: it is corrupt, or was built by another "
            "TensorRT version or for another GPU; rebuild it with `depth-attn build-engine`"
        )
    return runtime, engine


# ---------------------------------------------------------------------------------------------- run


class TensorIO:
    """Name -> (is_input, shape, numpy dtype) of an engine's inputs and outputs, from whichever API
    the TensorRT version has (10.x: tensors by name; 8.x: bindings by index, looked up by name)."""

    def __init__(self, trt, engine, api: str) -> None:
        self.api = api
        self.tensors: Dict[str, Tuple[bool, Tuple[int, ...], np.dtype]] = {}
        self.binding_index: Dict[str, int] = {}
        if api == "tensors":
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                shape = tuple(engine.get_tensor_shape(name))
                self.tensors[name] = (is_input, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
        else:
            for i in range(engine.num_bindings):
                name = engine.get_binding_name(i)
                self.binding_index[name] = i
                shape = tuple(engine.get_binding_shape(i))
                dtype = np.dtype(trt.nptype(engine.get_binding_dtype(i)))
                self.tensors[name] = (engine.binding_is_input(i), shape, dtype)
        for name, want_input in ((INPUT_NAME, True), (OUTPUT_NAME, False)):
            if name not in self.tensors or self.tensors[name][0] != want_input:
                raise BackendError(
                    f"the engine's tensors are {sorted(self.tensors)}; expected input '{INPUT_NAME}' and output "
                    f"'{OUTPUT_NAME}' (build it from `depth-attn export` output)"
                )


def choose_binding_api(engine, context, api: str) -> str:
    if api not in BINDING_APIS:
        raise BackendError(f"binding_api must be one of {', '.join(BINDING_APIS)}, got {api!r}")
    has_tensors = hasattr(engine, "num_io_tensors") and hasattr(context, "execute_async_v3")
    has_bindings = hasattr(engine, "num_bindings") and hasattr(context, "execute_async_v2")
    if api == "auto":
        api = "tensors" if has_tensors else "bindings"
    if (api == "tensors" and not has_tensors) or (api == "bindings" and not has_bindings):
        raise BackendError(f"this TensorRT has no '{api}' binding API")
    return api


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self,
        engine_path: Path,
        device: str = "cuda",
        precision: str = "fp16",
        binding_api: str = "auto",
        loaded_engine: Optional[Tuple[object, object]] = None,
        **_: object,
    ) -> None:
        """``loaded_engine``: the ``(runtime, engine)`` the cache already deserialised from
        ``engine_path`` (``engine_artefact(...).loaded``), so it is not read a second time."""
        trt = import_tensorrt()
        if device == "cpu":
            device = "cuda"  # TensorRT only runs on the GPU; the estimator's default device is cpu
        torch, self.device = _torch_cuda(device)
        torch.cuda.set_device(self.device)
        self.engine_path = Path(engine_path)
        self.precision = precision
        self.trt_version = trt.__version__
        self.runtime, self.engine = loaded_engine if loaded_engine is not None else load_engine(self.engine_path)
        self.context = self.engine.create_execution_context()
        self.api = choose_binding_api(self.engine, self.context, binding_api)
        self.io = TensorIO(trt, self.engine, self.api)
        self.stream = torch.cuda.Stream(device=self.device)
        self.buffers = {}
        for name, (_, shape, dtype) in self.io.tensors.items():
            if any(d < 0 for d in shape):
                raise BackendError(f"engine tensor {name} has a dynamic shape {shape}; export at a fixed input size")
            torch_dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
            self.buffers[name] = torch.empty(shape, dtype=torch_dtype, device=self.device)
        if self.api == "tensors":
            for name, tensor in self.buffers.items():
                self.context.set_tensor_address(name, int(tensor.data_ptr()))
            self.bindings: List[int] = []
        else:
            self.bindings = [0] * len(self.io.binding_index)
            for name, index in self.io.binding_index.items():
                self.bindings[index] = int(self.buffers[name].data_ptr())
        self.input_shape = self.io.tensors[INPUT_NAME][1]
        self._torch = torch

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        if tuple(batch.shape) != self.input_shape:
            raise BackendError(f"input shape {tuple(batch.shape)} differs from the engine's {self.input_shape}")
        with torch.cuda.stream(self.stream):
            source = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            self.buffers[INPUT_NAME].copy_(source, non_blocking=False)
            if self.api == "tensors":
                ok = self.context.execute_async_v3(self.stream.cuda_stream)
            else:
                ok = self.context.execute_async_v2(self.bindings, self.stream.cuda_stream)
            if not ok:
                raise BackendError("TensorRT failed to enqueue the engine")
            result = self.buffers[OUTPUT_NAME].float().to("cpu")
        self.stream.synchronize()
        return result.numpy()

    def describe(self) -> Dict[str, str]:
        torch = self._torch
        return {
            "backend": self.name,
            "device": f"{self.device} ({torch.cuda.get_device_name(self.device)})",
            "tensorrt": self.trt_version,
            "binding_api": self.api,
            "engine": str(self.engine_path),
        }
