"""METER (Papa, Russo, Amerini, TCSVT 2023): a MobileViT-style encoder and a small decoder.

Module attribute names and order follow ``specs/meter.md`` so that the official checkpoints load
with ``strict=True``. The attention sub-layer of each transformer layer is built by a
``token_mixer`` factory, which is how the efficient-attention variants are swapped in: every other
tensor keeps its name and shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.attention import make_mixer
from depth_attn.models.spec import NetworkSpec

# A token mixer maps (B, N, d) tokens laid on an (h, w) grid to (B, N, d).
TokenMixerFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class MeterSize:
    name: str  # METER's own name: XXS, XS, S
    dims: Tuple[int, int, int]
    channels: Tuple[int, ...]
    expansion: int
    decoder_width: int


METER_SIZES = {
    "tiny": MeterSize("XXS", (64, 80, 96), (16, 16, 24, 24, 48, 48, 64, 64, 80, 80, 160), 2, 64),
    "base": MeterSize("XS", (96, 120, 144), (16, 32, 48, 48, 64, 64, 80, 80, 96, 96, 192), 4, 128),
    "large": MeterSize("S", (144, 192, 240), (16, 32, 64, 64, 96, 96, 128, 128, 160, 160, 320), 4, 128),
}

METER_HEADS = 4
METER_HEAD_DIM = 8


# The study's MoH split for METER: 2 shared heads + the top 2 of the other 2.
METER_MOH_SPLIT = (2, 2)


def variant_mixer(variant: str, sr_ratio: int = 2) -> TokenMixerFactory:
    """The token-mixer factory of a METER variant. Pyra's reduction ratio: the study uses 2 for
    KITTI, 4 for NYU. MoH keeps ``to_qkv`` and ``to_out`` (same shapes), so it loads them."""
    def factory(dim: int) -> nn.Module:
        return make_mixer(
            variant,
            dim,
            METER_HEADS,
            METER_HEAD_DIM,
            source="self",
            layout="meter",
            sr_ratio=sr_ratio,
            moh_split=METER_MOH_SPLIT,
        )

    return factory


class SeparableConv(nn.Module):
    """METER's "separable" conv: a FULL 3x3 conv (despite the name ``depthwise``) then a 1x1."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.pointwise = nn.Conv2d(out_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def conv_nxn_bn(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(SeparableConv(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU())


def conv_1x1_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU())


class MV2Block(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.use_residual = stride == 1 and in_ch == out_ch
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, mlp_dim: int, token_mixer: TokenMixerFactory) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([PreNorm(dim, token_mixer(dim)), PreNorm(dim, FeedForward(dim, mlp_dim))])
            for _ in range(depth)
        )

    def forward(self, tokens: torch.Tensor, grid_hw: Tuple[int, int]) -> torch.Tensor:
        for attn, ff in self.layers:
            tokens = attn(tokens, grid_hw=grid_hw) + tokens
            tokens = ff(tokens) + tokens
        return tokens


class MobileViTBlock(nn.Module):
    """Local conv, then attention over 2x2 patches (one token sequence per in-patch position)."""

    patch = 2

    def __init__(self, channels: int, dim: int, mlp_dim: int, token_mixer: TokenMixerFactory) -> None:
        super().__init__()
        self.conv1 = conv_nxn_bn(channels, channels)
        self.conv2 = conv_1x1_bn(channels, dim)
        self.transformer = Transformer(dim, 1, mlp_dim, token_mixer)
        self.conv3 = conv_1x1_bn(dim, channels)
        self.conv4 = conv_nxn_bn(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        y = self.conv2(self.conv1(x))
        b, d, h, w = y.shape
        p = self.patch
        gh, gw = h // p, w // p
        # (B, d, H, W) -> (B * p * p, gh * gw, d): each in-patch position is its own sequence, and
        # folding it into the batch keeps every mixer batch-independent by construction.
        tokens = y.reshape(b, d, gh, p, gw, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, gh * gw, d)
        tokens = self.transformer(tokens, (gh, gw))
        y = tokens.reshape(b, p, p, gh, gw, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        y = self.conv3(y)
        return self.conv4(torch.cat([y, skip], dim=1))


class MeterEncoder(nn.Module):
    def __init__(self, size: MeterSize, token_mixer: TokenMixerFactory) -> None:
        super().__init__()
        c, d, e = size.channels, size.dims, size.expansion
        self.conv1 = conv_nxn_bn(3, c[0], stride=2)
        self.mv2 = nn.ModuleList(
            [
                MV2Block(c[0], c[1], 1, e),
                MV2Block(c[1], c[2], 2, e),
                MV2Block(c[2], c[3], 1, e),
                MV2Block(c[2], c[3], 1, e),
                MV2Block(c[3], c[4], 2, e),
                MV2Block(c[5], c[6], 2, e),
                MV2Block(c[7], c[8], 2, e),
            ]
        )
        self.mvit = nn.ModuleList(
            [
                MobileViTBlock(c[5], d[0], 2 * d[0], token_mixer),
                MobileViTBlock(c[7], d[1], 4 * d[1], token_mixer),
                MobileViTBlock(c[9], d[2], 4 * d[2], token_mixer),
            ]
        )
        self.conv2 = conv_1x1_bn(c[9], c[10])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        y0 = self.conv1(x)
        x = self.mv2[0](y0)
        y1 = self.mv2[1](x)
        x = self.mv2[2](y1)
        x = self.mv2[3](x)
        y2 = self.mv2[4](x)
        x = self.mvit[0](y2)
        y3 = self.mv2[5](x)
        x = self.mvit[1](y3)
        x = self.mv2[6](x)
        x = self.mvit[2](x)
        return self.conv2(x), [y0, y1, y2, y3]


def align_skip(skip: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the skip on the left, then on the right, up to the upsampled width (METER's rule)."""
    missing = width - skip.shape[-1]
    if missing <= 0:
        return skip
    return F.pad(skip, (1, min(missing - 1, 1)))


class UpsamplingBlock(nn.Module):
    def __init__(self, in_ch: int, skip_ch: int) -> None:
        super().__init__()
        out = in_ch // 2
        self.conv2d_transpose = nn.ConvTranspose2d(in_ch, out, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.end_up_layer = nn.Sequential(SeparableConv(out + skip_ch, out), nn.ReLU())

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.conv2d_transpose(x)
        skip = align_skip(skip, up.shape[-1])
        if skip.shape[-2] != up.shape[-2]:
            raise ValueError(f"METER skip height {skip.shape[-2]} does not match upsampled {up.shape[-2]}")
        return self.end_up_layer(torch.cat([up, skip], dim=1))


class MeterDecoder(nn.Module):
    def __init__(self, size: MeterSize) -> None:
        super().__init__()
        c, width = size.channels, size.decoder_width
        self.conv2d_in = nn.Conv2d(c[10], width, 1, bias=False)
        self.ups_block_1 = UpsamplingBlock(width, c[6])
        self.ups_block_2 = UpsamplingBlock(width // 2, c[4])
        self.ups_block_3 = UpsamplingBlock(width // 4, c[2])
        self.conv2d_out = nn.Conv2d(width // 8, 1, 3, padding="same", bias=False)

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        _, y1, y2, y3 = skips
        x = self.conv2d_in(x)
        x = self.ups_block_1(x, y3)
        x = self.ups_block_2(x, y2)
        x = self.ups_block_3(x, y1)
        return self.conv2d_out(x)


class Meter(nn.Module):
    """Input RGB in [0, 1], NCHW; output (N, 1, H/4, W/4) in the checkpoint's unit."""

    def __init__(self, size: str = "tiny", token_mixer: Optional[TokenMixerFactory] = None) -> None:
        super().__init__()
        token_mixer = token_mixer or variant_mixer("base")
        if size not in METER_SIZES:
            raise ValueError(f"METER size must be one of {sorted(METER_SIZES)}, got {size!r}")
        spec = METER_SIZES[size]
        self.encoder = MeterEncoder(spec, token_mixer)
        self.decoder = MeterDecoder(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, skips = self.encoder(x)
        return self.decoder(features, skips)


def _halvings(size: int, times: int) -> int:
    """The side after ``times`` stride-2 convolutions (kernel 3, padding 1): ceil(size / 2^times)."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def meter_height_ok(side: int) -> bool:
    """METER folds 2x2 patches at 1/8, 1/16 and 1/32, and its decoder doubles the height back to
    each skip's exactly: the height after 2, 3, 4 and 5 halvings must be even (192 is; 96 is not)."""
    return side >= 32 and all(_halvings(side, k) % 2 == 0 for k in (2, 3, 4, 5))


def meter_width_ok(side: int) -> bool:
    """The width needs the patch folds only (the decoder pads a skip one column short): even after
    3, 4 and 5 halvings (636 is; 160 -> 5 at 1/32 is not)."""
    return side >= 32 and all(_halvings(side, k) % 2 == 0 for k in (3, 4, 5))


def _build(size: str, encoder_mixer: str, decoder_mixer: str, variant: str, output_scale: float,
           options: Dict[str, object]) -> Meter:
    return Meter(size, variant_mixer(variant, int(options["sr_ratio"])))  # type: ignore[arg-type]


SPEC = NetworkSpec(
    network="meter",
    input_hw=(192, 636),
    output_unit="dm",  # the official KITTI checkpoints answer in decimetres
    to_metres=0.1,
    max_depth_m=80.0,
    output_scale_in_graph=False,
    height_ok=meter_height_ok,
    width_ok=meter_width_ok,
    size_rule="the height halved 2 to 5 times and the width halved 3 to 5 times (rounding up) must stay even",
    encoder_prefix="encoder.",
    feature_layers=("encoder.mvit.0", "encoder.mvit.1", "encoder.mvit.2"),
    # Quantising the last decoder block and the output convolution (full resolution, the metres
    # themselves) cost +0.015 abs_rel on METER-tiny (docs/benchmarks.md, section 7).
    int8_keep_fp32=("/decoder/ups_block_3/", "/decoder/conv2d_out/"),
    # channels_last was faster for all 12 METER configurations on the CPU (docs/bench/backends.md)
    torch_channels_last=True,
    build=_build,
)
