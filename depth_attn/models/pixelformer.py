"""PixelFormer (Agarwal & Arora, WACV 2023): Swin encoder, Pixel Query Initialiser (pyramid
pooling), four Skip Attention Modules, Bin Centre Predictor; depth = per-pixel softmax over 256
adaptive bins times the bin centres, in metres."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.decoders import DECODER_DIMS, HEAD_DIM, SAM, SwinDecoderNetwork
from depth_attn.models.swin import swin_network_spec

QUERY_DIM = HEAD_DIM  # the pixel queries: the pyramid pooling head's output
BINS = 256


class BinCentrePredictor(nn.Module):
    """MLP 512 -> 2048 -> 256 on the globally pooled pixel queries -> adaptive bin centres."""

    def __init__(
        self, min_depth: float, max_depth: float, in_dim: int = QUERY_DIM, hidden: int = 4 * QUERY_DIM, bins: int = BINS
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, bins)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        widths = self.fc2(self.act(self.fc1(queries.mean(dim=(2, 3))))).softmax(dim=1)
        widths = F.pad((self.max_depth - self.min_depth) * widths, (1, 0), value=self.min_depth)
        edges = torch.cumsum(widths, dim=1)
        centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
        return centres[:, :, None, None]


class BinDepthHead(nn.Module):
    def __init__(self, in_dim: int = DECODER_DIMS[0], bins: int = BINS) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, bins, 3, padding=1)

    def forward(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        probs = self.conv1(x).softmax(dim=1)
        return (probs * centres).sum(dim=1, keepdim=True)


class PixelFormer(SwinDecoderNetwork):
    """Input RGB in [0, 1], NCHW, sides multiples of 32; output (N, 1, H, W) metres."""

    def __init__(self, size: str = "tiny", encoder_variant: str = "base", decoder_variant: str = "base",
                 max_depth: float = 80.0, min_depth: float = 1e-3, sr_ratio: int = 2,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__(size, encoder_variant, decoder_variant, sr_ratio, drop_path_rate, SAM,
                         ("sam4", "sam3", "sam2", "sam1"))
        self.disp_head1 = BinDepthHead(DECODER_DIMS[0])
        self.bcp = BinCentrePredictor(min_depth, max_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q4, q0 = self.decode(x)
        depth = self.disp_head1(q0, self.bcp(q4))
        return F.interpolate(depth, scale_factor=4, mode="bilinear", align_corners=False)


def _build(size: str, encoder_mixer: str, decoder_mixer: str, variant: str, output_scale: float,
           options: Dict[str, object]) -> PixelFormer:
    return PixelFormer(size, encoder_mixer, decoder_mixer, max_depth=output_scale,
                       min_depth=float(options["min_depth"]), sr_ratio=int(options["sr_ratio"]),
                       drop_path_rate=float(options["drop_path_rate"]))


SPEC = swin_network_spec("pixelformer", _build)
