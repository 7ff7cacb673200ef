"""PyTorch eager on the CPU or CUDA: inference mode, fp16 on CUDA, channels_last where it helps,
optional ``torch.compile`` and (CUDA) CUDA graphs."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from depth_attn.inference.backends.base import Backend, BackendError
from depth_attn.inference.backends.base import flag as _flag


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: Optional[bool] = None,
        compile: bool = False,
        cuda_graphs: bool = False,
        threads: Optional[int] = None,
        **_: object,
    ) -> None:
        on_cuda = device.startswith("cuda")
        if on_cuda and not torch.cuda.is_available():
            raise BackendError("device 'cuda' asked for, but PyTorch sees no CUDA device; use device:=cpu")
        if precision == "fp16" and not on_cuda:
            raise BackendError("fp16 needs a CUDA device with the torch backend; use precision fp32 on the CPU")
        if precision == "int8":
            raise BackendError("int8 is built with the tensorrt backend (`depth-attn build-engine --precision int8`)")
        if precision not in ("fp32", "fp16"):
            raise BackendError(f"precision must be fp32 or fp16 with the torch backend, got {precision!r}")
        self.cuda_graphs = _flag(cuda_graphs)
        if self.cuda_graphs and not on_cuda:
            raise BackendError("CUDA graphs need a CUDA device; drop cuda_graphs on the CPU")
        if threads:
            # Process-wide (PyTorch has one intra-op pool). On a CPU shared with other work, fewer
            # threads than cores avoids OpenMP's worst case (docs/bench/backends.md).
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        # channels_last pays off for convolutions on CUDA (tensor cores); on the CPU it depends on
        # the network (docs/bench/backends.md), so there it is off unless the caller asks for it
        # (DepthEstimator does for METER).
        self.channels_last = on_cuda if channels_last is None else _flag(channels_last)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.compiled = _flag(compile)
        self.forward = torch.compile(self.model) if self.compiled else self.model
        self._graph: Optional[torch.cuda.CUDAGraph] = None
        self._static_input: Optional[torch.Tensor] = None
        self._static_output: Optional[torch.Tensor] = None

    def _to_device(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.cuda_graphs:
            return self._run_graph(batch)
        y = self.forward(self._to_device(batch)).float()
        return y.cpu().numpy()  # .cpu() synchronises the device

    def _run_graph(self, batch: np.ndarray) -> np.ndarray:
        if self._static_input is None or tuple(self._static_input.shape) != tuple(batch.shape):
            self._capture(self._to_device(batch))
        assert self._graph is not None and self._static_input is not None and self._static_output is not None
        self._static_input.copy_(self._to_device(batch))
        self._graph.replay()
        return self._static_output.float().cpu().numpy()

    def _capture(self, example: torch.Tensor) -> None:
        """Record the forward pass once (after a warm-up on a side stream, as PyTorch requires)."""
        self._static_input = example.clone()
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.forward(self._static_input)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._static_output = self.forward(self._static_input)

    def describe(self) -> Dict[str, str]:
        info = {"backend": self.name, "device": str(self.device), "torch": torch.__version__}
        if self.device.type == "cuda":
            info["device"] += f" ({torch.cuda.get_device_name(self.device)})"
        info["channels_last"] = str(self.channels_last)
        if self.device.type == "cpu":
            info["threads"] = str(torch.get_num_threads())
        if self.compiled:
            info["compile"] = "True"
        if self.cuda_graphs:
            info["cuda_graphs"] = "True"
        return info
