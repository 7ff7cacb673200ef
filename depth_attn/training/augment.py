"""Training augmentation as in the study's training code (BTS/NeWCRFs lineage): random scale and
crop to the training size, horizontal flip, a small rotation (1 degree for KITTI), gamma,
brightness and per-channel colour jitter. Seeded per (seed, epoch, frame), so a resumed run sees
exactly the images it would have seen.

The network input starts as ``preprocess_rgb`` makes it for inference (resize to the network's
input size, [0, 1]); the ground truth follows every geometric step with nearest-neighbour
sampling, so sparse Velodyne depth keeps its values and NaN stays "no value"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from depth_attn.geometry import Intrinsics
from depth_attn.inference.processing import preprocess_rgb
from depth_attn.training.data import Sample


@dataclass(frozen=True)
class AugmentConfig:
    input_hw: Tuple[int, int] = (192, 636)  # the network's inference input size
    crop_hw: Optional[Tuple[int, int]] = None  # random crop of the (scaled) input; None = input_hw
    scale: Tuple[float, float] = (1.0, 1.0)  # random zoom range before the crop (>= 1 keeps the crop inside)
    flip: float = 0.5  # probability of a horizontal flip
    rotate_deg: float = 1.0  # uniform in [-r, r]
    jitter: float = 0.5  # probability of the colour jitter below
    gamma: Tuple[float, float] = (0.9, 1.1)
    brightness: Tuple[float, float] = (0.9, 1.1)
    colour: Tuple[float, float] = (0.9, 1.1)
    # probability that a view gets a box of another view of its batch pasted in (CutMix); the teacher
    # sees the mixed view too, so its targets stay consistent, and per-pixel ground truth moves with the box
    mix: float = 0.0
    mix_area: Tuple[float, float] = (0.2, 0.6)  # the box's share of the view

    @property
    def output_hw(self) -> Tuple[int, int]:
        return tuple(self.crop_hw or self.input_hw)  # type: ignore[return-value]

    def check(self) -> None:
        h, w = self.input_hw
        ch, cw = self.output_hw
        if ch > h or cw > w:
            raise ValueError(f"crop {ch}x{cw} is larger than the input size {h}x{w}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale range must be 0 < low <= high, got {self.scale}")
        if not 0.0 <= self.mix <= 1.0:
            raise ValueError(f"mix is a probability in [0, 1], got {self.mix}")
        if not 0.0 < self.mix_area[0] <= self.mix_area[1] < 1.0:
            raise ValueError(f"mix_area must be 0 < low <= high < 1, got {self.mix_area}")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def network_input(sample: Sample, input_hw: Tuple[int, int]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """No augmentation: (3, H, W) float32 input exactly as inference makes it, and the ground truth
    brought to the same size (nearest) or None."""
    image = preprocess_rgb(sample.rgb, input_hw)[0]
    if sample.depth is None:
        return image, None
    h, w = input_hw
    return image, cv2.resize(sample.depth, (w, h), interpolation=cv2.INTER_NEAREST)


@dataclass
class Augmented:
    image: np.ndarray  # (3, h, w) float32 in [0, 1]
    depth: np.ndarray  # (h, w) float32 metres, NaN = none (all NaN without ground truth)
    intrinsics: Optional[Intrinsics]  # of the augmented image (the small rotation aside)


def augment(sample: Sample, config: AugmentConfig, rng: np.random.Generator) -> Augmented:
    """One training view of a frame, h x w = ``config.output_hw``."""
    image_chw, depth = network_input(sample, config.input_hw)
    k = sample.intrinsics
    if k is not None:
        src_h, src_w = sample.rgb.shape[:2]
        k = k.resized((src_w, src_h), (config.input_hw[1], config.input_hw[0]))
    image = np.ascontiguousarray(image_chw.transpose(1, 2, 0))
    if depth is None:
        depth = np.full(image.shape[:2], np.nan, dtype=np.float32)

    low, high = config.scale
    s = float(rng.uniform(low, high)) if high > low else low
    if s != 1.0:
        size = (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s)))
        if k is not None:
            k = k.resized((image.shape[1], image.shape[0]), size)
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)

    if config.rotate_deg > 0:
        angle = float(rng.uniform(-config.rotate_deg, config.rotate_deg))
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        depth = cv2.warpAffine(depth, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=float("nan"))

    ch, cw = config.output_hw
    h, w = image.shape[:2]
    if ch > h or cw > w:
        raise ValueError(f"crop {ch}x{cw} does not fit the scaled image {h}x{w}")
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    image = image[top : top + ch, left : left + cw]
    depth = depth[top : top + ch, left : left + cw]
    if k is not None:
        k = k.cropped(left, top)

    if rng.random() < config.flip:
        image = image[:, ::-1]
        depth = depth[:, ::-1]
        if k is not None:  # mirrored pixel u -> (w - 1) - u
            k = Intrinsics(k.fx, k.fy, (cw - 1) - k.cx, k.cy)

    if rng.random() < config.jitter:
        gamma = rng.uniform(*config.gamma)
        brightness = rng.uniform(*config.brightness)
        colour = rng.uniform(*config.colour, size=3)
        image = np.clip(np.power(image, gamma) * brightness * colour[None, None, :], 0.0, 1.0)
    image = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    return Augmented(image, np.ascontiguousarray(depth, dtype=np.float32), k)


def cutmix_batch(images: np.ndarray, depths: np.ndarray, config: AugmentConfig,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, int]:
    """CutMix within a batch: each view, with probability ``config.mix``, gets a box (its share of the
    area uniform in ``config.mix_area``, the view's aspect ratio) of the next view pasted in at the same
    place. The views share one camera and scale, so the pasted depth stays metric pixel by pixel.
    images (B, 3, h, w), depths (B, h, w); returns new arrays and how many views were mixed."""
    batch = images.shape[0]
    if batch < 2 or config.mix <= 0:
        return images, depths, 0
    mixed_images, mixed_depths = images.copy(), depths.copy()
    h, w = images.shape[-2:]
    mixed = 0
    for i in range(batch):
        if rng.random() >= config.mix:
            continue
        j = (i + 1) % batch
        side = float(np.sqrt(rng.uniform(*config.mix_area)))
        bh, bw = max(1, round(h * side)), max(1, round(w * side))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mixed_images[i, :, top : top + bh, left : left + bw] = images[j, :, top : top + bh, left : left + bw]
        mixed_depths[i, top : top + bh, left : left + bw] = depths[j, top : top + bh, left : left + bw]
        mixed += 1
    return mixed_images, mixed_depths, mixed
