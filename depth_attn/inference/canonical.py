"""The canonical camera: every frame is mapped into the camera the network learnt metres from.

A monocular network's metres are only right for the focal length it was trained at: the same car,
seen through a 1.5x longer lens, looks 1.5x closer. So instead of stretching whatever arrives to the
network's input size, a frame is resized so that its focal length equals the training focal length
at the network's scale (KITTI: 721.5377 px at 1242 px width, i.e. 369.5 px at METER's 636 px), then
centred on the network input: padded where it is smaller (edge pixels repeated sideways, the image
mirrored above and below), centre-cropped where it is larger. The network's depth is then cut back
out of the padding, put on the canonical image (NaN, REP 118's "no estimate", where the crop cut the
view) and resized to the camera's own pixels: metres along the optical axis, on the camera's grid.

Padding choice, measured on the 3 annotated KITTI frames with METER-tiny (mean abs_rel, 4:3 centre
crop / 1.5x lens): zeros 0.099 / 0.100, grey 0.109 / 0.109, mirrored sideways 0.432 / 0.265,
edge sideways + zeros above/below 0.076 / 0.087, edge sideways + mirrored above/below 0.076 / 0.073
(the one used). Running METER at the canonical image's own size (a multiple of 32) instead of
padding was far worse (0.27 / 0.66): its attention is tied to the input size it was trained at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from depth_attn.geometry import Intrinsics


@dataclass(frozen=True)
class CanonicalView:
    """Where a camera's image goes in the network input. ``scaled_wh``: the camera image at the
    canonical focal length; ``top``/``left``: where its pixel (0, 0) lands in the input (negative:
    that much is cropped away)."""

    camera_wh: Tuple[int, int]
    scaled_wh: Tuple[int, int]
    input_hw: Tuple[int, int]
    top: int = 0
    left: int = 0

    @property
    def is_stretch(self) -> bool:
        """The plain resize to the input size (today's path, also a KITTI frame at the canonical scale)."""
        return (self.scaled_wh == (self.input_hw[1], self.input_hw[0])) and self.top == 0 and self.left == 0

    def _span(self, offset: int, scaled: int, size: int) -> Tuple[int, int]:
        """The part [a, b) of the scaled image that lies inside the input along one axis."""
        return max(0, -offset), min(scaled, size - offset)

    @property
    def cropped(self) -> bool:
        """True when the canonical image is larger than the input: its border gets no estimate."""
        (sw, sh), (ih, iw) = self.scaled_wh, self.input_hw
        return self._span(self.top, sh, ih) != (0, sh) or self._span(self.left, sw, iw) != (0, sw)

    @property
    def coverage(self) -> float:
        """The fraction of the camera's pixels that get a depth."""
        (sw, sh), (ih, iw) = self.scaled_wh, self.input_hw
        y0, y1 = self._span(self.top, sh, ih)
        x0, x1 = self._span(self.left, sw, iw)
        return (y1 - y0) * (x1 - x0) / float(sw * sh)

    def describe(self) -> str:
        (w, h), (sw, sh), (ih, iw) = self.camera_wh, self.scaled_wh, self.input_hw
        if self.is_stretch:
            return f"{w}x{h} resized to the network's {iw}x{ih}"
        how = (f"centre-cropped, {100 * (1 - self.coverage):.0f} % of the view gets no estimate (NaN)"
               if self.cropped else "padded")
        return f"{w}x{h} seen at the training focal length is {sw}x{sh}, {how} to the network's {iw}x{ih}"

    # ------------------------------------------------------------ image in

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """The camera's HxWx3 uint8 image -> the network input (input_hw, uint8)."""
        (sw, sh), (ih, iw) = self.scaled_wh, self.input_hw
        # Area averaging when shrinking: bilinear shrinking aliases (4:3 crop: 0.091 abs_rel against 0.076).
        shrink = sw < rgb.shape[1] or sh < rgb.shape[0]
        image = rgb if rgb.shape[:2] == (sh, sw) else cv2.resize(
            rgb, (sw, sh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        y0, y1 = self._span(self.top, sh, ih)
        x0, x1 = self._span(self.left, sw, iw)
        image = image[y0:y1, x0:x1]
        pt, pl = max(self.top, 0), max(self.left, 0)
        pb, pr = ih - pt - image.shape[0], iw - pl - image.shape[1]
        if pt or pb:
            image = cv2.copyMakeBorder(image, pt, pb, 0, 0, cv2.BORDER_REFLECT_101)
        if pl or pr:
            image = cv2.copyMakeBorder(image, 0, 0, pl, pr, cv2.BORDER_REPLICATE)
        return image

    # ------------------------------------------------------------ depth out

    def input_to_camera(self, raw_hw: Tuple[int, int]) -> np.ndarray:
        """The 2x3 affine map from a camera pixel to the network output's pixel (pixel centres
        aligned, as cv2.resize does), for ``cv2.warpAffine(..., WARP_INVERSE_MAP)``."""
        (w, h), (sw, sh), (ih, iw) = self.camera_wh, self.scaled_wh, self.input_hw
        rh, rw = raw_hw
        ax, ay = sw / w * rw / iw, sh / h * rh / ih
        bx = ((0.5 * sw / w - 0.5 + self.left) + 0.5) * rw / iw - 0.5
        by = ((0.5 * sh / h - 0.5 + self.top) + 0.5) * rh / ih - 0.5
        return np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)

    def seen(self) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        """(row range, column range) of the camera's pixels that the network saw; outside: NaN."""
        (w, h), (sw, sh), (ih, iw) = self.camera_wh, self.scaled_wh, self.input_hw

        def camera_span(offset: int, scaled: int, size: int, n: int) -> Tuple[int, int]:
            a, b = self._span(offset, scaled, size)
            x = (np.arange(n) + 0.5) * scaled / n - 0.5  # each camera pixel's scaled coordinate
            inside = np.flatnonzero((x >= a - 0.5) & (x <= b - 0.5))
            return (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)

        return camera_span(self.top, sh, ih, h), camera_span(self.left, sw, iw, w)


def plan_view(camera: Optional[Intrinsics], camera_wh: Tuple[int, int], input_hw: Tuple[int, int],
              canonical_focal: Optional[float]) -> CanonicalView:
    """The view of a ``camera_wh`` camera with intrinsics ``camera`` in a network whose training focal
    length at its input scale is ``canonical_focal``; without intrinsics or a canonical focal: the
    plain stretch."""
    w, h = int(camera_wh[0]), int(camera_wh[1])
    ih, iw = int(input_hw[0]), int(input_hw[1])
    if camera is None or canonical_focal is None:
        return CanonicalView((w, h), (iw, ih), (ih, iw))
    sw = max(1, int(round(w * canonical_focal / camera.fx)))
    sh = max(1, int(round(h * canonical_focal / camera.fy)))
    return CanonicalView((w, h), (sw, sh), (ih, iw), top=(ih - sh) // 2, left=(iw - sw) // 2)
