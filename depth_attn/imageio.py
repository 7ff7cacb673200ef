"""Files in and out: RGB images, KITTI-style depth PNGs, colour-mapped depth and PLY clouds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from depth_attn.encodings import DEFAULT_MAX_IMAGE_PIXELS, EncodingError, ImageTooLargeError, decode_compressed

KITTI_DEPTH_SCALE = 256.0  # uint16 value = metres x 256, 0 = invalid
NYU_DEPTH_SCALE = 1000.0


def read_rgb(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB, decoded by the one decoder (:func:`depth_attn.encodings.decode_compressed`: an
    image over ``max_pixels`` is refused from its header); a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        return decode_compressed(path.read_bytes(), path.suffix.lstrip("."), max_pixels)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from None
    except EncodingError as exc:
        raise ValueError(f"cannot decode image {path}: {exc}") from None


def read_depth_png(path: Path, scale: float = KITTI_DEPTH_SCALE) -> np.ndarray:
    """uint16 depth PNG -> float32 metres, 0 where invalid."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"cannot read depth PNG {path}")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"{path} is not a single-channel uint16 depth PNG")
    return raw.astype(np.float32) / np.float32(scale)


def encode_depth_uint16(depth_m: np.ndarray, scale: float = KITTI_DEPTH_SCALE) -> np.ndarray:
    scaled = np.nan_to_num(depth_m.astype(np.float64) * scale, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(scaled), 0, 65535).astype(np.uint16)


def write_depth_png(path: Path, depth_m: np.ndarray, scale: float = KITTI_DEPTH_SCALE) -> None:
    if not cv2.imwrite(str(path), encode_depth_uint16(depth_m, scale)):
        raise OSError(f"cannot write {path}")


def colorize_depth(
    depth_m: np.ndarray, min_depth: float = 0.0, max_depth: Optional[float] = None, colormap: int = cv2.COLORMAP_TURBO
) -> np.ndarray:
    """HxWx3 uint8 RGB, near = warm; invalid (NaN/<=0) pixels black. ``max_depth`` None: the 99th
    percentile of the valid depths. (A stream colours with one ``DepthColorizer`` it keeps.)"""
    from depth_attn.colormap import DepthColorizer

    if max_depth is None:
        valid = np.isfinite(depth_m) & (depth_m > 0)
        max_depth = float(np.percentile(depth_m[valid], 99)) if valid.any() else 1.0
    return DepthColorizer(min_depth, max_depth, colormap).colorize(depth_m)


def colorize_with_scale(depth_m: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Colour-mapped depth with a labelled metres bar under it, for people."""
    image = colorize_depth(depth_m, min_depth, max_depth)
    h, w = image.shape[:2]
    bar_h, pad = 18, 22
    ramp = np.linspace(min_depth, max_depth, w, dtype=np.float32)[None, :].repeat(bar_h, 0)
    bar = colorize_depth(ramp, min_depth, max_depth)
    labels = np.zeros((pad, w, 3), dtype=np.uint8)
    ticks = 5
    for i in range(ticks):
        value = min_depth + (max_depth - min_depth) * i / (ticks - 1)
        x = int(round(i * (w - 1) / (ticks - 1)))
        text = f"{value:.0f} m" if max_depth >= 10 else f"{value:.1f} m"
        size = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
        cv2.putText(labels, text, (min(max(x - size // 2, 0), w - size), 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([image, bar, labels], axis=0)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_ply(path: Path, points: np.ndarray, colors: Optional[np.ndarray] = None) -> None:
    """Binary little-endian PLY: float x, y, z (+ uchar red, green, blue)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    record = np.empty(len(points), dtype=fields)
    record["x"], record["y"], record["z"] = points[:, 0], points[:, 1], points[:, 2]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}",
              "property float x", "property float y", "property float z"]
    if colors is not None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        record["red"], record["green"], record["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(record.tobytes())


def read_ply(path: Path) -> np.ndarray:
    """Read back what ``write_ply`` writes (structured array)."""
    with open(path, "rb") as f:
        names, count = [], 0
        while True:
            line = f.readline().decode("ascii").strip()
            if line.startswith("element vertex"):
                count = int(line.split()[-1])
            elif line.startswith("property"):
                _, kind, name = line.split()
                names.append((name, "<f4" if kind == "float" else "u1"))
            elif line == "end_header":
                break
        return np.frombuffer(f.read(), dtype=names, count=count)
