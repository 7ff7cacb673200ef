"""Backends behind one small interface: a float32 NCHW batch in, the network's raw output out."""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
from torch import nn

from depth_attn.inference.backends.base import Backend, BackendError

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def create_backend(name: str, model_factory: Callable[[], nn.Module], options: Dict) -> Backend:
    """``model_factory`` builds the PyTorch model (with weights loaded, eval mode) on demand, so a
    backend that finds a cached artefact never has to build it."""
    if name == "torch":
        from depth_attn.inference.backends.torch_backend import TorchBackend

        return TorchBackend(model_factory(), **options)
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendError", "create_backend", "np"]
