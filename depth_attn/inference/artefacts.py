"""What a backend runs, and the cached artefacts made from it: the ONNX file of a model at a fixed
input size, and the TensorRT engine of that ONNX file on this GPU.

Keys (see ``cache.py``): the ONNX file by configuration, weights checksum, input shape, the output
scale where the network's graph uses one (its spec's ``output_scale_in_graph``; never the clamp, which
is applied after the network at run time), precision (fp32), exporter and opset, torch version and a
fingerprint of the model code; the engine by the ONNX file's key (which carries all of that: a cached
engine is found and loaded without reading or hashing the ONNX file, which is only exported when the
engine must be built), precision, calibration set, TensorRT version and GPU name and compute
capability; the int8 ONNX file (ONNX Runtime on the CPU) by the fp32 file's checksum, the calibration
set's checksum, the quantisation recipe and the ONNX Runtime version. Both int8 artefacts calibrate on
the same frames (``calibration.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from depth_attn.inference.cache import ArtefactCache, CacheResult, key_digest
from depth_attn.inference.calibration import build_calibration_batches, calibration_fingerprint
from depth_attn.inference.export import DEFAULT_OPSET, check_onnx, export_onnx
from depth_attn.inference.processing import preprocess_rgb
from depth_attn.models.registry import ModelConfig
from depth_attn.models.spec import network_spec
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
    output_scale: Optional[float] = None  # build_model's output_scale (None: the spec's largest depth)
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
            "precision": "fp32",
            "exporter": exporter,
            "opset": opset,
            "torch": torch.__version__,
            "model_code": model_code_fingerprint(),
            "device_name": "cpu",  # exported on the CPU; the file itself is device-independent
            **self._output_scale_key(),
        }

    def _output_scale_key(self) -> Dict[str, object]:
        spec = network_spec(self.model_config.network)
        if not spec.output_scale_in_graph:
            return {}  # the graph never sees it: one file for every clamp and scale
        return {"output_scale": float(self.output_scale or spec.max_depth_m)}


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
    onnx_key_digest: str,
    precision: str,
    tensorrt_version: str,
    gpu: Dict[str, str],
    workspace_gb: float,
    calibration: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    """``onnx_key_digest``: ``key_digest`` of the ONNX file's key (``ModelSource.onnx_key``)."""
    return {
        "kind": "tensorrt-engine",
        "onnx_key": onnx_key_digest,
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
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> CacheResult:
    """The cached TensorRT engine of ``source`` on this GPU: built once per robot, reused at start.
    ``result.loaded`` is the deserialised ``(runtime, engine)``: a cached engine is read and
    deserialised once, and the ONNX file it was built from is neither exported nor hashed."""
    from depth_attn.inference.backends import tensorrt_backend as trt_backend

    trt = trt_backend.import_tensorrt()
    cache = cache or ArtefactCache()
    if precision == "int8" and calibration is None:
        raise trt_backend.BackendError("int8 needs calibration images: give a folder of images or a bag")
    fingerprint = (
        calibration_fingerprint(calibration.source, calibration.frames)
        if precision == "int8" and calibration
        else None
    )
    key = engine_key(
        key_digest(source.onnx_key(opset, exporter)), precision, trt.__version__, trt_backend.gpu_identity(device),
        workspace_gb, fingerprint,
    )

    def build(path: Path) -> None:
        onnx_path = onnx_artefact(source, cache, opset=opset, exporter=exporter).path
        batches: Optional[List[np.ndarray]] = None
        if precision == "int8" and calibration is not None:
            batches = build_calibration_batches(
                calibration.source, lambda rgb: preprocess_rgb(rgb, source.input_hw), calibration.frames
            )
        trt_backend.build_engine(onnx_path, path, precision, batches, workspace_gb, device)

    label = f"{source.label}_{precision}"
    return cache.get_or_build("engines", label, key, "model.engine", build, trt_backend.load_engine, force)


# ------------------------------------------------------------------------------ int8 for ONNX Runtime

# Static QDQ quantisation (ONNX Runtime): uint8 activations, int8 per-channel weights, min/max
# calibration on real frames. What stays fp32, by node-name prefix: the network spec's
# ``int8_keep_fp32`` (METER: kept in fp32 the int8 network is within 0.005 of fp32, docs/benchmarks.md,
# section 7).
# Which operator types are quantised: ONNX Runtime's QLinearSoftmax and QLinearMatMul (attention)
# were 10x and 1.8x slower than their fp32 kernels on METER-tiny (profile in docs/benchmarks.md,
# section 7), so attention stays fp32 and the convolutions (and what joins them) go int8.
INT8_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "Add", "Mul", "Concat", "Relu", "Pad", "Reshape", "Transpose")
INT8_RECIPE: Dict[str, object] = {
    "format": "QDQ",
    "op_types": list(INT8_OP_TYPES),
    "activations": "QUInt8",
    "weights": "QInt8",
    "per_channel": True,
    # 7-bit weights: x86 CPUs with AVX2 but no VNNI (AMD EPYC Zen 3, older Xeons) multiply u8 x s8 with
    # VPMADDUBSW, whose int16 sums saturate with full-range weights (METER-tiny: 0.66 abs_rel instead
    # of 0.07 on an EPYC); ONNX Runtime's documented fix, harmless where VNNI or ARM's dot products run.
    "reduce_range": True,
    "calibrate_method": "MinMax",
}
INT8_CARD_KEY = "depth_attn.int8"  # the card, in the ONNX file's metadata_props


def int8_onnx_key(fp32_sha256: str, calibration: Dict[str, object], keep_fp32: Tuple[str, ...]) -> Dict[str, object]:
    import onnxruntime

    return {
        "kind": "onnx-int8",
        "onnx_sha256": fp32_sha256,
        "precision": "int8",
        "calibration": calibration,
        "recipe": INT8_RECIPE,
        "keep_fp32": list(keep_fp32),
        "onnxruntime": onnxruntime.__version__,
        "device_name": "cpu",
    }


def int8_onnx_artefact(
    source: ModelSource,
    calibration: Calibration,
    cache: Optional[ArtefactCache] = None,
    keep_fp32: Optional[Tuple[str, ...]] = None,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    force: bool = False,
) -> CacheResult:
    """The cached int8 ONNX file of ``source`` for ONNX Runtime on the CPU: the fp32 export statically
    quantised (QDQ, per-channel weights) with ranges measured on ``calibration``'s frames; the nodes
    whose names start with ``keep_fp32`` (default: the network spec's ``int8_keep_fp32``) stay fp32. Its
    card (calibration set, recipe, fp32 nodes) is in the file's metadata (``int8_card``)."""
    cache = cache or ArtefactCache()
    fp32_path = onnx_artefact(source, cache, opset=opset, exporter=exporter).path
    if keep_fp32 is None:
        keep_fp32 = network_spec(source.model_config.network).int8_keep_fp32
    keep_fp32 = tuple(keep_fp32)
    fingerprint = calibration_fingerprint(calibration.source, calibration.frames)
    key = int8_onnx_key(sha256_file(fp32_path), fingerprint, keep_fp32)

    def build(path: Path) -> None:
        batches = build_calibration_batches(
            calibration.source, lambda rgb: preprocess_rgb(rgb, source.input_hw), calibration.frames
        )
        quantize_int8(fp32_path, path, batches, keep_fp32, {"calibration": fingerprint, "model": source.label})

    def validate(path: Path) -> None:
        check_onnx(path, source.input_hw)
        int8_card(path)

    label = f"{source.label}_int8"
    return cache.get_or_build("onnx", label, key, "model.onnx", build, validate, force)


def quantize_int8(
    fp32_path: Path, out_path: Path, batches: List[np.ndarray], keep_fp32: Tuple[str, ...], card: Dict[str, object]
) -> Dict[str, object]:
    """Quantise ``fp32_path`` into ``out_path`` (ONNX Runtime ``quantize_static``) calibrated on the
    preprocessed ``batches``; returns the card written into the file's metadata."""
    import json
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from depth_attn.inference.export import INPUT_NAME

    model = onnx.load(str(fp32_path))
    fp32_nodes = [n.name for n in model.graph.node if n.name.startswith(keep_fp32) and n.op_type != "Constant"]

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.frames = iter(batches)

        def get_next(self):
            batch = next(self.frames, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(prefix="depth_attn_int8_") as work:
        quantized = Path(work) / "int8.onnx"
        quantize_static(
            str(fp32_path), str(quantized), Frames(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            reduce_range=bool(INT8_RECIPE["reduce_range"]),
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=fp32_nodes,
            op_types_to_quantize=list(INT8_OP_TYPES),
        )
        result = onnx.load(str(quantized))
    card = dict(card)
    card.update(
        recipe=INT8_RECIPE,
        calibration_frames_used=len(batches),
        keep_fp32_prefixes=list(keep_fp32),
        fp32_nodes=fp32_nodes,
        quantized_nodes=sum(1 for n in result.graph.node if n.op_type == "QuantizeLinear"),
    )
    entry = result.metadata_props.add()
    entry.key, entry.value = INT8_CARD_KEY, json.dumps(card, sort_keys=True)
    onnx.save(result, str(out_path))
    return card


def int8_card(path: Path) -> Dict[str, object]:
    """The card of an int8 ONNX file (what it was calibrated on, what stayed fp32); raises if absent."""
    import json

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == INT8_CARD_KEY:
            return json.loads(entry.value)
    raise ValueError(f"{path} has no int8 card ({INT8_CARD_KEY} in its metadata): not an int8 artefact")
