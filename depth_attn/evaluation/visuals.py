"""Depth you can see: a contact sheet (frames x [RGB | predicted depth | ground-truth points | abs-rel
error], one metres colour scale with its bar) and an animation (RGB above predicted depth, GIF) of a
scored run. Pure numpy/OpenCV/Pillow: no display, no ROS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from depth_attn.imageio import colorize_depth, write_rgb

COLUMNS = ("RGB", "predicted depth", "ground truth (Velodyne points)", "abs-rel error")
ERROR_MAX = 0.5  # abs-rel colour scale: 0 .. 0.5 (and above)
GAP = 4
HEADER_H = 26
FOOTER_H = 56
BAR_H = 14
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)


@dataclass
class SheetFrame:
    """One row of the contact sheet: the image, the prediction and the ground truth (float32 metres,
    NaN = none, all the image's size) and the row's label."""

    rgb: np.ndarray
    pred: np.ndarray
    gt: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class SheetLayout:
    """Where everything is on the sheet: ``panels[row][col]`` = (x, y) of a panel's top-left corner."""

    rows: int
    cols: int
    panel_wh: Tuple[int, int]
    size_wh: Tuple[int, int]
    panels: Tuple[Tuple[Tuple[int, int], ...], ...]
    max_depth: float


def depth_scale_max(gts: Iterable[np.ndarray], cap: float = 80.0) -> float:
    """The top of the one metres scale: the 99th percentile of the ground truth, up to the next 10 m."""
    values = [g[np.isfinite(g) & (g > 0)] for g in gts]
    values = [v for v in values if v.size]
    if not values:
        return cap
    top = float(np.percentile(np.concatenate(values), 99))
    return float(min(cap, max(10.0, np.ceil(top / 10.0) * 10.0)))


def spread(count: int, wanted: int) -> List[int]:
    """``wanted`` indices spread evenly over ``count`` items, first and last included (all if fewer)."""
    if count <= wanted:
        return list(range(count))
    return [int(round(i * (count - 1) / (wanted - 1))) for i in range(wanted)] if wanted > 1 else [0]


def resize(image: np.ndarray, wh: Tuple[int, int], nearest: bool = False) -> np.ndarray:
    return cv2.resize(image, wh, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _grow(values: np.ndarray, scale: float) -> np.ndarray:
    """Sparse non-negative values (NaN = none) grown by a max filter so that single points stay visible
    at ``scale``; NaN where no point is near."""
    size = max(3, int(round(2.0 / max(scale, 1e-3))) | 1)
    filled = np.where(np.isfinite(values), values, -1.0).astype(np.float32)
    grown = cv2.dilate(filled, np.ones((size, size), np.uint8))
    return np.where(grown >= 0, grown, np.nan).astype(np.float32)


def _error_colours(err: np.ndarray) -> np.ndarray:
    """abs-rel error -> RGB (magma, 0 .. ERROR_MAX); NaN black."""
    scaled = np.clip(np.nan_to_num(err, nan=0.0) / ERROR_MAX, 0.0, 1.0)
    bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~np.isfinite(err)] = 0
    return rgb


def _points_panel(values_rgb: np.ndarray, valid: np.ndarray, background: np.ndarray) -> np.ndarray:
    out = (background.astype(np.float32) * 0.35).astype(np.uint8)
    out[valid] = values_rgb[valid]
    return out


def _text(image: np.ndarray, text: str, xy: Tuple[int, int], scale: float = 0.5, box: bool = True) -> None:
    """White text at ``xy`` (baseline), on a dark box where it lies over a picture."""
    if box:
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        x0, y0 = max(xy[0] - 3, 0), max(xy[1] - th - 4, 0)
        region = image[y0 : xy[1] + base + 2, x0 : xy[0] + tw + 3]
        region[...] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(image, text, xy, FONT, scale, WHITE, 1, cv2.LINE_AA)


def _bar(width: int, colours) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :].repeat(BAR_H, 0)
    return colours(ramp)


def _ticks(image: np.ndarray, x0: int, width: int, y: int, labels: Sequence[str]) -> None:
    for i, label in enumerate(labels):
        x = x0 + int(round(i * (width - 1) / (len(labels) - 1)))
        size = cv2.getTextSize(label, FONT, 0.42, 1)[0][0]
        cv2.putText(image, label, (min(max(x - size // 2, x0), x0 + width - size), y), FONT, 0.42, WHITE, 1,
                    cv2.LINE_AA)


def contact_sheet(frames: Sequence[SheetFrame], path: Path, scale: float = 0.5, title: str = "",
                  max_depth: Optional[float] = None) -> SheetLayout:
    """Write the contact sheet PNG: one row per frame, the four ``COLUMNS``; predicted depth and ground
    truth share one metres colour scale (0 .. ``max_depth``, default from the ground truth), drawn as a
    bar under them; the error bar under the error column. Returns the layout."""
    if not frames:
        raise ValueError("a contact sheet needs at least one frame")
    h, w = frames[0].rgb.shape[:2]
    for f in frames:
        if f.rgb.shape[:2] != (h, w) or f.pred.shape != (h, w) or f.gt.shape != (h, w):
            raise ValueError(f"contact sheet frames differ in size: {f.rgb.shape[:2]}, {f.pred.shape}, {f.gt.shape}")
    pw, ph = int(round(w * scale)), int(round(h * scale))
    cols = len(COLUMNS)
    top = max_depth or depth_scale_max(f.gt for f in frames)
    width = cols * pw + (cols + 1) * GAP
    height = HEADER_H + len(frames) * (ph + GAP) + GAP + FOOTER_H
    sheet = np.full((height, width, 3), 24, dtype=np.uint8)
    panels = []
    for c, name in enumerate(COLUMNS):
        _text(sheet, name, (GAP + c * (pw + GAP) + 6, HEADER_H - 8), box=False)
    if title:
        size = cv2.getTextSize(title, FONT, 0.5, 1)[0][0]
        _text(sheet, title, (width - size - GAP - 4, HEADER_H - 8), box=False)
    for r, f in enumerate(frames):
        y = HEADER_H + r * (ph + GAP)
        rgb = resize(f.rgb, (pw, ph))
        pred = resize(colorize_depth(f.pred, 0.0, top), (pw, ph))
        valid = np.isfinite(f.gt) & (f.gt > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.where(valid, 1.0 / f.gt, np.nan)  # grown by max: the nearest point wins
            err = np.where(valid, np.abs(f.pred - f.gt) / f.gt, np.nan)  # grown by max: the worst error shows
        with np.errstate(divide="ignore"):
            gt_grown = resize(1.0 / _grow(inverse, scale), (pw, ph), nearest=True)
        err_grown = resize(_grow(err, scale), (pw, ph), nearest=True)
        gt_panel = _points_panel(colorize_depth(np.nan_to_num(gt_grown, nan=0.0), 0.0, top), np.isfinite(gt_grown), rgb)
        err_panel = _points_panel(_error_colours(err_grown), np.isfinite(err_grown), rgb)
        row = []
        for c, panel in enumerate((rgb, pred, gt_panel, err_panel)):
            x = GAP + c * (pw + GAP)
            sheet[y : y + ph, x : x + pw] = panel
            row.append((x, y))
        if f.label:
            _text(sheet, f.label, (row[0][0] + 6, y + 18))
        panels.append(tuple(row))
    # footer: the metres bar under the two depth columns, the error bar under the error column
    y = HEADER_H + len(frames) * (ph + GAP) + GAP
    x_depth, depth_w = GAP + (pw + GAP), 2 * pw + GAP
    sheet[y : y + BAR_H, x_depth : x_depth + depth_w] = _bar(
        depth_w, lambda t: colorize_depth(np.maximum(t * top, 1e-3), 0.0, top))  # 0 m would read as "no depth"
    _ticks(sheet, x_depth, depth_w, y + BAR_H + 16, [f"{top * i / 4:.0f} m" for i in range(5)])
    _text(sheet, "depth, metres (one scale)", (x_depth, y + BAR_H + 36), 0.42, box=False)
    x_err = GAP + 3 * (pw + GAP)
    sheet[y : y + BAR_H, x_err : x_err + pw] = _bar(pw, lambda t: _error_colours(t * ERROR_MAX))
    _ticks(sheet, x_err, pw, y + BAR_H + 16, [f"{ERROR_MAX * i / 4:.3g}" for i in range(5)])
    _text(sheet, "|pred - gt| / gt", (x_err, y + BAR_H + 36), 0.42, box=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rgb(path, sheet)
    return SheetLayout(len(frames), cols, (pw, ph), (width, height), tuple(panels), float(top))


def animation_frame(rgb: np.ndarray, pred: np.ndarray, max_depth: float, width: int, caption: str = "") -> np.ndarray:
    """One frame of the animation: RGB above the coloured prediction, ``width`` pixels wide."""
    h, w = rgb.shape[:2]
    size = (width, int(round(h * width / w)))
    top = resize(rgb, size)
    bottom = resize(colorize_depth(pred, 0.0, max_depth), size)
    frame = np.concatenate([top, bottom], axis=0)
    if caption:
        _text(frame, caption, (6, 18), 0.45)
    return frame


def write_animation(frames: Iterable[np.ndarray], path: Path, fps: float = 10.0) -> int:
    """An endlessly looping GIF of RGB frames (each quantised to its own 256-colour palette, fast octree:
    ~10 ms a frame) at ``fps``. Returns the number of frames written."""
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f)).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
              for f in frames]
    if not images:
        raise ValueError("an animation needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000.0 / fps)), loop=0)
    return len(images)
