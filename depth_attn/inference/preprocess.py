"""The one preprocessing: RGB uint8 HxWx3 at any size -> (1, 3, H, W) float32 in [0, 1] at the
network's input size (bilinear resize, no mean/std: the networks normalise inside if they need to).
Inference and int8 calibration both use it, so a calibrated engine sees what it will run on."""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {shape} {dtype}")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"image too small: {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb


def preprocess_rgb(rgb: np.ndarray, input_hw: Tuple[int, int]) -> np.ndarray:
    check_rgb(rgb)
    h, w = input_hw
    same = rgb.shape[:2] == (int(h), int(w))
    resized = rgb if same else cv2.resize(rgb, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
    batch = resized.transpose(2, 0, 1)[None].astype(np.float32)
    batch *= np.float32(1.0 / 255.0)
    return batch
