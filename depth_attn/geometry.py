"""Camera geometry: intrinsics under resize/crop, depth -> points, points -> pixels.

Conventions: pixel (u, v) = (column, row) with integer coordinates at pixel centres, camera optical
frame (REP 103): z forward, x right, y down, metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_matrix(cls, K: Union[np.ndarray, Sequence[float]]) -> Intrinsics:
        """From a 3x3 K, a 3x4 P (its left 3x3 is used) or the 9 / 12 row-major values of one."""
        m = np.asarray(K, dtype=np.float64)
        if m.size in (9, 12):
            m = m.reshape(3, -1)
        if m.shape not in ((3, 3), (3, 4)):
            raise ValueError(f"intrinsics must be a 3x3 or 3x4 matrix, got shape {m.shape}")
        return cls.checked(m[0, 0], m[1, 1], m[0, 2], m[1, 2])

    @classmethod
    def checked(cls, fx: float, fy: float, cx: float, cy: float) -> Intrinsics:
        values = np.array([fx, fy, cx, cy], dtype=np.float64)
        if not np.all(np.isfinite(values)) or fx <= 0 or fy <= 0:
            raise ValueError(f"invalid intrinsics fx={fx} fy={fy} cx={cx} cy={cy}: focal lengths must be > 0")
        return cls(float(fx), float(fy), float(cx), float(cy))

    @classmethod
    def parse(cls, text: str) -> Intrinsics:
        """From "fx,fy,cx,cy"."""
        parts = [p for p in text.replace(" ", "").split(",") if p]
        if len(parts) != 4:
            raise ValueError(f"intrinsics must be 'fx,fy,cx,cy', got {text!r}")
        return cls.checked(*(float(p) for p in parts))

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def resized(self, src_wh: Tuple[int, int], dst_wh: Tuple[int, int]) -> Intrinsics:
        """The intrinsics of the image resized from ``src_wh`` to ``dst_wh`` (pixel centres aligned,
        as OpenCV's and PyTorch's align_corners=False resizes do)."""
        sx = dst_wh[0] / src_wh[0]
        sy = dst_wh[1] / src_wh[1]
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5)

    def cropped(self, left: int, top: int) -> Intrinsics:
        """The intrinsics of the image cropped to start at column ``left``, row ``top``."""
        return Intrinsics(self.fx, self.fy, self.cx - left, self.cy - top)

    def strided(self, stride: int) -> Intrinsics:
        """The intrinsics of the grid that keeps every ``stride``-th pixel from (0, 0)."""
        return Intrinsics(self.fx / stride, self.fy / stride, self.cx / stride, self.cy / stride)


@lru_cache(maxsize=16)
def ray_grid(height: int, width: int, stride: int, k: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """(x/z, y/z) for every kept pixel, cached: the per-frame work is then two multiplies."""
    u = np.arange(0, width, stride, dtype=np.float32)
    v = np.arange(0, height, stride, dtype=np.float32)
    rx = ((u - np.float32(k.cx)) / np.float32(k.fx))[None, :]
    ry = ((v - np.float32(k.cy)) / np.float32(k.fy))[:, None]
    rx = np.ascontiguousarray(np.broadcast_to(rx, (v.size, u.size)))
    ry = np.ascontiguousarray(np.broadcast_to(ry, (v.size, u.size)))
    rx.setflags(write=False)
    ry.setflags(write=False)
    return rx, ry


@lru_cache(maxsize=16)
def ray_lengths(height: int, width: int, stride: int, k: Intrinsics) -> np.ndarray:
    """The distance from the camera of every kept pixel's point at depth 1 (range = depth x this)."""
    rx, ry = ray_grid(height, width, stride, k)
    lengths = np.sqrt(np.float32(1.0) + rx * rx + ry * ry)
    lengths.setflags(write=False)
    return lengths


def valid_depth_mask(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    return np.isfinite(depth) & (depth > min_depth) & (depth <= max_depth)


def depth_to_points(
    depth: np.ndarray,
    K: Union[Intrinsics, np.ndarray],
    organized: bool = True,
    stride: int = 1,
    min_depth: float = 0.0,
    max_depth: float = np.inf,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Back-project a depth image (metres along z) with the intrinsics of THAT image.

    organized=True: (H', W', 3) float32 with NaN where the depth is invalid (H' = ceil(H / stride)).
    organized=False: (N, 3) float32 of the valid points only, in row-major pixel order.
    ``out`` (organised form only) is an (H', W', 3) float32 buffer to write into.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be 2-D (H, W), got shape {depth.shape}")
    if stride < 1:
        raise ValueError("stride must be >= 1")
    k = K if isinstance(K, Intrinsics) else Intrinsics.from_matrix(K)
    h, w = depth.shape
    rx, ry = ray_grid(h, w, stride, k)
    z = depth[::stride, ::stride].astype(np.float32, copy=False)
    valid = valid_depth_mask(z, min_depth, max_depth)
    if not organized:
        zv = z[valid]
        return np.stack([rx[valid] * zv, ry[valid] * zv, zv], axis=-1)
    if out is None:
        out = np.empty(z.shape + (3,), dtype=np.float32)
    zn = np.where(valid, z, np.float32(np.nan))
    np.multiply(rx, zn, out=out[..., 0])
    np.multiply(ry, zn, out=out[..., 1])
    out[..., 2] = zn
    return out


def project_points(points: np.ndarray, K: Union[Intrinsics, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame points (..., 3) -> (u, v, z) with u, v continuous pixel coordinates."""
    k = K if isinstance(K, Intrinsics) else Intrinsics.from_matrix(K)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return k.fx * x / z + k.cx, k.fy * y / z + k.cy, z
