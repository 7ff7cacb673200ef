"""What a network is, declared once beside its code (as timm registers a model with its pretrained
config): each network module (``meter.py``, ``pixelformer.py``, ``newcrfs.py``) holds a ``SPEC``, and
every consumer (registry, estimator, weights, artefacts, training) reads it through ``network_spec``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from torch import nn

# build(size, encoder_mixer, decoder_mixer, variant, output_scale, options) -> an untrained network
NetworkBuilder = Callable[[str, str, str, str, float, Dict[str, object]], nn.Module]


@dataclass(frozen=True)
class NetworkSpec:
    network: str
    input_hw: Tuple[int, int]  # the study's KITTI input (H, W), used where no checkpoint says otherwise
    output_unit: str  # what the output counts in: "dm" (METER's KITTI checkpoints), "m"
    to_metres: float  # output x to_metres = metres
    max_depth_m: float  # the largest depth the network is trained for (KITTI: 80 m)
    # True where the graph itself scales its output by the largest depth (sigmoid x max depth, bins):
    # then that scale is a build input and part of the exported file's identity; False where the graph
    # never sees it (METER), so a different clamp is the same file.
    output_scale_in_graph: bool
    height_ok: Callable[[int], bool]  # the valid-input-size rule, per side
    width_ok: Callable[[int], bool]
    size_rule: str  # that rule in words, for error messages
    encoder_prefix: str  # parameter/module name prefix of the encoder ("encoder.", "backbone.")
    feature_layers: Tuple[str, ...]  # the encoder stage outputs feature distillation compares
    int8_keep_fp32: Tuple[str, ...]  # ONNX node-name prefixes int8 quantisation leaves in fp32
    torch_channels_last: bool  # the PyTorch backend runs it in NHWC (faster for convolutional networks)
    build: NetworkBuilder

    def input_size_ok(self, input_hw: Tuple[int, int]) -> bool:
        return self.height_ok(int(input_hw[0])) and self.width_ok(int(input_hw[1]))


def network_spec(network: str) -> NetworkSpec:
    """The spec of ``network`` (its module ``depth_attn.models.<network>`` is imported on first use)."""
    from depth_attn.models.registry import NETWORKS, ConfigError

    if network not in NETWORKS:
        raise ConfigError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    return importlib.import_module(f"depth_attn.models.{network}").SPEC


def multiple_of_32(side: int) -> bool:
    """The Swin networks' rule: four 2x2 patch merges after a 4x4 patch embedding."""
    return side >= 32 and side % 32 == 0
