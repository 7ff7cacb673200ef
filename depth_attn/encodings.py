"""Camera pixel encodings (the ROS ``sensor_msgs/Image`` names) -> HxWx3 uint8 RGB, in numpy.

No ROS here: the conversion module of ``depth_attn.ros`` hands the message's fields to these
functions. Views over the message buffer are taken without copies where the layout allows (rgb8
with a padded row ``step`` is a strided view; rgb8 packed is the buffer itself).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, Optional

import cv2
import numpy as np


class EncodingError(ValueError):
    """A frame that cannot be read: unknown encoding, sizes that do not match its data."""


@dataclass(frozen=True)
class PixelLayout:
    dtype: str  # numpy dtype of one channel value
    channels: int  # values per pixel (yuv422: 2 bytes per pixel)


# The encodings the depth node accepts as camera input.
LAYOUTS: Dict[str, PixelLayout] = {
    "rgb8": PixelLayout("u1", 3),
    "bgr8": PixelLayout("u1", 3),
    "rgba8": PixelLayout("u1", 4),
    "bgra8": PixelLayout("u1", 4),
    "mono8": PixelLayout("u1", 1),
    "mono16": PixelLayout("u2", 1),
    "yuv422": PixelLayout("u1", 2),  # UYVY byte order (ROS's name)
    "yuv422_yuy2": PixelLayout("u1", 2),  # YUYV byte order
}
SUPPORTED_ENCODINGS = tuple(LAYOUTS)

# Depth images (REP 118): 32FC1 metres, 16UC1 millimetres.
DEPTH_LAYOUTS: Dict[str, PixelLayout] = {"32FC1": PixelLayout("f4", 1), "16UC1": PixelLayout("u2", 1)}

_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
}


def pixel_view(
    data, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False,
    layouts: Optional[Dict[str, PixelLayout]] = None,
) -> np.ndarray:
    """The pixels of a raw image buffer as (H, W, C) (or (H, W) for one channel), no copy unless the
    byte order must be swapped. Raises ``EncodingError`` for anything inconsistent."""
    layouts = LAYOUTS if layouts is None else layouts
    layout = layouts.get(encoding)
    if layout is None:
        raise EncodingError(f"unsupported encoding {encoding!r}; supported: {', '.join(layouts)}")
    if width <= 0 or height <= 0:
        raise EncodingError(f"image has a zero size: {width}x{height}")
    dtype = np.dtype(layout.dtype)
    row_bytes = width * layout.channels * dtype.itemsize
    if step < row_bytes:
        raise EncodingError(f"step {step} is shorter than one row of {width} {encoding} pixels ({row_bytes} bytes)")
    if step % dtype.itemsize:
        raise EncodingError(f"step {step} is not a multiple of the {dtype.itemsize}-byte sample size")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != step * height:
        raise EncodingError(
            f"data has {buf.size} bytes; {width}x{height} {encoding} with step {step} needs {step * height}")
    swap = dtype.itemsize > 1 and bool(is_bigendian) != (sys.byteorder == "big")
    shape = (height, width, layout.channels) if layout.channels > 1 else (height, width)
    strides = (step, layout.channels * dtype.itemsize, dtype.itemsize)[: len(shape)]
    if not swap:
        return np.ndarray(shape, dtype=dtype, buffer=buf, strides=strides)
    swapped = np.ndarray(shape, dtype=dtype.newbyteorder(), buffer=buf, strides=strides)
    return swapped.astype(dtype)


def to_rgb(data, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False) -> np.ndarray:
    """Any supported camera encoding -> HxWx3 uint8 RGB (rgb8 packed: the buffer itself, read-only)."""
    pixels = pixel_view(data, encoding, width, height, step, is_bigendian)
    if encoding == "rgb8":
        return pixels
    if encoding == "mono16":
        pixels = (pixels // 257).astype(np.uint8)  # 65535 -> 255, as cv_bridge/rosbags-image scale it
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)
    return cv2.cvtColor(pixels, _TO_RGB[encoding])


def to_depth(data, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False) -> np.ndarray:
    """A depth image (REP 118) -> float32 metres, NaN = none: 32FC1 (metres; in host byte order a
    read-only view of the buffer) or 16UC1 (millimetres, 0 = none)."""
    if encoding not in DEPTH_LAYOUTS:
        raise EncodingError(f"not a depth image: encoding {encoding!r} (expected 32FC1 or 16UC1)")
    pixels = pixel_view(data, encoding, width, height, step, is_bigendian, layouts=DEPTH_LAYOUTS)
    if encoding == "32FC1":
        return pixels
    depth = pixels.astype(np.float32) * np.float32(1e-3)
    depth[pixels == 0] = np.nan
    return depth


def decode_compressed(data, fmt: str = "") -> np.ndarray:
    """JPEG or PNG bytes -> HxWx3 uint8 RGB (``fmt``, the CompressedImage's format string, is only
    used in the error message: the bytes say what they are)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise EncodingError("compressed image has no data")
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise EncodingError(f"cannot decode compressed image ({fmt or 'unknown format'}, {buf.size} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> bytes:
    """HxWx3 uint8 RGB -> JPEG or PNG bytes."""
    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt.lower())
    if ext is None:
        raise EncodingError(f"unsupported compressed format {fmt!r}; use jpeg or png")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise EncodingError(f"cannot encode image as {fmt}")
    return encoded.tobytes()


def from_rgb(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """HxWx3 uint8 RGB -> the packed pixels of ``encoding`` (for publishers and tests)."""
    if encoding == "rgb8":
        return np.ascontiguousarray(rgb)
    if encoding == "bgr8":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if encoding == "rgba8":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    if encoding == "bgra8":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    if encoding == "mono8":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if encoding == "mono16":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * np.uint16(257)
    if encoding in ("yuv422", "yuv422_yuy2"):
        return _rgb_to_yuv422(rgb, uyvy=encoding == "yuv422")
    raise EncodingError(f"unsupported encoding {encoding!r}")


def _rgb_to_yuv422(rgb: np.ndarray, uyvy: bool) -> np.ndarray:
    """BT.601 limited-range 4:2:2 (chroma averaged over each pixel pair), (H, W, 2) uint8."""
    h, w = rgb.shape[:2]
    if w % 2:
        raise EncodingError("yuv422 needs an even width")
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV).astype(np.float32)  # full-range Y, U, V
    y = yuv[..., 0] * (219.0 / 255.0) + 16.0
    u = (yuv[..., 1] - 128.0) * (224.0 / 255.0) + 128.0
    v = (yuv[..., 2] - 128.0) * (224.0 / 255.0) + 128.0
    u2 = (u[:, 0::2] + u[:, 1::2]) / 2.0
    v2 = (v[:, 0::2] + v[:, 1::2]) / 2.0
    out = np.empty((h, w, 2), dtype=np.uint8)
    luma = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    chroma = np.empty((h, w), dtype=np.float32)
    chroma[:, 0::2], chroma[:, 1::2] = u2, v2
    chroma_u8 = np.clip(np.rint(chroma), 0, 255).astype(np.uint8)
    if uyvy:
        out[..., 0], out[..., 1] = chroma_u8, luma
    else:
        out[..., 0], out[..., 1] = luma, chroma_u8
    return out
