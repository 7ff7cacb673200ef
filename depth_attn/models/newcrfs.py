"""NeWCRFs (Yuan et al., CVPR 2022): Swin encoder, pyramid pooling head on the deepest features,
four window fully-connected CRF levels, depth = sigmoid x max depth, in metres."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.decoders import DECODER_DIMS, DECODER_HEADS, DECODER_IN_DIMS, NewCRF
from depth_attn.models.psp import PyramidPoolingHead
from depth_attn.models.swin import ImageNormalize, SwinEncoder, check_input

HEAD_DIM = 512


class SigmoidDepthHead(nn.Module):
    def __init__(self, in_dim: int = DECODER_DIMS[0]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv1(x))


class NeWCRFs(nn.Module):
    """Input RGB in [0, 1], NCHW, sides multiples of 32; output (N, 1, H, W) metres."""

    def __init__(
        self,
        size: str = "tiny",
        encoder_variant: str = "base",
        decoder_variant: str = "base",
        max_depth: float = 80.0,
        sr_ratio: int = 2,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_depth = float(max_depth)
        self.normalize = ImageNormalize()
        self.backbone = SwinEncoder(size, encoder_variant, sr_ratio=sr_ratio, drop_path_rate=drop_path_rate)
        enc = self.backbone.dims
        self.decoder = PyramidPoolingHead(enc[3], HEAD_DIM)
        d, h, vd = DECODER_DIMS, DECODER_HEADS, DECODER_IN_DIMS
        self.crf3 = NewCRF(enc[3], d[3], HEAD_DIM, h[3], decoder_variant, sr_ratio)
        self.crf2 = NewCRF(enc[2], d[2], vd[2], h[2], decoder_variant, sr_ratio)
        self.crf1 = NewCRF(enc[1], d[1], vd[1], h[1], decoder_variant, sr_ratio)
        self.crf0 = NewCRF(enc[0], d[0], vd[0], h[0], decoder_variant, sr_ratio)
        self.disp_head1 = SigmoidDepthHead(d[0])
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        feats = self.backbone(self.normalize(x))
        ppm = self.decoder(feats[3])
        e3 = self.shuffle(self.crf3(feats[3], ppm))
        e2 = self.shuffle(self.crf2(feats[2], e3))
        e1 = self.shuffle(self.crf1(feats[1], e2))
        e0 = self.crf0(feats[0], e1)
        depth = F.interpolate(self.disp_head1(e0), scale_factor=4, mode="bilinear", align_corners=False)
        return depth * self.max_depth
