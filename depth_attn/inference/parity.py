"""Do two backends compute the same network? The measure used by the tests, `depth-attn export`
and `depth-attn doctor`.

Relative error = max |out - ref| / max |ref|: the largest deviation relative to the output's
range. (Element-wise |out - ref| / |ref| is meaningless where an untrained network's output
crosses zero.)
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from depth_attn.models.registry import ModelConfig

# Pass thresholds per precision. fp32 on CUDA may use TF32 convolutions (PyTorch's default), so
# fp32 is allowed 1e-3 there; on the CPU ONNX Runtime matches PyTorch to about 1e-6.
TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2, "int8": 2.5e-1}


def random_batch(input_hw: Tuple[int, int], seed: int = 0) -> np.ndarray:
    """A (1, 3, H, W) float32 batch in [0, 1], reproducible."""
    return np.random.default_rng(seed).random((1, 3, int(input_hw[0]), int(input_hw[1])), dtype=np.float32)


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"shapes differ: {out.shape} vs reference {ref.shape}")
    if not np.all(np.isfinite(out)):
        return float("inf")
    scale = max(float(np.max(np.abs(ref))), 1e-12)
    return float(np.max(np.abs(out - ref)) / scale)


@dataclass
class SelfTest:
    backend: str
    device: str
    precision: str
    status: str  # "pass", "fail" or "skip"
    relative_error: Optional[float] = None
    tolerance: Optional[float] = None
    latency_ms: Optional[float] = None  # median of a few runs, after one warm-up; bench measures properly
    detail: str = ""

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def candidate_backends() -> List[Tuple[str, str, str, str]]:
    """(backend, device, precision, why-skipped-or-empty) for every backend this machine could run."""
    import importlib.util

    import torch

    cuda = torch.cuda.is_available()
    no_cuda = "no CUDA device visible to PyTorch"
    candidates = [("torch", "cpu", "fp32", "")]
    candidates += [("torch", "cuda", p, "" if cuda else no_cuda) for p in ("fp32", "fp16")]
    if importlib.util.find_spec("onnxruntime") is None:
        candidates.append(("onnxruntime", "cpu", "fp32", "onnxruntime is not installed: pip install onnxruntime"))
    else:
        import onnxruntime

        candidates.append(("onnxruntime", "cpu", "fp32", ""))
        has_cuda_ep = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        why = "" if has_cuda_ep else "this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)"
        why = why if cuda else no_cuda
        candidates.append(("onnxruntime", "cuda", "fp32", why))
    candidates.append(("openvino", "cpu", "fp32", openvino_unavailable()))
    from depth_attn.inference.backends.tensorrt_backend import SHORT_HINT, tensorrt_version

    trt_why = "" if tensorrt_version() and cuda else (SHORT_HINT if not tensorrt_version() else no_cuda)
    candidates += [("tensorrt", "cuda", p, trt_why) for p in ("fp32", "fp16")]
    return candidates


def openvino_unavailable() -> str:
    """Why the openvino backend cannot run here, or "" where it can."""
    import platform

    from depth_attn.inference.backends.openvino_backend import openvino_version

    if openvino_version() is None:
        machine = platform.machine().lower()
        if machine in ("x86_64", "amd64"):
            return "OpenVINO is not installed: pip install openvino"
        return f"OpenVINO is not installed (pinned for x86_64 CPUs only; this is {machine})"
    return ""


def self_test(
    model: ModelConfig,
    weights: str = "auto",
    input_hw: Optional[Tuple[int, int]] = None,
    candidates: Optional[List[Tuple[str, str, str, str]]] = None,
    runs: int = 5,
    dataset: str = "kitti",
    allow_partial_weights: bool = False,
) -> List[SelfTest]:
    """Every candidate backend against PyTorch fp32 on the CPU, on the same random input."""
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    def config(backend: str, device: str, precision: str) -> EstimatorConfig:
        return EstimatorConfig(model=model, weights=weights, dataset=dataset,
                               allow_partial_weights=allow_partial_weights, backend=backend, device=device,
                               precision=precision, input_hw=input_hw)

    reference_estimator = DepthEstimator(config("torch", "cpu", "fp32"))
    batch = random_batch(reference_estimator.input_hw)
    reference = reference_estimator.backend.run(batch)
    results = []
    for backend, device, precision, skip_reason in candidates or candidate_backends():
        if skip_reason:
            results.append(SelfTest(backend, device, precision, "skip", detail=skip_reason))
            continue
        tolerance = TOLERANCE[precision]
        try:
            if (backend, device, precision) == ("torch", "cpu", "fp32"):
                estimator = reference_estimator
            else:
                estimator = DepthEstimator(config(backend, device, precision))
            out = estimator.backend.run(batch)
            error = relative_error(out, reference)
            times = []
            for _ in range(max(runs, 1)):
                start = time.perf_counter()
                estimator.backend.run(batch)
                times.append((time.perf_counter() - start) * 1e3)
            status = "pass" if error <= tolerance else "fail"
            detail = "" if status == "pass" else f"relative error {error:.2e} > {tolerance:.0e}"
            artefact = getattr(estimator.backend, "artefact_status", "-")
            if artefact != "-" and status == "pass":
                detail = f"artefact {artefact}"
            latency = float(np.median(times))
            results.append(SelfTest(backend, device, precision, status, error, tolerance, latency, detail))
        except Exception as exc:  # the point is to report every failure, whatever it is
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
            results.append(SelfTest(backend, device, precision, "fail", None, tolerance, None,
                                    f"{type(exc).__name__}: {exc}{where}"))
    return results
