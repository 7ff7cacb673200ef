"""ONNX Runtime: the CPU execution provider everywhere; CUDA and TensorRT providers when present."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from depth_attn.inference.backends.base import Backend, BackendError, flag, import_runtime
from depth_attn.inference.export import INPUT_NAME, OUTPUT_NAME

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def import_onnxruntime():
    return import_runtime(
        "onnxruntime",
        "the onnxruntime backend needs ONNX Runtime: `pip install onnxruntime` (CPU) or "
        "`pip install onnxruntime-gpu` (CUDA); on a Jetson use the JetPack wheel from "
        "https://elinux.org/Jetson_Zoo#ONNX_Runtime",
    )


def _device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


def choose_providers(device: str, precision: str, providers: Optional[Sequence[str]], available: Sequence[str]) -> List:
    """ONNX Runtime provider list (with options) for a device/precision; a clear error when the
    wanted provider is not in this ONNX Runtime build."""
    if providers is None:
        providers = ("cuda", "cpu") if device.startswith("cuda") else ("cpu",)
    chosen: List = []
    for short in providers:
        full = PROVIDER_NAMES.get(short, short)
        if full not in available:
            raise BackendError(
                f"ONNX Runtime provider {full} is not available (this build has {', '.join(available)}); "
                + (
                    "install onnxruntime-gpu for CUDA/TensorRT, or use --device cpu"
                    if full != "CPUExecutionProvider"
                    else "reinstall onnxruntime"
                )
            )
        if full == "CUDAExecutionProvider":
            chosen.append((full, {"device_id": _device_index(device)}))
        elif full == "TensorrtExecutionProvider":
            chosen.append(
                (
                    full,
                    {
                        "device_id": _device_index(device),
                        "trt_fp16_enable": precision == "fp16",
                        "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(_ort_trt_cache_dir()),
                    },
                )
            )
        else:
            chosen.append(full)
    names = [p[0] if isinstance(p, tuple) else p for p in chosen]
    if precision == "fp16" and "TensorrtExecutionProvider" not in names:
        raise BackendError(
            "fp16 with ONNX Runtime needs its TensorRT provider (backend option providers=tensorrt,cuda,cpu); "
            "use precision fp32, or the torch (CUDA) or tensorrt backend for fp16"
        )
    if precision == "int8" and names != ["CPUExecutionProvider"]:
        raise BackendError(
            "int8 with ONNX Runtime runs on the CPU provider (a statically quantised QDQ file, calibrated on "
            "frames: backend option calibration); on a GPU build a TensorRT int8 engine "
            "(`depth-attn build-engine --precision int8`)"
        )
    return chosen


def _ort_trt_cache_dir() -> Path:
    from depth_attn.inference.cache import artefacts_dir

    path = artefacts_dir() / "ort_trt_cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: Path,
        device: str = "cpu",
        precision: str = "fp32",
        providers: Optional[Sequence[str]] = None,
        intra_op_threads: Optional[int] = None,
        inter_op_threads: Optional[int] = None,
        optimization: str = "all",
        spinning: bool = False,
        **_: object,
    ) -> None:
        ort = import_onnxruntime()
        if optimization not in OPTIMIZATION_LEVELS:
            raise BackendError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, got {optimization!r}")
        if isinstance(providers, str):
            providers = [p.strip() for p in providers.split(",") if p.strip()]
        self.onnx_path = Path(onnx_path)
        self.device = device
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of convolutions: no branch parallelism
        # 0 = ONNX Runtime's default, one thread per physical core; measured fastest on the CPUs we ran.
        options.intra_op_num_threads = int(intra_op_threads or 0)
        options.inter_op_num_threads = int(inter_op_threads or 1)
        # Worker threads that busy-wait between runs steal the CPU from everything else on a robot
        # (the ROS executor, the camera driver, PyTorch); measured slower here when the CPU is shared.
        self.spinning = flag(spinning)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        provider_list = choose_providers(device, precision, providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=provider_list)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime cannot load {self.onnx_path}: {type(exc).__name__}: {exc}") from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise BackendError(
                f"{self.onnx_path} has inputs {list(inputs)} and outputs {outputs}; expected "
                f"'{INPUT_NAME}' -> '{OUTPUT_NAME}' (export it with `depth-attn export`)"
            )
        self.precision = precision
        self.int8_card: Optional[str] = self.session.get_modelmeta().custom_metadata_map.get("depth_attn.int8")
        if precision == "int8" and self.int8_card is None:
            raise BackendError(
                f"{self.onnx_path} is not an int8 file made by depth_attn (no int8 card in its metadata): quantise it "
                "with `depth-attn export --precision int8 --calibration FOLDER_OR_BAG` (or leave onnx_path unset and "
                "give the backend option calibration)"
            )
        self.input_shape = tuple(inputs[INPUT_NAME].shape)
        self.providers = self.session.get_providers()
        self.intra_op_threads = options.intra_op_num_threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        if tuple(batch.shape) != self.input_shape:
            raise BackendError(f"input shape {tuple(batch.shape)} differs from the exported {self.input_shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        # session.run returns host memory: the device has finished when it returns.
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    def describe(self) -> Dict[str, str]:
        import onnxruntime

        return {
            "backend": self.name,
            "device": self.device,
            "providers": ",".join(self.providers),
            "onnxruntime": onnxruntime.__version__,
            "onnx": str(self.onnx_path),
            "intra_op_threads": str(self.intra_op_threads),
            "spinning": str(self.spinning),
            "quantized": "int8 (QDQ, calibrated)" if self.int8_card else "no",
        }
