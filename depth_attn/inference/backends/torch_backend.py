from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from torch import nn

from depth_attn.inference.backends.base import Backend, BackendError


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: nn.Module, device: str = "cpu", precision: str = "fp32", **_: object) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("device 'cuda' asked for, but PyTorch sees no CUDA device; use device:=cpu")
        if precision == "fp16" and not device.startswith("cuda"):
            raise BackendError("fp16 needs a CUDA device with the torch backend; use precision fp32 on the CPU")
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to(self.device, self.dtype)

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device, self.dtype, non_blocking=True)
        y = self.model(x).float()
        return y.cpu().numpy()  # .cpu() synchronises the device

    def describe(self) -> Dict[str, str]:
        return {"backend": self.name, "device": str(self.device), "torch": torch.__version__}
