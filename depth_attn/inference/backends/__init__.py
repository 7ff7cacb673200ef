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
- openvino (CPU): ``onnx_path`` (default: the cached export, the same file ONNX Runtime runs),
  ``threads`` (INFERENCE_NUM_THREADS, default one per physical core), ``hint`` (latency/throughput),
  ``streams`` (NUM_STREAMS), ``pinning`` (ENABLE_CPU_PINNING, default off: shared CPUs), ``model_cache``
  (OpenVINO's compiled-model cache in the artefact cache, default on), ``opset``, ``exporter``; with
  precision int8: ``calibration`` and ``calibration_frames``, the same calibrated QDQ file as ONNX Runtime's.
- tensorrt: ``engine_path`` (default: the cached engine), ``calibration`` (folder of images or a
  bag, for int8), ``calibration_frames``, ``workspace_gb``, ``binding_api`` (auto/tensors/bindings),
  ``rebuild``.

``auto`` picks one (``choose_backend``): TensorRT where it and a CUDA GPU are present, else OpenVINO
on an x86 CPU where it is installed, else ONNX Runtime (else PyTorch); the backend's ``auto_choice``
says which and why. Only the torch backend is imported eagerly; the others when chosen.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Optional, Tuple

from torch import nn

from depth_attn.inference.backends.base import BACKENDS, PRECISIONS, Backend, BackendError, flag

log = logging.getLogger(__name__)

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
    if name == "auto":
        chosen, why = choose_backend(str(options.get("device", "cpu")))
        log.info("backend auto: %s (%s)", chosen, why)
        backend = create_backend(chosen, model_factory, options, source)
        backend.auto_choice = f"{chosen}: {why}"
        return backend
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
        return _file_backend(OnnxRuntimeBackend, options, "onnx_path",
                             lambda: _onnx_for(source, artefact_options, str(options.get("precision", "fp32"))))
    if name == "tensorrt":
        from depth_attn.inference.backends.tensorrt_backend import TensorRTBackend, import_tensorrt

        import_tensorrt()
        artefact_options = {k: options.pop(k) for k in _TRT_ARTEFACT_OPTIONS if k in options}
        options.setdefault("device", "cuda")
        if options["device"] == "cpu":
            options["device"] = "cuda"
        # the engine comes deserialised (loaded_engine), once, by the cache's load check
        return _file_backend(TensorRTBackend, options, "engine_path",
                             lambda: _engine_for(source, options, artefact_options), loaded_option="loaded_engine")
    if name == "openvino":
        from depth_attn.inference.backends.openvino_backend import (
            OpenVINOBackend,
            import_openvino,
            record_model_cache,
        )

        import_openvino()
        artefact_options = {k: options.pop(k) for k in _ORT_ARTEFACT_OPTIONS if k in options}
        precision = str(options.get("precision", "fp32"))
        if precision not in ("fp32", "int8"):
            raise BackendError(f"precision must be fp32 or int8 with the openvino backend, got {precision!r}")
        status = _take_artefact(options, "onnx_path", lambda: _onnx_for(source, artefact_options, precision))
        cache_entry = None
        if flag(options.pop("model_cache", True)):
            cache_entry = _openvino_cache_for(options["onnx_path"], precision)
            options["model_cache_dir"] = cache_entry[0]
        backend = OpenVINOBackend(**options)
        if cache_entry and backend.model_cache_dir and not backend.loaded_from_cache:
            record_model_cache(*cache_entry)
        compiled = "compiled blob loaded" if backend.loaded_from_cache else "compiled now"
        backend.artefact_status = f"{status}; {compiled}"
        return backend
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _take_artefact(options: Dict, path_option: str, artefact: Callable[[], object],
                   loaded_option: Optional[str] = None) -> str:
    """The file a backend runs (an ONNX file, an engine) into ``options[path_option]``: the one given,
    else the cache's (``artefact()``: found, or built now), with what the cache loaded as
    ``options[loaded_option]``; its artefact status ("given", "hit", "built (why)")."""
    if options.get(path_option):
        return "given"
    result = artefact()
    options[path_option] = result.path
    if loaded_option:
        options[loaded_option] = result.loaded
    return result.status


def _file_backend(cls: type, options: Dict, path_option: str, artefact: Callable[[], object],
                  loaded_option: Optional[str] = None) -> Backend:
    """``cls`` on its file (``_take_artefact``), its ``artefact_status`` saying where it came from."""
    status = _take_artefact(options, path_option, artefact, loaded_option)
    backend = cls(**options)
    backend.artefact_status = status
    return backend


def choose_backend(device: str = "cpu") -> Tuple[str, str]:
    """What ``auto`` runs here, and why: TensorRT where TensorRT and a CUDA GPU are present, else
    OpenVINO on an x86 CPU where it is installed, else ONNX Runtime (else PyTorch)."""
    import importlib.util
    import platform

    import torch

    from depth_attn.inference.backends.openvino_backend import openvino_version
    from depth_attn.inference.backends.tensorrt_backend import tensorrt_version

    trt = tensorrt_version()
    cuda = torch.cuda.is_available()
    if trt and cuda:
        return "tensorrt", f"TensorRT {trt} and a CUDA GPU ({torch.cuda.get_device_name(0)}) are present"
    missing_trt = "no CUDA GPU" if trt else ("TensorRT is not installed" + ("" if cuda else ", no CUDA GPU"))
    machine = platform.machine().lower()
    x86 = machine in ("x86_64", "amd64", "i686", "x86")
    ov = openvino_version()
    if str(device).startswith("cpu") and x86 and ov:
        return "openvino", f"{missing_trt}; an x86 CPU ({machine}) with OpenVINO {ov}"
    why_not_ov = ("the device is not the CPU" if not str(device).startswith("cpu")
                  else f"not an x86 CPU ({machine})" if not x86 else "OpenVINO is not installed")
    if importlib.util.find_spec("onnxruntime") is not None:
        return "onnxruntime", f"{missing_trt}; {why_not_ov}; ONNX Runtime is installed"
    return "torch", f"{missing_trt}; {why_not_ov}; ONNX Runtime is not installed"


def _openvino_cache_for(onnx_path, precision: str) -> Tuple[object, str, Dict[str, object]]:
    """OpenVINO's compiled-model cache folder for this ONNX file, in the artefact cache: keyed by the
    ONNX entry (itself keyed by configuration, weights, size, ...), precision, OpenVINO and the CPU."""
    from pathlib import Path

    from depth_attn.inference.backends.openvino_backend import CACHE_KIND, cpu_name, model_cache_key, openvino_version
    from depth_attn.inference.cache import ArtefactCache, artefacts_dir
    from depth_attn.paths import sha256_file

    onnx_path = Path(onnx_path)
    try:
        inside = onnx_path.resolve().parent.parent.parent == artefacts_dir().resolve()
    except OSError:
        inside = False
    # A cached ONNX file's folder name carries its key's digest; a file given by path is keyed by its bytes.
    entry = onnx_path.parent.name if inside else sha256_file(onnx_path)
    label = onnx_path.parent.name.rsplit("-", 1)[0] if inside else onnx_path.stem
    key = model_cache_key(entry, precision, str(openvino_version()), cpu_name())
    label = f"{label}_{precision}"
    return ArtefactCache().entry_folder(CACHE_KIND, label, key), label, key


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
