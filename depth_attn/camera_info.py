"""The one CameraInfo reader (no ROS import): a sensor_msgs/CameraInfo's fields -> the checks a
depth node makes and the ``Intrinsics`` of the images it describes, with binning and the region of
interest applied as ``image_geometry.PinholeCameraModel`` does. Online (depth_attn.ros.convert, rclpy
messages) and offline (depth_attn.data.frames, rosbags messages) read a camera info through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from depth_attn.geometry import Intrinsics

# A focal length outside [FOCAL_RANGE[0], FOCAL_RANGE[1]] x the image's larger side is refused: 0.01x
# would be a field of view beyond 179 degrees, 100x one below 0.6 degrees; 1e-300 or 1e300 are not cameras.
FOCAL_RANGE = (0.01, 100.0)


class BadCameraInfo(ValueError):
    """A camera info that cannot be used; ``kind`` names what is wrong (its warnings are rate-limited by it)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CameraInfoFields:
    """The fields of a sensor_msgs/CameraInfo this reader uses; ``roi``: (x_offset, y_offset, width, height)."""

    width: int
    height: int
    k: Sequence[float]
    p: Sequence[float]
    d: Sequence[float] = ()
    r: Sequence[float] = ()
    binning_x: int = 0
    binning_y: int = 0
    roi: Tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def of(cls, msg) -> CameraInfoFields:
        """From a CameraInfo message of any library that names its fields as the ROS 2 message does
        (rclpy's, rosbags')."""
        roi = msg.roi
        return cls(int(msg.width), int(msg.height), msg.k, msg.p, msg.d, msg.r, int(msg.binning_x),
                   int(msg.binning_y), (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))

    @property
    def binning(self) -> Tuple[int, int]:
        """(x, y); 0 means 1, as image_geometry reads it."""
        return max(1, self.binning_x), max(1, self.binning_y)


def image_size(info: CameraInfoFields) -> Tuple[int, int]:
    """(width, height) of the images ``info`` describes, as image_geometry reads it: the roi when one is
    set, divided by the binning."""
    bx, by = info.binning
    _, _, roi_w, roi_h = info.roi
    w, h = (roi_w, roi_h) if roi_w and roi_h else (info.width, info.height)
    return w // bx, h // by


def intrinsics(info: CameraInfoFields, rectified: bool = True) -> Intrinsics:
    """fx, fy, cx, cy from P (rectified images, as depth_image_proc projects) or K, with the binning and
    the roi applied as image_geometry does (f / binning, (c - roi offset) / binning). ``BadCameraInfo``
    naming the matrix when it is all zeros, not finite, or its focal lengths are not positive or absurd
    for the image size."""
    name, values = ("P", info.p) if rectified else ("K", info.k)
    m = np.asarray(values, dtype=np.float64)
    if m.size not in (9, 12) or not np.any(m):
        raise BadCameraInfo(f"{name} zeros", f"camera_info {name} is all zeros (an uncalibrated camera?); calibrate it "
                            "or publish the intrinsics")
    if not np.all(np.isfinite(m)):
        raise BadCameraInfo(f"{name} not finite",
                            f"camera_info {name} has non-finite values (NaN or inf): {m.tolist()}")
    m = m.reshape(3, -1)
    fx, fy, cx, cy = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    if fx <= 0 or fy <= 0:
        raise BadCameraInfo(f"{name} focal sign", f"camera_info {name} has focal lengths fx={fx:g} fy={fy:g}: they "
                            "must be > 0")
    (bx, by), (x0, y0, _, _) = info.binning, info.roi
    k = Intrinsics(float(fx / bx), float(fy / by), float((cx - x0) / bx), float((cy - y0) / by))
    w, h = image_size(info)
    side = max(w, h)
    if side and not all(FOCAL_RANGE[0] * side <= f <= FOCAL_RANGE[1] * side for f in (k.fx, k.fy)):
        raise BadCameraInfo(f"{name} focal absurd", f"camera_info {name} has focal lengths fx={k.fx:g} fy={k.fy:g} px "
                            f"for a {w}x{h} image: outside {FOCAL_RANGE[0]:g}..{FOCAL_RANGE[1]:g} x {side} px")
    if side and not all(abs(c) <= 10 * side for c in (k.cx, k.cy)):
        raise BadCameraInfo(f"{name} centre absurd", f"camera_info {name} has its principal point at ({k.cx:g}, "
                            f"{k.cy:g}), far outside the {w}x{h} image")
    return k


SAME_VIEW_TOLERANCE = 0.01  # width and height scaled alike within 1 %: one view at another resolution


def same_view(info_wh: Tuple[int, int], image_wh: Tuple[int, int]) -> bool:
    """Whether an image of ``image_wh`` is the camera info's ``info_wh`` view at another resolution (a
    driver publishing binned or resized frames): both sides scaled by one factor, within 1 %. Another
    aspect is another camera (or a crop): scaling the intrinsics to it would stretch them unevenly."""
    sx, sy = image_wh[0] / info_wh[0], image_wh[1] / info_wh[1]
    return abs(sx - sy) <= SAME_VIEW_TOLERANCE * max(sx, sy)


def intrinsics_for_image(info: CameraInfoFields, image_wh: Optional[Tuple[int, int]] = None) -> Intrinsics:
    """The intrinsics of an image of ``image_wh`` pixels that ``info`` describes (P, binning and roi
    applied), scaled when the image is the same view at another resolution (as the depth node pairs
    them); ``BadCameraInfo`` ("aspect") when it has another aspect."""
    k = intrinsics(info, rectified=True)
    info_wh = image_size(info)
    if image_wh is None or tuple(image_wh) == info_wh:
        return k
    if not same_view(info_wh, tuple(image_wh)):
        raise BadCameraInfo("aspect", f"camera_info describes a {info_wh[0]}x{info_wh[1]} image but the image is "
                            f"{image_wh[0]}x{image_wh[1]}, another aspect (not one view at another resolution): its "
                            "intrinsics do not fit it")
    return k.resized(info_wh, tuple(image_wh))


def check(info: CameraInfoFields) -> Intrinsics:
    """The checks a depth node makes on every camera info before using it: a size, finite K, D, R
    and P, a roi and binning inside the image, and usable intrinsics from P. Returns those intrinsics;
    ``BadCameraInfo`` says what is wrong."""
    if info.width == 0 or info.height == 0:
        raise BadCameraInfo("size", f"camera_info has a zero size {info.width}x{info.height}")
    for name in ("k", "d", "r", "p"):
        values = np.asarray(getattr(info, name), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise BadCameraInfo(f"{name.upper()} not finite", f"camera_info {name.upper()} has non-finite values "
                                f"(NaN or inf): {values.tolist()}; it would be passed on to depth/camera_info")
    if not np.any(np.asarray(info.k)):
        raise BadCameraInfo("K zeros", "camera_info K is all zeros")
    x0, y0, roi_w, roi_h = info.roi
    # all zeros: the full image (as image_geometry reads it); anything else must be a non-empty window inside it
    if any(info.roi) and (not roi_w or not roi_h or x0 + roi_w > info.width or y0 + roi_h > info.height):
        raise BadCameraInfo("roi", f"camera_info roi {roi_w}x{roi_h}+{x0}+{y0} lies "
                            f"outside its {info.width}x{info.height} image or is empty")
    bx, by = info.binning
    if bx > info.width or by > info.height:
        raise BadCameraInfo("binning", f"camera_info binning {info.binning_x}x{info.binning_y} exceeds its "
                            f"{info.width}x{info.height} image")
    return intrinsics(info, rectified=True)
