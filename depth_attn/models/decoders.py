"""The window decoders of PixelFormer (Skip Attention Modules) and NeWCRFs (window FC-CRFs), with
any token mixer in their window (cross-)attention, and the skeleton both networks share
(``SwinDecoderNetwork``: Swin encoder, pyramid pooling head, four decoder levels)."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from timm.layers import Mlp
from torch import nn

from depth_attn.models.attention import MetaMixer, make_mixer
from depth_attn.models.psp import PyramidPoolingHead
from depth_attn.models.swin import WINDOW, ImageNormalize, SwinEncoder, check_input, window_mix

DECODER_DIMS = (128, 256, 512, 1024)
DECODER_HEADS = (4, 8, 16, 32)
DECODER_IN_DIMS = (64, 128, 256, 512)  # channels arriving from the level above (after PixelShuffle)
HEAD_DIM = 512  # the pyramid pooling head's output (PixelFormer's pixel queries, NeWCRFs' PPM features)


def _conv3x3_if(in_ch: int, out_ch: int) -> Optional[nn.Conv2d]:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1) if in_ch != out_ch else None


def _projected(conv: Optional[nn.Conv2d], x: torch.Tensor) -> torch.Tensor:
    """``x`` through its level's input projection (``_conv3x3_if``), where its width needs one."""
    return x if conv is None else conv(x)


def _query_norm(dim: int, mixer: nn.Module) -> nn.Module:
    """The pre-norm of the queries: part of the attention sub-layer, so a mixer without queries
    (meta pools the values only) has none, rather than a LayerNorm that would train nothing."""
    return nn.Identity() if isinstance(mixer, MetaMixer) else nn.LayerNorm(dim)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2).contiguous()


class SAMBlock(nn.Module):
    """Queries from the decoder stream ``q``, keys and values from the encoder skip ``e``, in
    (non-shifted) 7x7 windows; residual on the query stream, then an MLP."""

    def __init__(self, dim: int, mixer: nn.Module) -> None:
        super().__init__()
        self.norm1 = _query_norm(dim, mixer)
        self.normv = nn.LayerNorm(dim)
        self.attn = mixer
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        q = q + window_mix(self.attn, self.norm1(q), self.normv(e), WINDOW, 0)
        return q + self.mlp(self.norm2(q))


class SAM(nn.Module):
    """PixelFormer's Skip Attention Module at one level. (The public code also defines a 3x3
    ``proj`` convolution that it never calls; it is left out here, it would train nothing.)"""

    def __init__(self, input_dim: int, embed_dim: int, q_dim: int, heads: int, variant: str, sr_ratio: int = 2) -> None:
        super().__init__()
        self.proj_e = _conv3x3_if(input_dim, embed_dim)
        self.proj_q = _conv3x3_if(q_dim, embed_dim)
        mixer = make_mixer(variant, embed_dim, heads, source="sam", layout="swin", window=WINDOW, sr_ratio=sr_ratio)
        self.sam_block = SAMBlock(embed_dim, mixer)
        self.norm_sam = nn.LayerNorm(embed_dim)

    def forward(self, e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        q, e = _projected(self.proj_q, q), _projected(self.proj_e, e)
        out = self.norm_sam(self.sam_block(_nhwc(q), _nhwc(e)))
        return _nchw(out) + e + q


class CRFBlock(nn.Module):
    """Queries and keys from the encoder features ``x`` (the residual stream), values from the
    upstream prediction ``v``; regular or shifted 7x7 windows."""

    def __init__(self, dim: int, mixer: nn.Module, shift: int) -> None:
        super().__init__()
        self.norm1 = _query_norm(dim, mixer)
        self.attn = mixer
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.shift = shift

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = x + window_mix(self.attn, self.norm1(x), v, WINDOW, self.shift)
        return x + self.mlp(self.norm2(x))


class NewCRF(nn.Module):
    """One NeWCRFs level: two window FC-CRF blocks (regular, then shifted) sharing the values."""

    def __init__(self, input_dim: int, embed_dim: int, v_dim: int, heads: int, variant: str, sr_ratio: int = 2) -> None:
        super().__init__()
        self.proj_x = _conv3x3_if(input_dim, embed_dim)
        self.proj_v = _conv3x3_if(v_dim, embed_dim)
        self.blocks = nn.ModuleList(
            CRFBlock(
                embed_dim,
                make_mixer(variant, embed_dim, heads, source="crf", layout="swin", window=WINDOW, sr_ratio=sr_ratio),
                shift=0 if i == 0 else WINDOW // 2,
            )
            for i in range(2)
        )
        self.norm_crf = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x, v = _nhwc(_projected(self.proj_x, x)), _nhwc(_projected(self.proj_v, v))
        for block in self.blocks:
            x = block(x, v)
        return _nchw(self.norm_crf(x))


class SwinDecoderNetwork(nn.Module):
    """What PixelFormer and NeWCRFs share: ImageNet normalisation, the Swin encoder (``backbone``),
    the pyramid pooling head on its deepest features (``decoder``), then four decoder levels from the
    deepest up, each taking the encoder features and the level above (PixelShuffle x2 between
    levels). ``level`` builds one (SAM or NewCRF); ``level_names``: their attributes, deepest first,
    under the originals' names so their checkpoints load. Input RGB in [0, 1], NCHW, sides multiples
    of 32."""

    def __init__(self, size: str, encoder_variant: str, decoder_variant: str, sr_ratio: int, drop_path_rate: float,
                 level: type, level_names: Sequence[str]) -> None:
        super().__init__()
        self.normalize = ImageNormalize()
        self.backbone = SwinEncoder(size, encoder_variant, sr_ratio=sr_ratio, drop_path_rate=drop_path_rate)
        enc = self.backbone.dims
        self.decoder = PyramidPoolingHead(enc[3], HEAD_DIM)
        self.level_names: List[str] = list(level_names)
        for i, name in zip((3, 2, 1, 0), self.level_names, strict=True):
            above = HEAD_DIM if i == 3 else DECODER_IN_DIMS[i]
            setattr(self, name, level(enc[i], DECODER_DIMS[i], above, DECODER_HEADS[i], decoder_variant, sr_ratio))
        self.shuffle = nn.PixelShuffle(2)

    def decode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(the pyramid pooling head's output, the finest level's output at 1/4 of the input)."""
        check_input(x)
        feats = self.backbone(self.normalize(x))
        top = out = self.decoder(feats[3])
        for i, name in zip((3, 2, 1, 0), self.level_names, strict=True):
            out = getattr(self, name)(feats[i], out)
            if i > 0:
                out = self.shuffle(out)
        return top, out
