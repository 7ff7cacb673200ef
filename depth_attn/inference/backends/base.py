from __future__ import annotations

import importlib
import importlib.util
from typing import Callable, Dict, Optional

import numpy as np

BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
BACKEND_CHOICES = ("auto",) + BACKENDS  # what a user may ask for: "auto" picks one (backends.choose_backend)
PRECISIONS = ("fp32", "fp16", "int8")


def flag(value: object) -> bool:
    """A boolean backend option that may come as text (CLI ``--option``, a node parameter string)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class BackendError(RuntimeError):
    """A backend that cannot start or run; the message says what to do."""


def import_runtime(module: str, install_hint: str):
    """The runtime a backend needs (``module``), or a BackendError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(install_hint) from exc


def runtime_version(module: str, importer: Callable[[], object]) -> Optional[str]:
    """The installed version of the runtime ``module`` (imported by ``importer``), or None, without
    importing anything when it is absent."""
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return str(importer().__version__)
    except BackendError:
        return None


class Backend:
    """Runs the network. ``run`` takes a (1, 3, H, W) float32 array and returns (1, 1, h, w)
    float32; it returns only when the result is ready (device synchronised)."""

    name = "backend"
    # Where the ONNX file/engine came from: "hit", "built (why)", "given" or "-" (none needed).
    artefact_status = "-"
    # Set when "auto" chose this backend: "name: why".
    auto_choice = ""

    def run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> Dict[str, str]:
        return {"backend": self.name}
