from __future__ import annotations

from typing import Dict

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
