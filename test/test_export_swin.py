"""ONNX Runtime vs PyTorch parity of the tiny PixelFormer and NeWCRFs configurations, base and meta
(placement full). Each is an 80-90 M-parameter network whose export takes 10-20 s here. The
encoder-only and decoder-only meta placements are combinations of the same modules (a meta encoder
with the base decoder, and the reverse): what ONNX export can break is a module's tracing, which
full and base cover, and every placement runs in PyTorch in test_zoo_swin.py."""

from __future__ import annotations

import pytest
from test_export import PARITY_TOLERANCE, export_and_compare

from depth_attn.models import list_configs

SWIN_HW = (64, 192)  # a multiple of 32: Swin's patch size times its three merges
SWIN_CONFIGS = [
    c
    for net in ("pixelformer", "newcrfs")
    for c in list_configs(net)
    if c.size == "tiny" and c.variant in ("base", "meta") and c.placement == "full"
]


@pytest.mark.parametrize("config", SWIN_CONFIGS, ids=[c.name for c in SWIN_CONFIGS])
def test_tiny_swin_onnx_matches_pytorch(config, tmp_path):
    assert export_and_compare(config, SWIN_HW, tmp_path) <= PARITY_TOLERANCE
