"""OpenVINO on the CPU: the cached ONNX file (the same one ONNX Runtime runs, fp32 or the calibrated
int8 QDQ file) compiled by OpenVINO, with its compiled-model cache (``CACHE_DIR``) in a folder of
the artefact cache keyed by the ONNX file's key, the precision, OpenVINO's version and the CPU, so
the second start loads the compiled blob instead of compiling again.

``openvino`` is imported only when this backend is used (it is pinned for x86_64 only; a Jetson has
TensorRT), so the package works where it is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Dict, Mapping, Optional

import numpy as np

from depth_attn.inference.backends.base import Backend, BackendError, flag, import_runtime, runtime_version
from depth_attn.inference.export import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

INSTALL_HINT = "the openvino backend needs OpenVINO: `pip install openvino` (x86_64 CPUs)"
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
CACHE_KIND = "openvino"


def import_openvino():
    return import_runtime("openvino", INSTALL_HINT)


def openvino_version() -> Optional[str]:
    """The installed OpenVINO version (without its build suffix), or None (without importing it when absent)."""
    version = runtime_version("openvino", import_openvino)
    return version.split("-")[0] if version else None


def cpu_name() -> str:
    """OpenVINO's name for this CPU (what a compiled blob is tied to)."""
    ov = import_openvino()
    return str(ov.Core().get_property("CPU", "FULL_DEVICE_NAME"))


def compile_config(threads: Optional[int], hint: str, streams: Optional[object], pinning: Optional[object]) -> Dict:
    """OpenVINO CPU properties from the backend options (None: OpenVINO's default)."""
    if str(hint).lower() not in HINTS:
        raise BackendError(f"hint must be one of {', '.join(HINTS)}, got {hint!r}")
    config: Dict[str, object] = {"PERFORMANCE_HINT": HINTS[str(hint).lower()]}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if streams not in (None, ""):
        text = str(streams).strip().upper()
        config["NUM_STREAMS"] = text if text in ("AUTO", "NUMA") else int(text)
    # Threads pinned to cores cannot move off a core another process is using: on a shared CPU (a
    # robot's ROS nodes, a loaded desktop) pinned OpenVINO was 1.45x slower than unpinned
    # (docs/benchmarks.md, section 14), so pinning is off unless asked for.
    config["ENABLE_CPU_PINNING"] = False if pinning in (None, "") else flag(pinning)
    return config


def model_cache_key(onnx_key_digest: str, precision: str, version: str, cpu: str) -> Dict[str, object]:
    """The key of OpenVINO's compiled-model cache folder; OpenVINO itself keys each blob in it by the
    model and the compile properties (threads, hint, streams)."""
    return {"kind": "openvino-model-cache", "onnx_key": onnx_key_digest, "precision": precision,
            "openvino": version, "device_name": cpu}


def record_model_cache(folder: Path, label: str, key: Mapping[str, object]) -> None:
    """A ``meta.json`` beside OpenVINO's blobs, so `depth-attn cache list/clear` sees the folder."""
    from depth_attn.inference.cache import FORMAT_VERSION, META_FILE, key_digest

    blobs = sorted(folder.glob("*.blob"), key=lambda p: p.stat().st_mtime)
    if not blobs:
        return
    meta = {"format": FORMAT_VERSION, "kind": CACHE_KIND, "label": label, "filename": blobs[-1].name,
            "key": dict(key), "key_digest": key_digest(key), "sha256": "-", "size": blobs[-1].stat().st_size,
            "created": time.time(), "note": "OpenVINO's own model cache (CACHE_DIR); it checks its blobs itself"}
    try:
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    except OSError as exc:
        log.debug("cannot record the OpenVINO cache folder %s: %s", folder, exc)


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(
        self,
        onnx_path: Path,
        device: str = "cpu",
        precision: str = "fp32",
        threads: Optional[int] = None,
        hint: str = "latency",
        streams: Optional[object] = None,
        pinning: Optional[object] = None,
        model_cache_dir: Optional[Path] = None,
        **_: object,
    ) -> None:
        """``model_cache_dir``: OpenVINO's compiled-model cache (default: none, compile every start);
        ``threads``: INFERENCE_NUM_THREADS (default: one per physical core); ``hint``: latency or
        throughput; ``streams``: NUM_STREAMS (the latency hint's default is 1); ``pinning``:
        ENABLE_CPU_PINNING (default off here; OpenVINO's own default is on)."""
        ov = import_openvino()
        if not str(device).startswith("cpu"):
            raise BackendError(f"the openvino backend runs on the CPU here, not {device!r}: use --device cpu")
        if precision not in ("fp32", "int8"):
            raise BackendError(f"precision must be fp32 or int8 with the openvino backend, got {precision!r}")
        self.onnx_path = Path(onnx_path)
        if precision == "int8":
            from depth_attn.inference.artefacts import int8_card

            try:
                int8_card(self.onnx_path)
            except ValueError as exc:
                raise BackendError(
                    f"{exc}: quantise it with `depth-attn export --precision int8 --calibration FOLDER_OR_BAG` "
                    "(or leave onnx_path unset and give the backend option calibration)"
                ) from None
        self.device = "cpu"
        self.precision = precision
        self.version = str(ov.__version__).split("-")[0]  # 2026.4.1-22982-e213a...: the release
        core = ov.Core()
        self.model_cache_dir: Optional[Path] = None
        if model_cache_dir is not None:
            folder = Path(model_cache_dir)
            writable = True
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                writable = False
            if writable and not os.access(folder, os.W_OK) and not any(folder.glob("*.blob")):
                writable = False
            if writable or any(folder.glob("*.blob")):
                core.set_property({"CACHE_DIR": str(folder)})
                self.model_cache_dir = folder
            else:
                log.warning("OpenVINO's model cache %s cannot be written: compiling at every start", folder)
        self.config = compile_config(threads, hint, streams, pinning)
        # fp32 stays fp32: OpenVINO would otherwise pick bf16/fp16 on CPUs that have them.
        self.config["INFERENCE_PRECISION_HINT"] = "f32"
        start = time.perf_counter()
        try:
            self.compiled = core.compile_model(str(self.onnx_path), "CPU", self.config)
        except Exception as exc:
            raise BackendError(f"OpenVINO cannot compile {self.onnx_path}: {type(exc).__name__}: {exc}") from exc
        self.start_ms = (time.perf_counter() - start) * 1e3
        self.loaded_from_cache = bool(self.compiled.get_property("LOADED_FROM_CACHE"))
        inputs = {name for port in self.compiled.inputs for name in port.get_names()}
        outputs = {name for port in self.compiled.outputs for name in port.get_names()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise BackendError(
                f"{self.onnx_path} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; expected "
                f"'{INPUT_NAME}' -> '{OUTPUT_NAME}' (export it with `depth-attn export`)"
            )
        self.input_shape = tuple(int(d) for d in self.compiled.input(INPUT_NAME).get_shape())
        self.request = self.compiled.create_infer_request()
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.streams = int(self.compiled.get_property("NUM_STREAMS"))
        self.hint = str(self.compiled.get_property("PERFORMANCE_HINT")).lower()
        self.pinning = bool(self.compiled.get_property("ENABLE_CPU_PINNING"))
        log.info("OpenVINO %s: %s %s in %.0f ms (%s)", self.version, "loaded" if self.loaded_from_cache else "compiled",
                 self.onnx_path.name, self.start_ms, "from its model cache" if self.loaded_from_cache
                 else ("into its model cache" if self.model_cache_dir else "no model cache"))

    def run(self, batch: np.ndarray) -> np.ndarray:
        if tuple(batch.shape) != self.input_shape:
            raise BackendError(f"input shape {tuple(batch.shape)} differs from the exported {self.input_shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.request.infer({INPUT_NAME: batch}, share_inputs=True)
        # The request reuses its output buffer on the next call: hand out a copy.
        return np.array(self.request.get_tensor(OUTPUT_NAME).data, copy=True)

    def describe(self) -> Dict[str, str]:
        return {
            "backend": self.name,
            "device": "cpu",
            "openvino": self.version,
            "onnx": str(self.onnx_path),
            "threads": str(self.threads),
            "streams": str(self.streams),
            "hint": self.hint,
            "pinning": str(self.pinning),
            "model_cache": str(self.model_cache_dir) if self.model_cache_dir else "off",
            "compiled": f"{'loaded from cache' if self.loaded_from_cache else 'compiled'} in {self.start_ms:.0f} ms",
            "quantized": "int8 (QDQ, calibrated)" if self.precision == "int8" else "no",
        }
