"""What the depth node's configure does: its ``DepthEstimator`` built from its settings, and the
errors that say what would fix a failure (a missing checkpoint, a backend that cannot run here)."""

from __future__ import annotations

from typing import Optional, Tuple

from depth_attn.ros.depth_params import Settings, parse_backend_options


def resolve_backend(s: Settings, logger=None) -> Tuple[str, str]:
    """The backend that will run (``auto`` resolved: ``backends.choose_backend``, logged with why) and,
    for auto, ``"name: why"`` (the node's /diagnostics ``backend_choice``); ``(backend, "")`` otherwise."""
    if s.backend != "auto":
        return s.backend, ""
    from depth_attn.inference.backends import choose_backend

    backend, why = choose_backend(s.device)
    if logger is not None:
        logger.info(f"backend auto: {backend} ({why})")
    return backend, f"{backend}: {why}"


def build_estimator(s: Settings, node_name: str):
    """The estimator the settings describe; a RuntimeError that names the fix where it cannot be built."""
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    config = EstimatorConfig(
        model=s.model, weights=s.weights or None,
        dataset=s.dataset, allow_partial_weights=s.allow_partial_weights,
        backend=s.backend, precision=s.precision, device=s.device,
        input_hw=(s.input_height, s.input_width) if s.input_width else None,
        max_depth=s.max_depth or None, backend_options=parse_backend_options(s.backend_options),
        fit_input_to_camera=s.fit_input_to_camera,
    )
    try:
        return DepthEstimator(config)
    except Exception as exc:
        from depth_attn.weights import WeightsError

        if isinstance(exc, WeightsError):  # another backend would not help: say what would
            text = str(exc).rstrip(".")
            fix = "" if ("weights import" in text or "Fix:" in text) else (
                ". Fix: weights:=auto (or the checkpoint that covers this configuration, see `depth-attn weights "
                "list`), or bring a file in with `depth-attn weights import NAME FILE`")
            raise RuntimeError(
                f"{node_name}: cannot load weights {s.weights!r} for {s.model.name}: "
                f"{text}{fix}."
            ) from exc
        raise backend_error(s, node_name, exc) from exc


def backend_error(s: Settings, node_name: str, exc: Exception, backend: Optional[str] = None) -> RuntimeError:
    """The network cannot run on the chosen backend here: say so and name the ones that might."""
    from depth_attn.inference.parity import openvino_unavailable

    backend = backend or s.backend
    usable = ("onnxruntime", "torch") if openvino_unavailable() else ("openvino", "onnxruntime", "torch")
    alternatives = [b for b in usable if b != backend]
    chosen = f"{backend} (auto)" if s.backend == "auto" and backend != "auto" else backend
    return RuntimeError(
        f"{node_name}: cannot start {s.model.name} on backend {chosen!r} "
        f"({s.precision}, {s.device}): {exc}. Fix that, or start the node on another backend: "
        f"backend:={' or backend:='.join(alternatives)}."
    )


def check_backend_available(s: Settings, node_name: str, backend: Optional[str] = None) -> None:
    """What can fail at once for a backend built in the background (no TensorRT, no GPU)."""
    backend = backend or s.backend
    if backend != "tensorrt":
        return
    try:
        from depth_attn.inference.backends import tensorrt_backend

        tensorrt_backend.import_tensorrt()
        tensorrt_backend.gpu_identity(s.device)
    except Exception as exc:
        raise backend_error(s, node_name, exc, backend) from exc
