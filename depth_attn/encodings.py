"""Camera pixel encodings (the ROS ``sensor_msgs/Image`` names) -> HxWx3 uint8 RGB, in numpy.

No ROS here: the conversion module of ``depth_attn.ros`` hands the message's fields to these
functions. Views over the message buffer are taken without copies where the layout allows (rgb8
with a padded row ``step`` is a strided view; rgb8 packed is the buffer itself).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import cv2
import numpy as np


class EncodingError(ValueError):
    """A frame that cannot be read: unknown encoding, sizes that do not match its data."""


class ImageTooLargeError(EncodingError):
    """An image whose header declares more pixels than the limit: refused before its pixels are decoded."""


# The most pixels an input image may have (the node's ``max_image_pixels``, the CLIs' --max-image-pixels):
# a 48 MP phone sensor passes, an 8000x8000 (64 MP) image does not. 0 = no limit.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


def check_image_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """``ImageTooLargeError`` where ``width x height`` is over ``max_pixels`` (0: no limit)."""
    if max_pixels and width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of {max_pixels} pixels "
            f"({max_pixels / 1e6:g} MP, max_image_pixels); refused before decoding")


def compressed_image_size(data) -> Tuple[int, int]:
    """(width, height) of compressed image bytes from their header alone, no pixel decoded: PNG's IHDR
    and JPEG's start-of-frame read here, any other format by Pillow (which reads headers lazily)."""
    head = bytes(memoryview(data)[:8])
    if head == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24:
            raise EncodingError(f"cannot decode compressed image: a PNG of {len(data)} bytes has no header")
        width, height = struct.unpack(">II", bytes(memoryview(data)[16:24]))
        return width, height
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(memoryview(data))
    return _pillow_size(data)


_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (DHT, JPG, DAC are not)


def _jpeg_size(buf: memoryview) -> Tuple[int, int]:
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            break
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", bytes(buf[pos + 2:pos + 4]))
        if marker in _JPEG_SOF and pos + 9 <= len(buf):
            height, width = struct.unpack(">HH", bytes(buf[pos + 5:pos + 9]))
            return width, height
        pos += 2 + length
    raise EncodingError(f"cannot decode compressed image: a JPEG of {len(buf)} bytes with no frame header")


def _pillow_size(data) -> Tuple[int, int]:
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is the one that applies
            with Image.open(io.BytesIO(data)) as header:
                return header.size
    except Image.DecompressionBombError as exc:  # over Pillow's own 179 MP: over any sane limit too
        raise ImageTooLargeError(f"image header declares too many pixels ({exc}); refused before decoding") from None
    except UnidentifiedImageError:
        raise EncodingError("cannot decode compressed image: no PNG, JPEG or other header Pillow knows "
                            f"({len(data)} bytes)") from None


@dataclass(frozen=True)
class PixelLayout:
    dtype: str  # numpy dtype of one channel value
    channels: int  # values per pixel (yuv422: 2 bytes per pixel)


# The encodings the depth node accepts as camera input (sensor_msgs/image_encodings names; rosbags-image
# reads the same ones the same way). nv12/nv21 hold height x 3/2 rows (the Y plane, then the chroma).
LAYOUTS: Dict[str, PixelLayout] = {
    "rgb8": PixelLayout("u1", 3),
    "bgr8": PixelLayout("u1", 3),
    "rgba8": PixelLayout("u1", 4),
    "bgra8": PixelLayout("u1", 4),
    "rgb16": PixelLayout("u2", 3),
    "bgr16": PixelLayout("u2", 3),
    "rgba16": PixelLayout("u2", 4),
    "bgra16": PixelLayout("u2", 4),
    "mono8": PixelLayout("u1", 1),
    "mono16": PixelLayout("u2", 1),
    "8UC1": PixelLayout("u1", 1),  # grey, as mono8
    "8UC3": PixelLayout("u1", 3),  # no colour order named: taken as rgb8, as rosbags-image does
    "bayer_rggb8": PixelLayout("u1", 1),
    "bayer_bggr8": PixelLayout("u1", 1),
    "bayer_gbrg8": PixelLayout("u1", 1),
    "bayer_grbg8": PixelLayout("u1", 1),
    "bayer_rggb16": PixelLayout("u2", 1),
    "bayer_bggr16": PixelLayout("u2", 1),
    "bayer_gbrg16": PixelLayout("u2", 1),
    "bayer_grbg16": PixelLayout("u2", 1),
    "yuv422": PixelLayout("u1", 2),  # UYVY byte order (ROS's name)
    "uyvy": PixelLayout("u1", 2),
    "yuv422_yuy2": PixelLayout("u1", 2),  # YUYV byte order
    "yuyv": PixelLayout("u1", 2),
    "nv21": PixelLayout("u1", 1),
    "nv12": PixelLayout("u1", 1),
}
SUPPORTED_ENCODINGS = tuple(LAYOUTS)
_PLANAR_420 = {"nv21": cv2.COLOR_YUV2RGB_NV21, "nv12": cv2.COLOR_YUV2RGB_NV12}
_EVEN_WIDTH = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv", "nv21", "nv12")

# Depth images (REP 118): 32FC1 metres, 16UC1 millimetres.
DEPTH_LAYOUTS: Dict[str, PixelLayout] = {"32FC1": PixelLayout("f4", 1), "16UC1": PixelLayout("u2", 1)}

_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "8UC1": cv2.COLOR_GRAY2RGB,
    "bgr16": cv2.COLOR_BGR2RGB,
    "rgba16": cv2.COLOR_RGBA2RGB,
    "bgra16": cv2.COLOR_BGRA2RGB,
    # OpenCV names a Bayer pattern by its second row's first two pixels: ROS's rggb is OpenCV's BG
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
    "bayer_rggb16": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr16": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg16": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg16": cv2.COLOR_BayerGB2RGB,
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


def to_rgb(data, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False,
           max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Any supported camera encoding -> HxWx3 uint8 RGB (rgb8 packed: the buffer itself, read-only).
    16-bit values are scaled to 8 bits as rosbags-image does (x * 255 / 65535, rounded down)."""
    check_image_size(width, height, max_pixels)
    if encoding in _EVEN_WIDTH and width % 2:
        raise EncodingError(f"{encoding} stores chroma for pixel pairs: it needs an even width, got {width}x{height}")
    if encoding in _PLANAR_420:
        # height is the image's: the data holds its Y plane (height rows) then the chroma (height / 2 rows),
        # as cv_bridge reads it. Only the Y plane, or the planes' rows given as the height, do not fit.
        if height % 2:
            raise EncodingError(f"{encoding} (4:2:0) needs an even height, got {width}x{height}")
        size = len(memoryview(data).cast("B"))
        rows = height * 3 // 2
        if size != step * rows:
            hint = " (only the Y plane?)" if size == step * height else ""
            raise EncodingError(f"{encoding} {width}x{height}: data has {size} bytes{hint}; the Y plane and the "
                                f"chroma ({rows} rows of step {step}) need {step * rows}")
        planes = pixel_view(data, encoding, width, rows, step, is_bigendian)
        return cv2.cvtColor(np.ascontiguousarray(planes), _PLANAR_420[encoding])
    if encoding.startswith("bayer_") and (width < 2 or height < 2):
        raise EncodingError(f"{encoding} needs at least 2x2 pixels, got {width}x{height}")
    pixels = pixel_view(data, encoding, width, height, step, is_bigendian)
    if encoding in ("rgb8", "8UC3"):
        return pixels
    if encoding.startswith("bayer_") and pixels.dtype == np.uint16:  # demosaic at 16 bits, as rosbags-image
        return (cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB[encoding]) // 257).astype(np.uint8)
    if pixels.dtype == np.uint16:
        pixels = (pixels // 257).astype(np.uint8)  # 65535 -> 255, as cv_bridge/rosbags-image scale it
        if encoding == "rgb16":
            return pixels
    if encoding == "mono16":
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


def decode_compressed(data, fmt: str = "", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """JPEG or PNG bytes -> HxWx3 uint8 RGB (``fmt``, the CompressedImage's format string, is only
    used in the error message: the bytes say what they are). The size in the header is checked against
    ``max_pixels`` before any pixel is decoded (a small file may decode to gigabytes)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise EncodingError("compressed image has no data")
    if max_pixels:
        check_image_size(*compressed_image_size(buf), max_pixels)
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
    if encoding in ("yuv422", "yuv422_yuy2", "uyvy", "yuyv"):
        return _rgb_to_yuv422(rgb, uyvy=encoding in ("yuv422", "uyvy"))
    if encoding in ("rgb16", "bgr16", "rgba16", "bgra16"):
        return from_rgb(rgb, encoding.replace("16", "8")).astype(np.uint16) * np.uint16(257)
    if encoding == "8UC3":
        return np.ascontiguousarray(rgb)
    if encoding == "8UC1":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if encoding.startswith("bayer_"):
        return _rgb_to_bayer(rgb, encoding[6:10], sixteen=encoding.endswith("16"))
    if encoding in _PLANAR_420:
        return _rgb_to_nv(rgb, vu_order=encoding == "nv21")
    raise EncodingError(f"unsupported encoding {encoding!r}")


def _rgb_to_bayer(rgb: np.ndarray, pattern: str, sixteen: bool = False) -> np.ndarray:
    """The mosaic a ``pattern`` (e.g. 'rggb': R at (0, 0), G at (0, 1), G at (1, 0), B at (1, 1)) sensor records."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    for i, colour in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[colour]]
    return out.astype(np.uint16) * np.uint16(257) if sixteen else out


def _rgb_to_nv(rgb: np.ndarray, vu_order: bool) -> np.ndarray:
    """NV21 (V, U interleaved) or NV12 (U, V) 4:2:0: (H * 3 / 2, W) uint8, from OpenCV's I420."""
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise EncodingError("nv12/nv21 need an even width and height")
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # Y (h rows of w), then U and V (h/2 x w/2 each)
    n = (h // 2) * (w // 2)
    chroma_planes = i420[h:].reshape(-1)
    y, u, v = i420[:h], chroma_planes[:n], chroma_planes[n:]
    chroma = np.empty((h // 2, w), dtype=np.uint8)
    first, second = (v, u) if vu_order else (u, v)
    chroma.reshape(-1)[0::2], chroma.reshape(-1)[1::2] = first, second
    return np.vstack([y, chroma])


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
