"""What a backend runs, and the cached artefacts made from it: the ONNX file of a model at a fixed
input size, and the TensorRT engine of that ONNX file on this GPU.

Keys (see ``cache.py``): the ONNX file by configuration, weights checksum, input shape, max depth,
precision (fp32), exporter and opset, torch version and a fingerprint of the model code; the
engine by the ONNX file's checksum (which carries all of that), precision, calibration set,
TensorRT version and GPU name and compute capability.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from depth_attn.inference.cache import ArtefactCache, CacheResult
from depth_attn.inference.export import DEFAULT_OPSET, check_onnx, export_onnx
from depth_attn.inference.preprocess import preprocess_rgb
from depth_attn.models.registry import ModelConfig
from depth_attn.paths import PACKAGE_ROOT, sha256_file

UNTRAINED = "untrained-seed0"  # untrained networks are initialised from a fixed seed, so they are reproducible


def model_code_fingerprint() -> str:
    """A digest of the model source files: an ONNX file exported from other code is another entry."""
    digest = hashlib.sha256()
    for path in sorted((PACKAGE_ROOT / "models").rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class ModelSource:
    """One network as the estimator sees it: configuration, weights and input size, and how to
    build the PyTorch model (built at most once, and only when something needs it)."""

    model_config: ModelConfig
    input_hw: Tuple[int, int]
    factory: Callable[[], nn.Module]
    weights_sha256: str = UNTRAINED
    max_depth: Optional[float] = None  # what build_model was given (it matters for the Swin networks)
    _model: Optional[nn.Module] = field(default=None, repr=False)

    def model(self) -> nn.Module:
        if self._model is None:
            self._model = self.factory()
        return self._model

    @property
    def label(self) -> str:
        return f"{self.model_config.name}_{self.input_hw[0]}x{self.input_hw[1]}"

    def onnx_key(self, opset: int, exporter: str) -> Dict[str, object]:
        return {
            "kind": "onnx",
            "config": self.model_config.name,
            "weights_sha256": self.weights_sha256,
            "input_shape": [1, 3, int(self.input_hw[0]), int(self.input_hw[1])],
            "max_depth": self.max_depth,
            "precision": "fp32",
            "exporter": exporter,
            "opset": opset,
            "torch": torch.__version__,
            "model_code": model_code_fingerprint(),
            "device_name": "cpu",  # exported on the CPU; the file itself is device-independent
        }


def onnx_artefact(
    source: ModelSource,
    cache: Optional[ArtefactCache] = None,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    force: bool = False,
) -> CacheResult:
    """The cached ONNX file of ``source``, exported now if missing or unusable."""
    cache = cache or ArtefactCache()

    def build(path: Path) -> None:
        export_onnx(source.model(), path, source.input_hw, opset=opset, exporter=exporter)

    def validate(path: Path) -> None:
        check_onnx(path, source.input_hw)

    key = source.onnx_key(opset, exporter)
    return cache.get_or_build("onnx", source.label, key, "model.onnx", build, validate, force)


@dataclass(frozen=True)
class Calibration:
    """int8 calibration frames: a folder of images or a rosbag2 recording, the first ``frames``."""

    source: Path
    frames: int = 100


def engine_key(
    onnx_sha256: str,
    precision: str,
    tensorrt_version: str,
    gpu: Dict[str, str],
    workspace_gb: float,
    calibration: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    return {
        "kind": "tensorrt-engine",
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "tensorrt": tensorrt_version,
        "device_name": gpu["device_name"],
        "compute_capability": gpu["compute_capability"],
        "workspace_gb": workspace_gb,
        "calibration": calibration,
    }


def engine_artefact(
    source: ModelSource,
    precision: str,
    calibration: Optional[Calibration] = None,
    device: str = "cuda",
    workspace_gb: float = 2.0,
    cache: Optional[ArtefactCache] = None,
    force: bool = False,
) -> CacheResult:
    """The cached TensorRT engine of ``source`` on this GPU: built once per robot, reused at start."""
    from depth_attn.inference.backends import tensorrt_backend as trt_backend

    trt = trt_backend.import_tensorrt()
    cache = cache or ArtefactCache()
    onnx_path = onnx_artefact(source, cache).path
    if precision == "int8" and calibration is None:
        raise trt_backend.BackendError("int8 needs calibration images: give a folder of images or a bag")
    fingerprint = (
        trt_backend.calibration_fingerprint(calibration.source, calibration.frames)
        if precision == "int8" and calibration
        else None
    )
    key = engine_key(
        sha256_file(onnx_path), precision, trt.__version__, trt_backend.gpu_identity(device), workspace_gb, fingerprint
    )

    def build(path: Path) -> None:
        batches: Optional[List[np.ndarray]] = None
        if precision == "int8" and calibration is not None:
            batches = trt_backend.build_calibration_batches(
                calibration.source, lambda rgb: preprocess_rgb(rgb, source.input_hw), calibration.frames
            )
        trt_backend.build_engine(onnx_path, path, precision, batches, workspace_gb, device)

    def validate(path: Path) -> None:
        trt_backend.load_engine(path)

    label = f"{source.label}_{precision}"
    return cache.get_or_build("engines", label, key, "model.engine", build, validate, force)
