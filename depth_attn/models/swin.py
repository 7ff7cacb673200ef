"""Swin Transformer encoders (timm's) with any token mixer, and the window machinery that the
encoder blocks and the window decoders (SAM, FC-CRF) share.

Windows follow the original Swin (and NeWCRFs/PixelFormer): pad the map to a multiple of the
window, then roll by the shift, partition, mix, and undo all three; the shifted-window mask is
built from the padded size inside the graph (static shapes, so it exports). Any input whose
sides are multiples of 32 gives exact stage grids; windows pad themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from depth_attn.models.attention import make_mixer
from depth_attn.models.spec import NetworkBuilder, NetworkSpec, multiple_of_32

WINDOW = 7
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SwinSize:
    name: str
    embed_dim: int
    depths: Tuple[int, int, int, int]
    heads: Tuple[int, int, int, int]
    moh_shared: Tuple[int, int, int, int]  # the study's MoH split per stage
    moh_top_k: Tuple[int, int, int, int]

    @property
    def dims(self) -> Tuple[int, int, int, int]:
        return tuple(self.embed_dim * 2**i for i in range(4))  # type: ignore[return-value]


SWIN_SIZES = {
    "tiny": SwinSize("Swin-T", 96, (2, 2, 6, 2), (3, 6, 12, 24), (3, 6, 3, 4), (0, 0, 6, 12)),
    "base": SwinSize("Swin-B", 128, (2, 2, 18, 2), (4, 8, 16, 32), (4, 8, 4, 5), (0, 0, 8, 16)),
    "large": SwinSize("Swin-L", 192, (2, 2, 18, 2), (6, 12, 24, 48), (6, 12, 6, 8), (0, 0, 12, 24)),
}


def shift_window_mask(hp: int, wp: int, window: int, shift: int, device, dtype) -> torch.Tensor:
    """Swin's additive mask (nW, N, N) for a padded (hp, wp) map rolled by ``shift``: 0 between
    tokens of the same region, -100 across regions."""
    rows = torch.arange(hp, device=device)
    cols = torch.arange(wp, device=device)
    label_h = (rows >= hp - window).long() + (rows >= hp - shift).long()
    label_w = (cols >= wp - window).long() + (cols >= wp - shift).long()
    label = label_h[:, None] * 3 + label_w[None, :]
    label = label.reshape(hp // window, window, wp // window, window).permute(0, 2, 1, 3).reshape(-1, window * window)
    return (label[:, None, :] != label[:, :, None]).to(dtype) * -100.0


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, Hp, Wp, C) -> (B * nW, window^2, C)."""
    b, hp, wp, c = x.shape
    x = x.reshape(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, b: int, hp: int, wp: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.reshape(b, hp // window, wp // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)


def window_mix(
    mixer: nn.Module, x: torch.Tensor, context: Optional[torch.Tensor], window: int, shift: int
) -> torch.Tensor:
    """Apply a token mixer in (shifted) windows: x (B, H, W, C), context None or (B, H, W, C')."""
    b, h, w, _ = x.shape
    pad_h, pad_w = (-h) % window, (-w) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        if context is not None:
            context = F.pad(context, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    mask = None
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        if context is not None:
            context = torch.roll(context, shifts=(-shift, -shift), dims=(1, 2))
        mask = shift_window_mask(hp, wp, window, shift, x.device, x.dtype)
    xw = window_partition(x, window)
    if context is None:
        out = mixer(xw, mask=mask)
    else:
        out = mixer(xw, context=window_partition(context, window), mask=mask)
    out = window_reverse(out, window, b, hp, wp)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return out[:, :h, :w]


class SwinBlock(nn.Module):
    """A Swin block (pre-norm window mixer, then MLP) that keeps timm's parameter names (``norm1``,
    ``attn``, ``norm2``, ``mlp``) and uses the shared window machinery."""

    def __init__(self, timm_block: nn.Module, mixer: Optional[nn.Module], window: int, shift: int) -> None:
        super().__init__()
        self.norm1 = timm_block.norm1
        self.attn = mixer if mixer is not None else timm_block.attn
        self.drop_path1 = timm_block.drop_path1
        self.norm2 = timm_block.norm2
        self.mlp = timm_block.mlp
        self.drop_path2 = timm_block.drop_path2
        self.window = window
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(window_mix(self.attn, self.norm1(x), None, self.window, self.shift))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


MixerFactory = Callable[[int, int, int], nn.Module]  # (stage, dim, heads) -> mixer


class SwinEncoder(nn.Module):
    """timm's SwinTransformer (patch embedding, stages, patch merging, MLPs: timm's names), giving
    the four stage outputs NCHW (strides 4, 8, 16, 32), each through its own LayerNorm as the
    dense-prediction Swin does. ``variant`` other than ``base`` swaps every window attention for
    that mixer (MoH with the study's per-stage head split)."""

    def __init__(
        self, size: str = "tiny", variant: str = "base", sr_ratio: int = 2, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        if size not in SWIN_SIZES:
            raise ValueError(f"Swin size must be one of {sorted(SWIN_SIZES)}, got {size!r}")
        spec = SWIN_SIZES[size]
        self.spec = spec
        self.backbone = SwinTransformer(
            img_size=224,
            embed_dim=spec.embed_dim,
            depths=spec.depths,
            num_heads=spec.heads,
            window_size=WINDOW,
            always_partition=True,  # window 7 and shift 3 at every stage, whatever the input size
            strict_img_size=False,
            drop_path_rate=drop_path_rate,
            num_classes=0,
        )
        self.backbone.norm = nn.Identity()  # replaced by one norm per output stage
        for i, stage in enumerate(self.backbone.layers):
            blocks = []
            for j, block in enumerate(stage.blocks):
                mixer = None
                if variant != "base":
                    mixer = make_mixer(
                        variant,
                        spec.dims[i],
                        spec.heads[i],
                        source="self",
                        layout="swin",
                        window=WINDOW,
                        sr_ratio=sr_ratio,
                        moh_split=(spec.moh_shared[i], spec.moh_top_k[i]),
                    )
                blocks.append(SwinBlock(block, mixer, WINDOW, 0 if j % 2 == 0 else WINDOW // 2))
            stage.blocks = nn.Sequential(*blocks)
        self.out_norms = nn.ModuleList(nn.LayerNorm(d) for d in spec.dims)

    @property
    def dims(self) -> Tuple[int, int, int, int]:
        return self.spec.dims

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.backbone.patch_embed(x)  # (B, H/4, W/4, C)
        features = []
        for stage, norm in zip(self.backbone.layers, self.out_norms, strict=True):
            x = stage(x)
            features.append(norm(x).permute(0, 3, 1, 2).contiguous())
        return features


class ImageNormalize(nn.Module):
    """RGB in [0, 1] -> ImageNet mean/std normalised (buffers, so every backend gets it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def check_input(x: torch.Tensor, multiple: int = 32) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB batch (N, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(f"input height and width must be multiples of {multiple}, got {x.shape[-2]}x{x.shape[-1]}")


def swin_network_spec(network: str, build: NetworkBuilder) -> NetworkSpec:
    """What PixelFormer and NeWCRFs share: the KB crop, metres, a head that scales to the largest depth."""
    return NetworkSpec(
        network=network,
        input_hw=(352, 1216),
        output_unit="m",
        to_metres=1.0,
        max_depth_m=80.0,
        output_scale_in_graph=True,  # bins up to max depth (PixelFormer), sigmoid x max depth (NeWCRFs)
        height_ok=multiple_of_32,
        width_ok=multiple_of_32,
        size_rule="each side must be a multiple of 32",
        encoder_prefix="backbone.",
        feature_layers=tuple(f"backbone.out_norms.{i}" for i in range(4)),
        int8_keep_fp32=(),
        torch_channels_last=False,  # not faster for the Swin networks (docs/bench/backends.md)
        build=build,
    )
