"""depth_attn.encodings without ROS: every camera encoding to RGB, layouts, and bad frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_attn.encodings import (
    SUPPORTED_ENCODINGS,
    EncodingError,
    decode_compressed,
    encode_compressed,
    from_rgb,
    pixel_view,
    to_rgb,
)
from depth_attn.imageio import read_rgb


@pytest.fixture(scope="module")
def rgb(kitti_annotated):
    return read_rgb(kitti_annotated / "image_02" / "0000000050.png")[100:180, 300:420].copy()


def packed(pixels: np.ndarray):
    h, w = pixels.shape[:2]
    return pixels.tobytes(), w, h, pixels.strides[0]


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_round_trip_exactly(rgb, encoding):
    data, w, h, step = packed(from_rgb(rgb, encoding))
    assert np.array_equal(to_rgb(data, encoding, w, h, step), rgb)


@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_mono_encodings_give_grey_rgb(rgb, encoding):
    data, w, h, step = packed(from_rgb(rgb, encoding))
    out = to_rgb(data, encoding, w, h, step)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], grey) and np.array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv422_round_trips_up_to_chroma_subsampling(rgb, encoding):
    data, w, h, step = packed(from_rgb(rgb, encoding))
    out = to_rgb(data, encoding, w, h, step)
    assert step == 2 * w
    assert np.abs(out.astype(int) - rgb).mean() < 6.0


def test_uyvy_and_yuyv_differ_only_in_byte_order(rgb):
    uyvy, yuyv = from_rgb(rgb, "yuv422"), from_rgb(rgb, "yuv422_yuy2")
    assert np.array_equal(uyvy[..., ::-1], yuyv)


def test_padded_rows_are_read_through_a_view(rgb):
    h, w = rgb.shape[:2]
    step = w * 3 + 10
    buffer = np.zeros((h, step), dtype=np.uint8)
    buffer[:, : w * 3] = rgb.reshape(h, -1)
    out = to_rgb(buffer.reshape(-1), "rgb8", w, h, step)
    assert np.array_equal(out, rgb) and np.shares_memory(out, buffer)


def test_big_endian_mono16():
    values = np.array([[0, 257, 65535, 32896]], dtype=">u2")
    out = pixel_view(values.tobytes(), "mono16", 4, 1, 8, is_bigendian=True)
    assert out.tolist() == [[0, 257, 65535, 32896]]
    assert to_rgb(values.tobytes(), "mono16", 4, 1, 8, is_bigendian=True)[0, :, 0].tolist() == [0, 1, 255, 128]


@pytest.mark.parametrize(
    "args, message",
    [
        ((b"\0" * 12, "weird16", 2, 2, 6), "unsupported encoding"),
        ((b"\0" * 12, "rgb8", 2, 2, 5), "shorter than one row"),
        ((b"\0" * 11, "rgb8", 2, 2, 6), "needs 12"),
        ((b"\0" * 13, "rgb8", 2, 2, 6), "needs 12"),
        ((b"", "rgb8", 0, 0, 0), "zero size"),
        ((b"\0" * 6, "mono16", 3, 1, 5), "shorter than one row"),
        ((b"\0" * 14, "mono16", 3, 2, 7), "multiple of the 2-byte"),
    ],
)
def test_malformed_frames_raise_clear_errors(args, message):
    with pytest.raises(EncodingError, match=message):
        to_rgb(*args)


def test_compressed_png_is_lossless_and_jpeg_close(rgb):
    assert np.array_equal(decode_compressed(encode_compressed(rgb, "png")), rgb)
    jpeg = decode_compressed(encode_compressed(rgb, "jpeg", quality=95))
    assert np.abs(jpeg.astype(int) - rgb).mean() < 6.0  # 4:2:0 chroma on a detailed crop
    with pytest.raises(EncodingError, match="cannot decode"):
        decode_compressed(b"\xff\xd8garbage", "jpeg")
    with pytest.raises(EncodingError, match="no data"):
        decode_compressed(b"")


def test_the_supported_list():
    assert {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "yuv422_yuy2"} <= set(SUPPORTED_ENCODINGS)
    assert set(NEW_ENCODINGS) <= set(SUPPORTED_ENCODINGS)


NEW_ENCODINGS = ("bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8", "bayer_rggb16", "rgb16", "bgr16",
                 "rgba16", "bgra16", "8UC1", "8UC3", "uyvy", "yuyv", "nv21", "nv12")


@pytest.mark.parametrize("encoding", NEW_ENCODINGS + ("mono16", "yuv422", "yuv422_yuy2"))
def test_camera_encodings_match_rosbags_image(rgb, encoding):
    """Our decode of each encoding equals rosbags-image's (the reference) within 1 level."""
    from types import SimpleNamespace

    from rosbags.image import image_to_cvimage

    pixels = from_rgb(rgb, encoding)
    data, w, h, step = packed(pixels)
    ours = to_rgb(data, encoding, w, pixels.shape[0] if encoding not in ("nv21", "nv12") else h * 2 // 3, step)
    msg = SimpleNamespace(encoding=encoding, height=pixels.shape[0], width=w, data=np.frombuffer(data, np.uint8),
                          is_bigendian=False)  # rosbags-image reads nv12/nv21 as (H * 3 / 2) x W planes
    if encoding == "8UC1":  # rosbags-image does not colour a generic one-channel image: OpenCV's own
        reference = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    else:
        reference = image_to_cvimage(msg, "rgb8")
    assert ours.shape == reference.shape == rgb.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1, encoding
    if encoding.startswith(("rgb", "bgr", "8UC3")):  # lossless ones round-trip exactly
        assert np.array_equal(ours, rgb)
    elif encoding.startswith(("nv", "uyvy", "yuyv", "bayer")):  # chroma subsampled / demosaiced
        assert np.abs(ours.astype(int) - rgb).mean() < 12.0


@pytest.mark.parametrize("encoding, size", [("yuv422", (5, 2)), ("yuv422_yuy2", (1241, 2)), ("nv21", (4, 3)),
                                            ("bayer_rggb8", (1, 1))])
def test_odd_sizes_are_bad_input_not_internal_errors(encoding, size):
    w, h = size
    with pytest.raises(EncodingError, match=f"{w}x{h}"):
        to_rgb(b"\0" * (w * h * 4), encoding, w, h, w * 2)
