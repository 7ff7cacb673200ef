"""The one colour mapping of depth (node, CLI, reports): grey = 255 (1 - (d - min) / span), clipped,
through a colour table; invalid pixels (NaN, <= 0, inf) black. Three OpenCV passes over reused
buffers, since a node colours every frame (``imageio.colorize_depth`` is the one-off wrapper)."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

_TINY = float(np.finfo(np.float32).tiny)
_HUGE = float(np.finfo(np.float32).max)


def all_in_range(values: np.ndarray, low_exclusive: float = 0.0, high_inclusive: float = np.inf) -> bool:
    """True when every value is finite and in (low, high]: one OpenCV pass (NaN fails)."""
    low = _TINY if low_exclusive == 0.0 else float(np.nextafter(np.float32(low_exclusive), np.float32(np.inf)))
    high = _HUGE if not np.isfinite(high_inclusive) else float(np.nextafter(np.float32(high_inclusive),
                                                                              np.float32(np.inf)))
    return bool(cv2.checkRange(values, True, low, high)[0])


class DepthColorizer:
    """Colours depths in [min_depth, max_depth] metres, near = warm; keep one per stream."""

    def __init__(self, min_depth: float, max_depth: float, colormap: int = cv2.COLORMAP_TURBO) -> None:
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        span = max(self.max_depth - self.min_depth, 1e-6)
        # grey = 255 (1 - (d - min) / span), truncated like colorize_depth's astype(uint8): OpenCV rounds,
        # so shift by (almost) half a step. d < min saturates at 255; d > max is clamped to max first.
        self._alpha = -255.0 / span
        self._beta = 255.0 + 255.0 * self.min_depth / span - 0.499
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        self.table = cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB)  # (256, 1, 3) RGB
        self._buffers: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def colorize(self, depth_m: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """(H, W) float32 metres -> (H, W, 3) uint8 RGB, near = warm, invalid (NaN, <= 0, inf) black.
        ``out``: an (H, W, 3) uint8 buffer to write into."""
        depth = depth_m.astype(np.float32, copy=False)
        if self._buffers is None or self._buffers[0].shape != depth.shape:
            self._buffers = (np.empty(depth.shape, np.float32), np.empty(depth.shape, np.uint8))
        clamped, gray = self._buffers
        cv2.min(depth, self.max_depth, dst=clamped)
        cv2.convertScaleAbs(clamped, dst=gray, alpha=self._alpha, beta=self._beta)
        if out is None:
            out = np.empty(depth.shape + (3,), np.uint8)
        cv2.applyColorMap(gray, self.table, dst=out)
        if not all_in_range(depth):
            out[~((depth > 0) & (depth < np.inf))] = 0
        return out
