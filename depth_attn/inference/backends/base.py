from __future__ import annotations

from typing import Dict

import numpy as np


class BackendError(RuntimeError):
    """A backend that cannot start or run; the message says what to do."""


class Backend:
    """Runs the network. ``run`` takes a (1, 3, H, W) float32 array and returns (1, 1, h, w)
    float32; it returns only when the result is ready (device synchronised)."""

    name = "backend"

    def run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> Dict[str, str]:
        return {"backend": self.name}
