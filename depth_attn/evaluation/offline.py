"""Offline evaluation: read a bag directly (no DDS), or a held-out image folder with its ground truth
(``data/heldout.py``), run DepthEstimator on every frame that has ground truth, write frames.csv /
summary.json / frames.png. Deterministic for a given model and bag."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from depth_attn.data import bags, heldout
from depth_attn.evaluation.records import (
    CSV_NAME,
    PLOT_NAME,
    SUMMARY_NAME,
    CsvLog,
    frame_row,
    plot_frames,
    save_prediction,
    summarize,
    write_summary,
)


@dataclass
class EvalSettings:
    crop: str = "none"
    min_depth: float = 1e-3
    max_depth: float = 80.0
    image_topic: Optional[str] = None
    gt_topic: str = bags.GT_TOPIC
    max_frames: Optional[int] = None
    warmup: int = 1  # network runs on the first frame before timing (not recorded)
    save_depth: bool = False  # each scored prediction to <out_dir>/depth/<frame>.png
    # each frame through the network's training camera from the bag's camera info, as the depth node's
    # canonical_camera (its default) does: offline and online read the camera alike (binning, roi)
    canonical_camera: bool = True


@dataclass
class EvalResult:
    summary: Dict[str, object]
    csv: Path
    summary_path: Path
    plot: Optional[Path]


def evaluate_bag(bag: Path, estimator, out_dir: Path, settings: Optional[EvalSettings] = None,
                 progress: bool = True) -> EvalResult:
    """Evaluate ``estimator`` on every frame of ``bag`` (a bag, or a held-out frame folder) that has
    ground truth. A damaged bag: every frame before the damage keeps its row, the summary records the
    error, and BagError is raised."""
    from tqdm import tqdm

    settings = settings or EvalSettings()
    bag, out_dir = Path(bag), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = heldout.count_frames(bag, settings.gt_topic)
    if settings.max_frames:
        expected = min(expected, settings.max_frames) if expected else settings.max_frames
    csv_path, summary_path = out_dir / CSV_NAME, out_dir / SUMMARY_NAME
    error: Optional[BaseException] = None
    start = time.perf_counter()
    with CsvLog(csv_path) as log, tqdm(total=expected or None, desc="eval", unit="frame", disable=not progress) as bar:
        try:
            warmed = False
            gt_frames = 0  # the `frame` column: ordinal among frames with ground truth (the eval node counts alike)
            for frame in heldout.iter_frames(bag, settings.image_topic, settings.gt_topic, require_gt=True):
                if frame.gt is None:
                    continue
                camera = frame.intrinsics if settings.canonical_camera else None
                if not warmed:
                    for _ in range(settings.warmup):
                        estimator.estimate(frame.rgb, intrinsics=camera)
                    warmed = True
                t0 = time.perf_counter()
                depth = estimator.estimate(frame.rgb, intrinsics=camera)
                latency_ms = (time.perf_counter() - t0) * 1e3
                log.append(frame_row(gt_frames, frame.stamp_ns, depth, frame.gt, latency_ms,
                                     estimator.last_timing.network_ms, settings.crop, settings.min_depth,
                                     settings.max_depth))
                if settings.save_depth:
                    save_prediction(out_dir, gt_frames, depth)
                gt_frames += 1
                bar.update(1)
                if settings.max_frames and len(log.rows) >= settings.max_frames:
                    break
        except (bags.BagError, KeyboardInterrupt) as exc:
            error = exc
        rows = log.rows
    duration = time.perf_counter() - start
    summary = summarize(rows, mode="offline", model=estimator.describe(), frames_expected=max(expected, len(rows)),
                        duration_s=duration, crop=settings.crop, min_depth=settings.min_depth,
                        max_depth=settings.max_depth, source=str(bag), error=str(error) if error else None)
    summary["files"] = {"csv": str(csv_path), "summary": str(summary_path), "plot": str(out_dir / PLOT_NAME)}
    write_summary(summary_path, summary)
    plot = plot_frames(rows, out_dir / PLOT_NAME, title=f"{estimator.model_config.name} on {bag.name} (offline)")
    if error is not None:
        raise error
    return EvalResult(summary, csv_path, summary_path, plot)


def evaluate_frames_folder(estimator, folder: Path, limit: Optional[int] = None, min_depth: float = 1e-3,
                           max_depth: float = 80.0) -> Dict[str, float]:
    """Mean metrics of ``estimator`` over a folder laid out as the shared held-out sets
    (``image_*/NAME.{png,jpg}`` beside ``groundtruth_depth/NAME.png``, metres x 256): the first
    ``limit`` frames in name order, per image then averaged. Benchmarks and tests use it."""
    from depth_attn.imageio import read_depth_png, read_rgb
    from depth_attn.metrics import evaluate_depth, mean_metrics

    folder = Path(folder)
    rows = []
    for image in sorted(folder.glob("image_*/*"))[:limit]:
        gt = read_depth_png(folder / "groundtruth_depth" / f"{image.stem}.png")
        rows.append(evaluate_depth(estimator.estimate(read_rgb(image)), gt, min_depth, max_depth))
    if not rows:
        raise ValueError(f"no frames under {folder}/image_*")
    return mean_metrics(rows)
