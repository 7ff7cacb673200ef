"""KITTI/NYU depth metrics (``specs/conventions.md``): one module used by every caller."""

from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "silog", "log10", "delta1", "delta2", "delta3")
CROPS = ("none", "garg", "eigen")

# (top, bottom, left, right) as fractions of the ground truth's height and width.
_CROP_FRACTIONS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.03594771, 0.96405229),
}


def crop_mask(height: int, width: int, crop: str = "none") -> np.ndarray:
    """Boolean (H, W) mask of the evaluated region, rows and columns as the common KITTI code cuts them."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    mask = np.zeros((height, width), dtype=bool)
    if crop == "none":
        mask[:] = True
        return mask
    top, bottom, left, right = _CROP_FRACTIONS[crop]
    mask[int(top * height) : int(bottom * height), int(left * width) : int(right * width)] = True
    return mask


def evaluation_mask(
    gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = 80.0, crop: str = "none"
) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    return valid & crop_mask(*gt.shape, crop)


def compute_metrics(gt: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    """Metrics over paired valid values (1-D arrays, all > 0)."""
    gt = gt.astype(np.float64)
    pred = pred.astype(np.float64)
    if gt.size == 0:
        return {name: float("nan") for name in METRIC_NAMES}
    ratio = np.maximum(gt / pred, pred / gt)
    err = np.log(pred) - np.log(gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(err**2))),
        "silog": float(100.0 * np.sqrt(max(np.mean(err**2) - np.mean(err) ** 2, 0.0))),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
    }


def evaluate_depth(
    pred: np.ndarray,
    gt: np.ndarray,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    crop: str = "none",
    median_scaling: bool = False,
) -> Dict[str, float]:
    """Per-image metrics: prediction clamped to [min_depth, max_depth], ground truth in
    (min_depth, max_depth) inside the crop. Median scaling is for relative models only.
    Adds ``valid_pixels``."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    mask = evaluation_mask(gt, min_depth, max_depth, crop)
    p = pred[mask].astype(np.float64)
    g = gt[mask].astype(np.float64)
    if median_scaling and p.size:
        p = p * (np.median(g) / np.median(p))
    p = np.clip(np.nan_to_num(p, nan=min_depth), min_depth, max_depth)
    result = compute_metrics(g, p)
    result["valid_pixels"] = int(mask.sum())
    return result


def mean_metrics(rows: Iterable[Dict[str, float]], names: Optional[Iterable[str]] = None) -> Dict[str, float]:
    """Average of per-image metrics over images (images without valid pixels are skipped)."""
    names = tuple(names or METRIC_NAMES)
    rows = [r for r in rows if r.get("valid_pixels", 1) and np.isfinite(r.get(names[0], np.nan))]
    return {n: float(np.mean([r[n] for r in rows])) if rows else float("nan") for n in names}
