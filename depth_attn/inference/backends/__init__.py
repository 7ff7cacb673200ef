"""Backends behind one small interface: a float32 NCHW batch in, the network's raw output out.

Options (``EstimatorConfig.backend_options``, node parameter ``backend_options``), besides
``device`` and ``precision``:

- torch: ``channels_last`` (default: on for CUDA, and for METER on the CPU), ``compile``
  (torch.compile), ``cuda_graphs``, ``threads`` (torch.set_num_threads: process-wide).
- onnxruntime: ``onnx_path`` (default: the cached export), ``providers`` (e.g. "tensorrt,cuda,cpu"),
  ``intra_op_threads`` (0 = one per physical core), ``inter_op_threads``, ``optimization``
  (disable/basic/extended/all), ``spinning`` (busy-waiting worker threads, default off),
  ``opset``, ``exporter``; with precision int8 (CPU provider): ``calibration`` (folder of images or a
  bag, required) and ``calibration_frames`` (default 100), the statically quantised file in the cache.
- tensorrt: ``engine_path`` (default: the cached engine), ``calibration`` (folder of images or a
  bag, for int8), ``calibration_frames``, ``workspace_gb``, ``binding_api`` (auto/tensors/bindings),
  ``rebuild``.

Only the torch backend is imported eagerly; onnxruntime and tensorrt when chosen.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from torch import nn

from depth_attn.inference.backends.base import BACKENDS, PRECISIONS, Backend, BackendError, flag

_ORT_ARTEFACT_OPTIONS = ("opset", "exporter", "calibration", "calibration_frames", "rebuild")
_TRT_ARTEFACT_OPTIONS = ("calibration", "calibration_frames", "workspace_gb", "rebuild")


def create_backend(
    name: str,
    model_factory: Callable[[], nn.Module],
    options: Dict,
    source: Optional[object] = None,
) -> Backend:
    """``model_factory`` builds the PyTorch model (with weights loaded, eval mode) on demand, so a
    backend that finds a cached artefact never has to build it. ``source`` (an
    ``artefacts.ModelSource``) is what the ONNX file and the engine are made from and keyed by;
    without it, ``onnx_path``/``engine_path`` must be given."""
    options = dict(options)
    if name == "torch":
        from depth_attn.inference.backends.torch_backend import TorchBackend

        return TorchBackend(model_factory(), **options)
    if name == "onnxruntime":
        from depth_attn.inference.backends.onnxruntime_backend import (
            OnnxRuntimeBackend,
            choose_providers,
            import_onnxruntime,
        )

        # Clear errors (not installed, no such provider, precision) before any export work.
        providers = options.get("providers")
        if isinstance(providers, str):
            providers = [p.strip() for p in providers.split(",") if p.strip()]
        choose_providers(str(options.get("device", "cpu")), str(options.get("precision", "fp32")), providers,
                         import_onnxruntime().get_available_providers())
        artefact_options = {k: options.pop(k) for k in _ORT_ARTEFACT_OPTIONS if k in options}
        status = "given"
        if not options.get("onnx_path"):
            result = _onnx_for(source, artefact_options, str(options.get("precision", "fp32")))
            options["onnx_path"], status = result.path, result.status
        backend = OnnxRuntimeBackend(**options)
        backend.artefact_status = status
        return backend
    if name == "tensorrt":
        from depth_attn.inference.backends.tensorrt_backend import TensorRTBackend, import_tensorrt

        import_tensorrt()
        artefact_options = {k: options.pop(k) for k in _TRT_ARTEFACT_OPTIONS if k in options}
        options.setdefault("device", "cuda")
        if options["device"] == "cpu":
            options["device"] = "cuda"
        status = "given"
        if not options.get("engine_path"):
            result = _engine_for(source, options, artefact_options)
            options["engine_path"], status = result.path, result.status
            options["loaded_engine"] = result.loaded  # deserialised once, by the cache's load check
        backend = TensorRTBackend(**options)
        backend.artefact_status = status
        return backend
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _need_source(source: Optional[object], what: str) -> object:
    if source is None:
        raise BackendError(f"no {what} given and nothing to build it from (pass the model source)")
    return source


def _onnx_for(source, artefact_options: Dict, precision: str = "fp32"):
    from depth_attn.inference.artefacts import onnx_artefact
    from depth_attn.inference.export import DEFAULT_OPSET

    opset = int(artefact_options.get("opset", DEFAULT_OPSET))
    exporter = str(artefact_options.get("exporter", "auto"))
    if precision == "int8":
        from pathlib import Path

        from depth_attn.inference.artefacts import Calibration, int8_onnx_artefact

        if not artefact_options.get("calibration"):
            raise BackendError(
                "int8 with ONNX Runtime needs calibration frames: backend option calibration=FOLDER_OR_BAG "
                "(real frames of the robot's camera; `depth-attn export --precision int8 --calibration ...`)"
            )
        calibration = Calibration(Path(str(artefact_options["calibration"])),
                                  int(artefact_options.get("calibration_frames", 100)))
        return int8_onnx_artefact(_need_source(source, "onnx_path"), calibration, opset=opset, exporter=exporter,
                                  force=flag(artefact_options.get("rebuild", False)))
    return onnx_artefact(_need_source(source, "onnx_path"), opset=opset, exporter=exporter)


def _engine_for(source, options: Dict, artefact_options: Dict):
    from pathlib import Path

    from depth_attn.inference.artefacts import Calibration, engine_artefact

    calibration = None
    if artefact_options.get("calibration"):
        frames = int(artefact_options.get("calibration_frames", 100))
        calibration = Calibration(Path(str(artefact_options["calibration"])), frames)
    return engine_artefact(
        _need_source(source, "engine_path"),
        precision=str(options.get("precision", "fp16")),
        calibration=calibration,
        device=str(options["device"]),
        workspace_gb=float(artefact_options.get("workspace_gb", 2.0)),
        force=flag(artefact_options.get("rebuild", False)),
    )


__all__ = ["BACKENDS", "PRECISIONS", "Backend", "BackendError", "create_backend"]
