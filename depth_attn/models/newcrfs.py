"""NeWCRFs (Yuan et al., CVPR 2022): Swin encoder, pyramid pooling head on the deepest features,
four window fully-connected CRF levels, depth = sigmoid x max depth, in metres."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.decoders import DECODER_DIMS, NewCRF, SwinDecoderNetwork
from depth_attn.models.swin import swin_network_spec


class SigmoidDepthHead(nn.Module):
    def __init__(self, in_dim: int = DECODER_DIMS[0]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv1(x))


class NeWCRFs(SwinDecoderNetwork):
    """Input RGB in [0, 1], NCHW, sides multiples of 32; output (N, 1, H, W) metres."""

    def __init__(self, size: str = "tiny", encoder_variant: str = "base", decoder_variant: str = "base",
                 max_depth: float = 80.0, sr_ratio: int = 2, drop_path_rate: float = 0.0) -> None:
        super().__init__(size, encoder_variant, decoder_variant, sr_ratio, drop_path_rate, NewCRF,
                         ("crf3", "crf2", "crf1", "crf0"))
        self.max_depth = float(max_depth)
        self.disp_head1 = SigmoidDepthHead(DECODER_DIMS[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, e0 = self.decode(x)
        depth = F.interpolate(self.disp_head1(e0), scale_factor=4, mode="bilinear", align_corners=False)
        return depth * self.max_depth


def _build(size: str, encoder_mixer: str, decoder_mixer: str, variant: str, output_scale: float,
           options: Dict[str, object]) -> NeWCRFs:
    return NeWCRFs(size, encoder_mixer, decoder_mixer, max_depth=output_scale, sr_ratio=int(options["sr_ratio"]),
                   drop_path_rate=float(options["drop_path_rate"]))


SPEC = swin_network_spec("newcrfs", _build)
