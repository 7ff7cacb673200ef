"""The one conversion module: ROS messages <-> numpy, and the PointCloud2 builder.

Neither cv_bridge nor message_filters is needed (or present in CI). Views are taken without copies
where the layout allows: a received ``Image``'s ``data`` is an ``array.array('B')`` and
``image_to_numpy`` / ``image_to_rgb`` (rgb8) return numpy views over it; outgoing messages get
their pixels with one ``memcpy`` (``_to_byte_array``), or none at all for the ``PointCloudBuilder``
and ``ImageBuilder``, which write straight into a reused message buffer.

Units and conventions (``../shared/specs/conventions.md``): depth images are ``32FC1`` metres along
the optical axis with NaN for "no estimate" (``16UC1`` millimetres, 0 = invalid, is read too);
point clouds are organised, x/y/z float32 (+ ``rgb`` packed in a float32), ``is_dense = False``;
a rectified image projects with ``P``.
"""

from __future__ import annotations

import array
import sys
from typing import Dict, Optional, Sequence, Union

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from depth_attn import camera_info, encodings
from depth_attn.camera_info import BadCameraInfo, CameraInfoFields
from depth_attn.colormap import all_in_range
from depth_attn.encodings import EncodingError
from depth_attn.geometry import Intrinsics, ray_grid, ray_lengths, valid_depth_mask

__all__ = [
    "EncodingError", "stamp_to_ns", "ns_to_stamp", "image_to_numpy", "image_to_rgb", "compressed_to_rgb",
    "message_to_rgb", "numpy_to_image", "rgb_to_image", "rgb_to_compressed", "depth_to_image", "image_to_depth",
    "camera_info_to_intrinsics", "camera_info_image_size", "check_camera_info", "BadCameraInfo", "make_camera_info",
    "PointCloudBuilder", "ImageBuilder", "DepthImageBuilder",
    "pointcloud2_to_array", "pointcloud2_xyz", "pointcloud2_rgb", "POINT_FIELDS",
]

_BIG_ENDIAN_HOST = sys.byteorder == "big"


# ---------------------------------------------------------------- headers and buffers

def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (the key for pairing by exact stamp)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def make_header(frame_id: str = "", stamp_ns: int = 0) -> Header:
    return Header(frame_id=frame_id, stamp=ns_to_stamp(stamp_ns))


def _to_byte_array(values: np.ndarray) -> array.array:
    """A C-contiguous numpy array -> ``array.array('B')`` (what message ``data`` fields hold), one copy."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out


def _attach_data(msg, data: array.array) -> None:
    """``msg.data = data`` without a copy: the generated setter copies an ``array.array`` when
    rosidl's field checks are off (Kilted's default), keeps it when they are on (Humble); the
    message's ``_data`` slot is what the setter fills in both."""
    if "_data" in getattr(type(msg), "__slots__", ()):
        msg._data = data
    else:
        msg.data = data


def _reusable_buffer(nbytes: int) -> tuple[array.array, np.ndarray]:
    """A zeroed ``array.array('B')`` and a writable numpy view of the same memory."""
    buf = array.array("B", bytes(nbytes))
    return buf, np.frombuffer(buf, dtype=np.uint8)


# ---------------------------------------------------------------- images

def image_to_numpy(msg: Image) -> np.ndarray:
    """The pixels of an Image (camera or depth encoding) as (H, W[, C]), a view where possible."""
    layouts = encodings.DEPTH_LAYOUTS if msg.encoding in encodings.DEPTH_LAYOUTS else encodings.LAYOUTS
    return encodings.pixel_view(msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian),
                                layouts)


def image_to_rgb(msg: Image, max_pixels: int = encodings.DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """An Image of any supported camera encoding -> HxWx3 uint8 RGB. ``EncodingError`` if malformed
    (``ImageTooLargeError`` over ``max_pixels``)."""
    return encodings.to_rgb(msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian),
                            max_pixels)


def compressed_to_rgb(msg: CompressedImage, max_pixels: int = encodings.DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """A JPEG/PNG CompressedImage -> HxWx3 uint8 RGB. ``EncodingError`` if it does not decode
    (``ImageTooLargeError`` when its header declares more than ``max_pixels``: nothing is decoded)."""
    return encodings.decode_compressed(msg.data, msg.format, max_pixels)


def message_to_rgb(msg: Union[Image, CompressedImage],
                   max_pixels: int = encodings.DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg, max_pixels)
    return image_to_rgb(msg, max_pixels)


_NUMPY_ENCODINGS = {  # (dtype kind+size, channels) -> encoding for numpy_to_image without an explicit one
    ("f4", 1): "32FC1", ("u2", 1): "16UC1", ("u1", 1): "mono8", ("u1", 3): "rgb8", ("u1", 4): "rgba8",
}


def numpy_to_image(pixels: np.ndarray, encoding: Optional[str] = None, header: Optional[Header] = None) -> Image:
    """(H, W[, C]) -> Image (packed rows, host byte order). ``encoding`` defaults from dtype/channels."""
    if pixels.ndim not in (2, 3) or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(f"expected a non-empty (H, W) or (H, W, C) array, got shape {pixels.shape}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if encoding is None:
        key = (f"{pixels.dtype.kind}{pixels.dtype.itemsize}", channels)
        if key not in _NUMPY_ENCODINGS:
            raise ValueError(f"no image encoding for {pixels.dtype} with {channels} channels; pass encoding=")
        encoding = _NUMPY_ENCODINGS[key]
    h, w = pixels.shape[:2]
    msg = Image(header=header or Header(), height=h, width=w, encoding=encoding,
                is_bigendian=int(_BIG_ENDIAN_HOST), step=w * channels * pixels.dtype.itemsize)
    _attach_data(msg, _to_byte_array(pixels))
    return msg


def rgb_to_image(rgb: np.ndarray, encoding: str = "rgb8", header: Optional[Header] = None) -> Image:
    """HxWx3 uint8 RGB -> Image in any supported camera encoding (yuv422 forms need an even width).
    nv12/nv21: the height is the image's; the data holds its Y plane then the chroma (3/2 x height rows)."""
    msg = numpy_to_image(encodings.from_rgb(rgb, encoding), encoding, header)
    if encoding in ("nv12", "nv21"):
        msg.height = rgb.shape[0]
    return msg


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", header: Optional[Header] = None,
                      quality: int = 95) -> CompressedImage:
    msg = CompressedImage(header=header or Header(), format="jpeg" if fmt in ("jpg", "jpeg") else fmt)
    _attach_data(msg, array.array("B", encodings.encode_compressed(rgb, fmt, quality)))
    return msg


def depth_to_image(depth_m: np.ndarray, header: Optional[Header] = None) -> Image:
    """float32 metres (NaN = no estimate) -> 32FC1 Image (REP 118)."""
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth_m.shape}")
    return numpy_to_image(depth_m.astype(np.float32, copy=False), "32FC1", header)


def image_to_depth(msg: Image) -> np.ndarray:
    """32FC1 (metres) or 16UC1 (millimetres, 0 = invalid -> NaN) Image -> float32 metres.
    32FC1 in host byte order is a read-only view of the message buffer."""
    return encodings.to_depth(msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian))


class ImageBuilder:
    """Image messages whose ``data`` buffer is allocated once per shape and reused: write the pixels
    into ``view(h, w)`` (or let ``build`` copy them there), then take ``message(header)``. A built
    message is valid until the next frame is written (publish it before)."""

    def __init__(self, encoding: str, dtype, channels: int = 1) -> None:
        self.encoding = encoding
        self.dtype = np.dtype(dtype)
        self.channels = channels
        self._shape: Optional[tuple] = None
        self._buffer: Optional[array.array] = None
        self._view: Optional[np.ndarray] = None

    def view(self, height: int, width: int) -> np.ndarray:
        """The writable (H, W) or (H, W, C) pixels of the next message."""
        if self._shape != (height, width):
            self._buffer, raw = _reusable_buffer(height * width * self.channels * self.dtype.itemsize)
            shape = (height, width) if self.channels == 1 else (height, width, self.channels)
            self._view = raw.view(self.dtype).reshape(shape)
            self._shape = (height, width)
        return self._view

    def message(self, header: Header) -> Image:
        if self._shape is None:
            raise RuntimeError("write the pixels into view(h, w) first")
        h, w = self._shape
        msg = Image(header=header, height=h, width=w, encoding=self.encoding, is_bigendian=int(_BIG_ENDIAN_HOST),
                    step=w * self.channels * self.dtype.itemsize)
        _attach_data(msg, self._buffer)
        return msg

    def build(self, pixels: np.ndarray, header: Header) -> Image:
        np.copyto(self.view(pixels.shape[0], pixels.shape[1]), pixels, casting="same_kind")
        return self.message(header)


class DepthImageBuilder(ImageBuilder):
    """32FC1 (metres) messages in a reused buffer: ``build(depth_m, header)``."""

    def __init__(self) -> None:
        super().__init__("32FC1", np.float32, 1)


# ---------------------------------------------------------------- camera info

def camera_info_image_size(msg: CameraInfo) -> tuple:
    """(width, height) of the images this camera info describes (roi, binning): ``camera_info.image_size``."""
    return camera_info.image_size(CameraInfoFields.of(msg))


def camera_info_to_intrinsics(msg: CameraInfo, rectified: bool = True) -> Intrinsics:
    """The message's intrinsics with binning and roi applied (``camera_info.intrinsics``, as offline
    evaluation reads a bag's camera info); ``BadCameraInfo`` says what is wrong."""
    return camera_info.intrinsics(CameraInfoFields.of(msg), rectified)


def check_camera_info(msg: CameraInfo) -> Intrinsics:
    """The checks a depth node makes on every camera info (``camera_info.check``); returns its intrinsics."""
    return camera_info.check(CameraInfoFields.of(msg))


def make_camera_info(
    intrinsics: Union[Intrinsics, np.ndarray, Sequence[float]],
    width: int,
    height: int,
    header: Optional[Header] = None,
    P: Optional[Union[np.ndarray, Sequence[float]]] = None,
    D: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    distortion_model: str = "plumb_bob",
) -> CameraInfo:
    """A CameraInfo for a (rectified) camera: K from ``intrinsics`` (an Intrinsics, fx, fy, cx, cy, or a
    3x3/3x4 matrix), R = I, P given (3x4) or [K | 0]."""
    if isinstance(intrinsics, Intrinsics):
        k = intrinsics
    elif np.size(intrinsics) == 4:
        k = Intrinsics.checked(*np.asarray(intrinsics, dtype=np.float64).tolist())
    else:
        k = Intrinsics.from_matrix(intrinsics)
    K = k.matrix()
    P = np.hstack([K, np.zeros((3, 1))]) if P is None else np.asarray(P, dtype=np.float64).reshape(3, 4)
    msg = CameraInfo(header=header or Header(), width=int(width), height=int(height),
                     distortion_model=distortion_model)
    msg.k = K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = P.reshape(-1).tolist()
    msg.d = [float(v) for v in D]
    return msg


# ---------------------------------------------------------------- point clouds

def _fields(rgb: bool):
    names = ("x", "y", "z", "rgb") if rgb else ("x", "y", "z")
    return [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate(names)]


POINT_FIELDS = {"xyz": _fields(False), "xyzrgb": _fields(True)}


_KEEP_OR_NAN = np.array([1.0, np.nan], dtype=np.float32)  # indexed by "beyond max_range"


class PointCloudBuilder:
    """Organised PointCloud2 from a depth image, built in a buffer allocated once per shape.

    Layout: x, y, z float32 at bytes 0, 4, 8 (point_step 12), or with ``rgb`` (float32 whose bits
    are 0xFFRRGGBB, as PCL packs and RViz reads it) at 12 (point_step 16). Height x width is the
    ``stride``-subsampled pixel grid (every ``stride``-th pixel from (0, 0)); invalid depth gives NaN
    points. A built message is valid until the next ``build`` (its data buffer is reused).
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._buffer: Optional[array.array] = None
        self._points: Optional[np.ndarray] = None  # (H', W', 3|4) float32 view of the buffer

    def _allocate(self, hs: int, ws: int, with_rgb: bool) -> None:
        channels = 4 if with_rgb else 3
        self._buffer, raw = _reusable_buffer(hs * ws * channels * 4)
        self._points = raw.view(np.float32).reshape(hs, ws, channels)
        self._planes = (np.empty((hs, ws), np.float32), np.empty((hs, ws), np.float32))
        self._capped = (np.empty((hs, ws), np.float32), np.empty((hs, ws), bool))  # max_range: z and its mask
        self._key = (hs, ws, with_rgb)

    def build(self, depth_m: np.ndarray, intrinsics: Intrinsics, header: Header, stride: int = 1,
              rgb: Optional[np.ndarray] = None, max_depth: float = np.inf, max_range: float = np.inf) -> PointCloud2:
        """``depth_m``: (H, W) metres; ``intrinsics``: of that image; ``rgb``: (H, W, 3) uint8 or None.
        The points are ``geometry.depth_to_points(depth_m, intrinsics, stride=stride)`` (same rays,
        same products), computed as planes and interleaved by one ``cv2.merge`` into the message buffer:
        twice as fast as writing strided channels. Points farther than ``max_range`` from the camera
        (straight-line) are NaN, like those beyond ``max_depth`` (along z)."""
        if stride < 1:
            raise ValueError("stride must be >= 1")
        if depth_m.ndim != 2:
            raise ValueError(f"depth must be (H, W), got {depth_m.shape}")
        h, w = depth_m.shape
        hs, ws = -(-h // stride), -(-w // stride)
        with_rgb = rgb is not None
        if with_rgb and rgb.shape[:2] != (h, w):
            raise ValueError(f"colour image {rgb.shape[:2]} does not match depth {(h, w)}")
        if self._key != (hs, ws, with_rgb):
            self._allocate(hs, ws, with_rgb)
        z = np.ascontiguousarray(depth_m[::stride, ::stride], dtype=np.float32)
        if not all_in_range(z, 0.0, max_depth):  # geometry.valid_depth_mask, in one pass for the usual case
            z = np.where(valid_depth_mask(z, 0.0, max_depth), z, np.float32(np.nan))
        rx, ry = ray_grid(h, w, stride, intrinsics)
        x, y = self._planes
        if np.isfinite(max_range):  # in buffers of their own: no allocation per frame
            capped, beyond = self._capped
            np.multiply(z, ray_lengths(h, w, stride, intrinsics), out=x)  # x: the range, for now
            np.greater(x, np.float32(max_range), out=beyond)
            np.take(_KEEP_OR_NAN, beyond.view(np.uint8), out=y)  # y: 1 where kept, NaN beyond, for now
            np.multiply(z, y, out=capped)
            z = capped
        np.multiply(rx, z, out=x)
        np.multiply(ry, z, out=y)
        planes = [x, y, z]
        if with_rgb:
            bgra = cv2.cvtColor(rgb if rgb.flags.c_contiguous else np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
            packed = bgra.view(np.uint32)[::stride, ::stride, 0]  # little-endian B, G, R, A = 0xAARRGGBB
            packed = np.ascontiguousarray(packed)  # 4-byte gather: far faster than subsampling 3-byte pixels
            if _BIG_ENDIAN_HOST:
                packed = packed.byteswap()
            planes.append(packed.view(np.float32))
        cv2.merge(planes, dst=self._points)
        point_step = 16 if with_rgb else 12
        msg = PointCloud2(header=header, height=hs, width=ws, is_bigendian=_BIG_ENDIAN_HOST, point_step=point_step,
                          row_step=point_step * ws, is_dense=False)
        msg.fields = POINT_FIELDS["xyzrgb" if with_rgb else "xyz"]
        _attach_data(msg, self._buffer)
        return msg


_POINTFIELD_DTYPES: Dict[int, str] = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """A PointCloud2 as a structured array of shape (height, width), a view of its buffer."""
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _POINTFIELD_DTYPES:
            raise ValueError(f"point field {f.name!r} has unknown datatype {f.datatype}")
        names.append(f.name)
        base = order + _POINTFIELD_DTYPES[f.datatype]
        formats.append(base if f.count <= 1 else (base, (f.count,)))
        offsets.append(f.offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size != msg.row_step * msg.height or msg.row_step < msg.point_step * msg.width:
        raise ValueError(f"PointCloud2 data has {buf.size} bytes, expected row_step {msg.row_step} x {msg.height}")
    return np.ndarray((msg.height, msg.width), dtype=dtype, buffer=buf, strides=(msg.row_step, msg.point_step))


def pointcloud2_xyz(msg: PointCloud2) -> np.ndarray:
    """(height, width, 3) float32 x, y, z."""
    cloud = pointcloud2_to_array(msg)
    return np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1).astype(np.float32, copy=False)


def pointcloud2_rgb(msg: PointCloud2) -> np.ndarray:
    """(height, width, 3) uint8 RGB unpacked from the float32 ``rgb`` field."""
    packed = np.ascontiguousarray(pointcloud2_to_array(msg)["rgb"]).view(np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)
