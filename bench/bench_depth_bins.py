"""Accuracy by distance, for choosing a costmap's ranges: the abs_rel of each shipped network in
ground-truth range bins on the 130 KITTI 2015 frames, and the laser scan's range error against a
scan built the same way from the ground truth on the 3 annotated frames.

abs_rel per bin: over every ground-truth pixel of the 130 frames in the bin (crop none, prediction clamped
to 0.001..80 m as depth_attn.metrics does), not per image then averaged: many frames hold a handful of
pixels in the near bin, and one frame's single pixel would weigh as much as another's 20,000. The
scan: ``depth_attn.laser_scan.depth_to_scan`` (scan_height rows around the optical centre's row) of the
prediction, with the prediction kept only where the ground truth has a value (both scans from the
same pixels), against the scan of the ground truth; beams where both are finite are compared.

    .venv/bin/python bench/bench_depth_bins.py --out out/bench/depth_bins.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import write_report  # noqa: E402 (bench/ is the script's folder)

BINS = ((0.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, 80.0))
SCAN_BINS = ((0.0, 20.0), (20.0, 40.0), (40.0, 80.0))
NETWORKS = {"base": "meter-xxs-kitti", "meta": "meter-xxs-meta-kitti", "pyra": "meter-xxs-pyra-kitti",
            "moh": "meter-xxs-moh-kitti"}


def binned_errors(pred: np.ndarray, gt: np.ndarray) -> list:
    """Per bin of ``BINS``: the relative errors |pred - gt| / gt of one image's ground-truth pixels."""
    from depth_attn.metrics import evaluation_mask

    valid = evaluation_mask(gt, 1e-3, 80.0)
    p = np.clip(np.nan_to_num(pred, nan=1e-3), 1e-3, 80.0)
    out = []
    for lo, hi in BINS:
        mask = valid & (gt >= lo) & (gt < hi)
        out.append(np.abs(p[mask] - gt[mask]).astype(np.float64) / gt[mask])
    return out


def scan_errors(pred: np.ndarray, gt: np.ndarray, k, scan_height: int) -> np.ndarray:
    """Per compared beam: (ground-truth range, predicted range)."""
    from depth_attn.laser_scan import depth_to_scan

    has_gt = np.isfinite(gt) & (gt > 0)
    _, gt_scan = depth_to_scan(np.where(has_gt, gt, np.nan), k, scan_height, 0.0, 80.0)
    _, pred_scan = depth_to_scan(np.where(has_gt, pred, np.nan), k, scan_height, 0.0, 80.0)
    both = np.isfinite(gt_scan) & np.isfinite(pred_scan)
    return np.stack([gt_scan[both], pred_scan[both]], axis=-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (Markdown) here")
    parser.add_argument("--frames", type=int, default=None, help="only the first N KITTI 2015 frames")
    parser.add_argument("--scan-heights", default="1,10", help="scan_height values for the scan error (default 1,10)")
    args = parser.parse_args()
    from tqdm import tqdm

    from depth_attn.data.kitti import read_intrinsics_json
    from depth_attn.imageio import read_depth_png, read_rgb
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.models import ModelConfig
    from depth_attn.paths import data_dir

    kitti = data_dir() / "kitti"
    k15 = sorted((kitti / "kitti2015" / "image_2").glob("*"))[: args.frames]
    annotated = sorted((kitti / "annotated" / "image_02").glob("*.png"))
    k_annotated = read_intrinsics_json(kitti / "annotated" / "intrinsics.json")[0]
    heights = [int(h) for h in args.scan_heights.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    bin_rows, scan_rows = [], []
    for variant, weights in NETWORKS.items():
        estimator = DepthEstimator(EstimatorConfig(model=ModelConfig(variant=variant), weights=weights,
                                                   backend="onnxruntime"))
        per_bin = [[] for _ in BINS]
        for image in tqdm(k15, desc=f"{variant} KITTI 2015", unit="frame"):
            gt = read_depth_png(kitti / "kitti2015" / "groundtruth_depth" / f"{image.stem}.png")
            image_errors = binned_errors(estimator.estimate(read_rgb(image)), gt)
            for errors, in_bin in zip(per_bin, image_errors, strict=True):
                errors.append(in_bin)
        pooled = [np.concatenate(errors) for errors in per_bin]
        bin_rows.append((weights, [float(e.mean()) if e.size else float("nan") for e in pooled],
                         [e.size for e in pooled], [sum(x.size > 0 for x in errors) for errors in per_bin]))
        for height in heights:
            pairs = np.concatenate([
                scan_errors(estimator.estimate(read_rgb(image)),
                            read_depth_png(kitti / "annotated" / "groundtruth_depth" / image.name), k_annotated, height)
                for image in annotated])
            error = np.abs(pairs[:, 1] - pairs[:, 0])
            by_range = []
            for lo, hi in SCAN_BINS:
                inside = (pairs[:, 0] >= lo) & (pairs[:, 0] < hi)
                by_range.append((float(np.median(error[inside])) if inside.any() else float("nan"), int(inside.sum())))
            scan_rows.append((weights, height, len(pairs), float(np.median(error)),
                              float(np.median(error / pairs[:, 0])), by_range))
    load = os.getloadavg()
    lines = [
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, started {started}, ONNX Runtime CPU "
        f"fp32, load average {load[0]:.1f} at the end; {len(k15)} KITTI 2015 frames, {len(annotated)} annotated",
        "",
        "| network | " + " | ".join(f"{lo:.0f}-{hi:.0f} m" for lo, hi in BINS) + " |",
        "| --- | " + " | ".join("---:" for _ in BINS) + " |",
    ]
    for weights, values, _, _ in bin_rows:
        lines.append(f"| {weights} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    lines.append("| ground-truth pixels | " + " | ".join(f"{p:,}" for p in bin_rows[0][2]) + " |")
    lines.append("| frames with pixels | " + " | ".join(str(f) for f in bin_rows[0][3]) + " |")
    lines += ["", "| network | scan_height | beams compared | median abs error (m) | median relative error | "
              + " | ".join(f"median abs error, ground truth {lo:.0f}-{hi:.0f} m (beams)" for lo, hi in SCAN_BINS)
              + " |",
              "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in SCAN_BINS) + " |"]
    for weights, height, beams, median, relative, by_range in scan_rows:
        lines.append(f"| {weights} | {height} | {beams} | {median:.3f} | {relative:.4f} | "
                     + " | ".join(f"{m:.2f} ({n})" for m, n in by_range) + " |")
    return write_report(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
