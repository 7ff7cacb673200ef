"""Per-frame evaluation rows, the CSV they go to (one flushed row per frame), the summary and its table.

Offline evaluation (``depth-attn eval``) and the online eval node write the same files:
``frames.csv`` (one row per evaluated frame), ``summary.json`` and ``frames.png``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from depth_attn.metrics import METRIC_NAMES, evaluate_depth, mean_metrics

CSV_NAME = "frames.csv"
SUMMARY_NAME = "summary.json"
PLOT_NAME = "frames.png"
DEPTH_DIR_NAME = "depth"  # with save_depth: <out_dir>/depth/<frame:06d>.png, the scored predictions
# in_ms / node_ms (online only, from the depth node's depth/timing): image stamp -> the depth node's
# callback, and callback -> depth handed to publish(); latency_ms - in_ms - node_ms is the depth's hop to the scorer.
CSV_COLUMNS = ("frame", "stamp_ns", "latency_ms", "network_ms", "in_ms", "node_ms", *METRIC_NAMES, "valid_pixels")
PERCENTILES = (50, 90, 99)


def frame_row(
    frame: int,
    stamp_ns: int,
    pred: np.ndarray,
    gt: np.ndarray,
    latency_ms: float,
    network_ms: Optional[float],
    crop: str = "none",
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
) -> Dict[str, object]:
    """One CSV row: the frame's KITTI metrics (prediction vs ground truth, same shape) and its times."""
    metrics = evaluate_depth(pred, gt, min_depth=min_depth, max_depth=max_depth, crop=crop)
    row: Dict[str, object] = {"frame": int(frame), "stamp_ns": int(stamp_ns), "latency_ms": float(latency_ms),
                              "network_ms": float("nan") if network_ms is None else float(network_ms)}
    row.update(metrics)
    return row


def prediction_path(out_dir: Path, frame: int) -> Path:
    """Where a run that saves its predictions puts frame ``frame``'s (see ``save_prediction``)."""
    return Path(out_dir) / DEPTH_DIR_NAME / f"{int(frame):06d}.png"


def save_prediction(out_dir: Path, frame: int, depth: np.ndarray) -> Path:
    """A scored prediction as a KITTI depth PNG (uint16, metres x 256, 0 = none), for the pictures made
    after a run (``depth-attn demo``'s contact sheet and animation)."""
    from depth_attn.imageio import write_depth_png

    path = prediction_path(out_dir, frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_depth_png(path, depth)
    return path


class CsvLog:
    """frames.csv, written one row at a time and flushed after each, so an interrupted run keeps every row."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        self._writer.writeheader()
        self._file.flush()
        self.rows: List[Dict[str, object]] = []

    def append(self, row: Mapping[str, object]) -> None:
        self._writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
        self._file.flush()
        self.rows.append(dict(row))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return "" if value is None else value


def read_csv(path: Path) -> List[Dict[str, float]]:
    """frames.csv back as dicts of numbers (empty cells -> NaN)."""
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row: Dict[str, float] = {}
            for key, value in raw.items():
                if key in ("frame", "stamp_ns", "valid_pixels"):
                    row[key] = int(value) if value else -1
                else:
                    row[key] = float(value) if value else float("nan")
            rows.append(row)
    return rows


def percentiles(values: Iterable[float]) -> Dict[str, float]:
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {f"p{p}": float("nan") for p in PERCENTILES} | {"mean": float("nan"), "max": float("nan")}
    out = {f"p{p}": float(np.percentile(data, p)) for p in PERCENTILES}
    out.update(mean=float(data.mean()), max=float(data.max()))
    return out


def summarize(
    rows: Sequence[Mapping[str, object]],
    *,
    mode: str,
    model: Mapping[str, object],
    frames_expected: int,
    duration_s: Optional[float],
    crop: str,
    min_depth: float,
    max_depth: float,
    source: str = "",
    error: Optional[str] = None,
) -> Dict[str, object]:
    """summary.json: metric means, latency and network-time percentiles, rates and frame counts."""
    received = len(rows)
    summary: Dict[str, object] = {
        "mode": mode,
        "source": source,
        "model": dict(model),
        "evaluation": {"crop": crop, "min_depth": min_depth, "max_depth": max_depth},
        "frames": {"expected": int(frames_expected), "received": received,
                   "dropped": max(int(frames_expected) - received, 0)},
        "metrics": mean_metrics(rows),  # type: ignore[arg-type]
        "latency_ms": percentiles(float(r["latency_ms"]) for r in rows),  # type: ignore[arg-type]
        "network_ms": percentiles(float(r["network_ms"]) for r in rows),  # type: ignore[arg-type]
        "duration_s": duration_s,
        "received_rate_hz": (received / duration_s) if duration_s and received else float("nan"),
    }
    if error:
        summary["error"] = error
    return summary


def write_summary(path: Path, summary: Mapping[str, object]) -> None:
    tmp = Path(path).with_suffix(".json.part")
    tmp.write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    tmp.replace(path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def format_table(summary: Mapping[str, object]) -> str:
    """The summary as a small text table for the terminal."""
    frames = summary["frames"]  # type: ignore[index]
    metrics = summary["metrics"]  # type: ignore[index]
    latency = summary["latency_ms"]  # type: ignore[index]
    network = summary["network_ms"]  # type: ignore[index]
    model = summary.get("model", {})  # type: ignore[union-attr]
    ev = summary["evaluation"]  # type: ignore[index]
    lines = [
        f"model     {model.get('model', '?')} ({model.get('weights', '?')}, {model.get('backend', '?')})",
        f"mode      {summary['mode']}   crop {ev['crop']}   depth {ev['min_depth']:g}..{ev['max_depth']:g} m",
        f"frames    expected {frames['expected']}  received {frames['received']}  dropped {frames['dropped']}"
        f"   rate {_num(summary.get('received_rate_hz'))} Hz",
        "",
        "  ".join(f"{name:>8}" for name in METRIC_NAMES),
        "  ".join(f"{_num(metrics.get(name), 4):>8}" for name in METRIC_NAMES),
        "",
        f"{'':10}{'p50':>9}{'p90':>9}{'p99':>9}",
        f"{'latency':10}" + "".join(f"{_num(latency.get(p)):>9}" for p in ("p50", "p90", "p99")) + "  ms",
        f"{'network':10}" + "".join(f"{_num(network.get(p)):>9}" for p in ("p50", "p90", "p99")) + "  ms",
    ]
    if summary.get("error"):
        lines.append(f"error     {summary['error']}")
    return "\n".join(lines)


def _num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def plot_frames(rows: Sequence[Mapping[str, object]], path: Path, title: str = "") -> Optional[Path]:
    """frames.png: latency and network time (top) and abs_rel / delta1 (bottom) per frame."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [int(r["frame"]) for r in rows]  # type: ignore[call-overload]
    fig, (ax_t, ax_a) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax_t.plot(frames, [r["latency_ms"] for r in rows], "o-", label="latency (receive - input stamp)")
    ax_t.plot(frames, [r["network_ms"] for r in rows], "s--", label="network time")
    ax_t.set_ylabel("ms")
    ax_t.grid(alpha=0.3)
    ax_t.legend(loc="upper right", fontsize=8)
    ax_a.plot(frames, [r["abs_rel"] for r in rows], "o-", color="tab:red", label="abs_rel")
    ax_a.set_ylabel("abs_rel", color="tab:red")
    ax_a.grid(alpha=0.3)
    ax_d = ax_a.twinx()
    ax_d.plot(frames, [r["delta1"] for r in rows], "^-", color="tab:green", label="delta1")
    ax_d.set_ylabel("delta1", color="tab:green")
    ax_a.set_xlabel("frame")
    fig.suptitle(title or "per-frame latency and accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
