"""What the depth node's configure does: its ``DepthEstimator`` built from its settings, and the
errors that say what would fix a failure (a missing checkpoint, a backend that cannot run here)."""

from __future__ import annotations

from depth_attn.ros.depth_params import Settings, parse_backend_options


def build_estimator(s: Settings, node_name: str):
    """The estimator the settings describe; a RuntimeError that names the fix where it cannot be built."""
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    config = EstimatorConfig(
        network=s.network, size=s.size, variant=s.variant, placement=s.placement, weights=s.weights or None,
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
                f"{node_name}: cannot load weights {s.weights!r} for {s.network}/{s.size}/{s.variant}: "
                f"{text}{fix}."
            ) from exc
        raise backend_error(s, node_name, exc) from exc


def backend_error(s: Settings, node_name: str, exc: Exception) -> RuntimeError:
    """The network cannot run on the chosen backend here: say so and name the ones that might."""
    alternatives = [b for b in ("onnxruntime", "torch") if b != s.backend]
    return RuntimeError(
        f"{node_name}: cannot start {s.network}/{s.size}/{s.variant} on backend {s.backend!r} "
        f"({s.precision}, {s.device}): {exc}. Fix that, or start the node on another backend: "
        f"backend:={' or backend:='.join(alternatives)}."
    )


def check_backend_available(s: Settings, node_name: str) -> None:
    """What can fail at once for a backend built in the background (no TensorRT, no GPU)."""
    if s.backend != "tensorrt":
        return
    try:
        from depth_attn.inference.backends import tensorrt_backend

        tensorrt_backend.import_tensorrt()
        tensorrt_backend.gpu_identity(s.device)
    except Exception as exc:
        raise backend_error(s, node_name, exc) from exc
