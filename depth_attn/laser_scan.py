"""A planar laser scan from a depth image, as depthimage_to_laserscan builds one, without ROS.

The scan lies in the camera's horizontal plane (the optical frame's x-z plane). Its beams are
counter-clockwise seen from above, left positive (REP 103, a laser frame with x forward, y left,
z up beside the optical one); they span the camera's horizontal field of view between the centres
of its first and last columns: ``angle_max = atan(cx / fx)`` (column 0, left) to
``angle_min = -atan((W - 1 - cx) / fx)``, one beam per column (or per ``stride`` columns) at equal
angle steps. A beam's range, per row of the ``scan_height`` rows centred on the optical centre's
row, is where its ray meets the surface between the two columns around it (interpolated in inverse
depth: exact for a planar surface); the beam keeps the nearest of those rows' ranges within
[range_min, range_max]. Where the two columns differ by more than ``EDGE_RATIO`` in depth (an
object's edge, not one surface) the beam takes the nearer column's range: an obstacle is never
shrunk. Beams with no valid depth are NaN; beams whose every valid range is beyond range_max are
+inf and those only below range_min -inf (REP 117), so a costmap can clear on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple

import numpy as np

from depth_attn.geometry import Intrinsics

EDGE_RATIO = 1.05  # two columns further apart in depth than this are two surfaces


@dataclass(frozen=True)
class ScanLayout:
    """The beams of a scan: their angles and where each falls between two columns."""

    angle_min: float
    angle_max: float
    angle_increment: float
    angles: np.ndarray  # (N,) radians, left positive
    left: np.ndarray  # (N,) int: the column at or left of each beam's continuous column
    frac: np.ndarray  # (N,) in [0, 1]: how far the beam lies from ``left`` towards ``left + 1``
    slope: np.ndarray  # (N,) x/z of each beam's ray, x right (optical frame)


@lru_cache(maxsize=16)
def scan_layout(width: int, k: Intrinsics, stride: int = 1) -> ScanLayout:
    """The beams of a ``width``-column image with intrinsics ``k``: ceil(width / stride) of them."""
    if width < 2:
        raise ValueError(f"a scan needs an image at least 2 columns wide, got {width}")
    if stride < 1:
        raise ValueError("stride must be >= 1")
    angle_max = float(np.arctan2(k.cx, k.fx))
    angle_min = -float(np.arctan2(width - 1 - k.cx, k.fx))
    beams = -(-width // stride)
    increment = (angle_max - angle_min) / (beams - 1) if beams > 1 else 0.0
    angles = angle_min + increment * np.arange(beams, dtype=np.float64)
    slope = -np.tan(angles)  # left positive angle = negative x
    column = np.clip(k.cx + k.fx * slope, 0.0, width - 1.0)
    left = np.minimum(np.floor(column).astype(np.int64), width - 2)
    frac = column - left
    for array in (angles, left, frac, slope):
        array.setflags(write=False)
    return ScanLayout(angle_min, angle_max, increment, angles, left, frac, slope)


def scan_rows(height: int, cy: float, scan_height: int) -> Tuple[int, int]:
    """[first, last) of the ``scan_height`` rows centred on the optical centre's row ``cy``
    (depthimage_to_laserscan's offset: int(cy - scan_height / 2)), clipped to the image."""
    if scan_height < 1:
        raise ValueError("scan_height must be >= 1")
    first = int(cy - scan_height / 2.0)
    first = min(max(first, 0), max(height - scan_height, 0))
    return first, min(first + scan_height, height)


def depth_to_scan(depth: np.ndarray, k: Intrinsics, scan_height: int = 1, range_min: float = 0.0,
                  range_max: float = np.inf, stride: int = 1) -> Tuple[ScanLayout, np.ndarray]:
    """(the beams, their ranges in metres as float32) of ``depth`` (H, W metres along z, NaN or
    <= 0 = no depth) with the intrinsics ``k`` of that image; see the module docstring."""
    if depth.ndim != 2:
        raise ValueError(f"depth must be 2-D (H, W), got shape {depth.shape}")
    if not 0.0 <= range_min < range_max:
        raise ValueError(f"need 0 <= range_min < range_max, got {range_min}, {range_max}")
    layout = scan_layout(depth.shape[1], k, stride)
    first, last = scan_rows(depth.shape[0], k.cy, scan_height)
    band = depth[first:last].astype(np.float64)
    band = np.where(np.isfinite(band) & (band > 0.0), band, np.nan)
    z0, z1 = band[:, layout.left], band[:, layout.left + 1]
    # each column's own horizontal range, for a beam that takes one column instead of the surface
    column_norm = np.sqrt(1.0 + ((np.arange(depth.shape[1]) - k.cx) / k.fx) ** 2)
    r0, r1 = z0 * column_norm[layout.left], z1 * column_norm[layout.left + 1]
    t = layout.frac
    with np.errstate(invalid="ignore", divide="ignore"):
        # the ray meets the segment between the two columns' points: inverse depth is linear in u there
        ranges = np.sqrt(1.0 + layout.slope**2) / ((1.0 - t) / z0 + t / z1)
        edge = np.fmax(z0, z1) > EDGE_RATIO * np.fmin(z0, z1)
    nearer_column = np.where(t <= 0.5, r0, r1)  # one column without depth: the other, where it is the nearer
    ranges = np.where(np.isnan(ranges), nearer_column, ranges)
    ranges = np.where(edge, np.fmin(r0, r1), ranges)
    in_range = (ranges >= range_min) & (ranges <= range_max)
    nearest = np.where(in_range, ranges, np.inf).min(axis=0)
    out = np.where(np.isfinite(nearest), nearest, np.nan)
    with np.errstate(invalid="ignore"):
        beyond = np.any(ranges > range_max, axis=0)
        short = np.any(ranges < range_min, axis=0)
    out = np.where(np.isnan(out) & beyond, np.inf, out)
    out = np.where(np.isnan(out) & short, -np.inf, out)
    return layout, out.astype(np.float32)


def horizontal_fov(width: int, k: Intrinsics) -> float:
    """The angle between the rays through the centres of the first and last columns, radians."""
    return float(np.arctan2(k.cx, k.fx) + np.arctan2(width - 1 - k.cx, k.fx))
