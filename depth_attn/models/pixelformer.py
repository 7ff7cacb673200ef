"""PixelFormer (Agarwal & Arora, WACV 2023): Swin encoder, Pixel Query Initialiser (pyramid
pooling), four Skip Attention Modules, Bin Centre Predictor; depth = per-pixel softmax over 256
adaptive bins times the bin centres, in metres."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.decoders import DECODER_DIMS, DECODER_HEADS, DECODER_IN_DIMS, SAM
from depth_attn.models.psp import PyramidPoolingHead
from depth_attn.models.swin import ImageNormalize, SwinEncoder, check_input

QUERY_DIM = 512
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


class PixelFormer(nn.Module):
    """Input RGB in [0, 1], NCHW, sides multiples of 32; output (N, 1, H, W) metres."""

    def __init__(
        self,
        size: str = "tiny",
        encoder_variant: str = "base",
        decoder_variant: str = "base",
        max_depth: float = 80.0,
        min_depth: float = 1e-3,
        sr_ratio: int = 2,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.normalize = ImageNormalize()
        self.backbone = SwinEncoder(size, encoder_variant, sr_ratio=sr_ratio, drop_path_rate=drop_path_rate)
        enc = self.backbone.dims
        self.decoder = PyramidPoolingHead(enc[3], QUERY_DIM)
        d, h, qd = DECODER_DIMS, DECODER_HEADS, DECODER_IN_DIMS
        self.sam4 = SAM(enc[3], d[3], QUERY_DIM, h[3], decoder_variant, sr_ratio)
        self.sam3 = SAM(enc[2], d[2], qd[2], h[2], decoder_variant, sr_ratio)
        self.sam2 = SAM(enc[1], d[1], qd[1], h[1], decoder_variant, sr_ratio)
        self.sam1 = SAM(enc[0], d[0], qd[0], h[0], decoder_variant, sr_ratio)
        self.disp_head1 = BinDepthHead(d[0])
        self.bcp = BinCentrePredictor(min_depth, max_depth)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        feats = self.backbone(self.normalize(x))
        q4 = self.decoder(feats[3])
        q3 = self.shuffle(self.sam4(feats[3], q4))
        q2 = self.shuffle(self.sam3(feats[2], q3))
        q1 = self.shuffle(self.sam2(feats[1], q2))
        q0 = self.sam1(feats[0], q1)
        depth = self.disp_head1(q0, self.bcp(q4))
        return F.interpolate(depth, scale_factor=4, mode="bilinear", align_corners=False)
