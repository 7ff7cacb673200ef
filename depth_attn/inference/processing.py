"""The one pre- and post-processing, without the backends (training's validation and int8 calibration
import it alone).

Pre: RGB uint8 HxWx3 at any size -> (1, 3, H, W) float32 in [0, 1] at the network's input size
(bilinear resize, no mean/std: the networks normalise inside if they need to), through the canonical
camera when there is one. Inference and int8 calibration both use it, so a calibrated engine sees what
it will run on. Post: the network's output -> metres at the camera's size, clamped."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from depth_attn.inference.canonical import CanonicalView


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


def preprocess_view(rgb: np.ndarray, input_hw: Tuple[int, int], view: Optional[CanonicalView] = None) -> np.ndarray:
    """``preprocess_rgb`` of the frame as ``view`` maps it into the network input (None or a stretch:
    the whole frame resized)."""
    if view is None or view.is_stretch:
        return preprocess_rgb(rgb, input_hw)
    return preprocess_rgb(view.to_input(check_rgb(rgb)), input_hw)


def depth_from_output(
    raw: np.ndarray,
    to_metres: float,
    camera_hw: Tuple[int, int],
    min_depth: float,
    max_depth: float,
    out: Optional[np.ndarray] = None,
    view: Optional[CanonicalView] = None,
) -> np.ndarray:
    """Network output -> metres at the camera's size, clamped. The unit scale is applied at the
    network's (smaller) size, where it is the same multiply on a quarter of the pixels. ``out``:
    a float32 HxW array to write into (e.g. an outgoing message's buffer), saving a copy. ``view``:
    the canonical-camera mapping the input was made with (``canonical.py``): its padding is cut away
    in the same single resampling, and what its crop cut off is NaN. Inference and training
    validation both use it."""
    depth = raw.reshape(raw.shape[-2], raw.shape[-1])
    depth = np.multiply(depth, np.float32(to_metres), dtype=np.float32)
    h, w = camera_hw
    if out is not None and (out.shape != (h, w) or out.dtype != np.float32 or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 {h}x{w} array, got {out.dtype} {out.shape}")
    if view is None or view.is_stretch:
        depth = cv2.resize(depth, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)
    else:
        if view.camera_wh != (w, h):
            raise ValueError(f"the canonical view is for {view.camera_wh[0]}x{view.camera_wh[1]}, not {w}x{h}")
        depth = cv2.warpAffine(depth, view.input_to_camera(depth.shape), (w, h), dst=out,
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        if view.cropped:
            (r0, r1), (c0, c1) = view.seen()
            depth[:r0] = np.nan
            depth[r1:] = np.nan
            depth[:, :c0] = np.nan
            depth[:, c1:] = np.nan
    np.clip(depth, min_depth, max_depth, out=depth)
    return depth
