"""What a training run writes (rank 0 only): the per-step CSV (flushed every step), the curves PNG
and the weights card that `depth-attn weights import` and the weights table read."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

CSV_COLUMNS = (
    "step", "epoch", "lr", "loss", "silog", "distill_output", "distill_features", "load_balance",
    "images_per_s", "elapsed_s", "val_abs_rel", "val_delta1", "param_spread",
)


class StepLog:
    """Appends one row per finished step; flushed at once, so an interrupted run keeps every row."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = Path(path)
        exists = self.path.is_file() and self.path.stat().st_size > 0
        self.file = open(self.path, "a" if append else "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        if not (append and exists):
            self.writer.writeheader()
            self.file.flush()

    def write(self, row: Dict[str, Any]) -> None:
        self.writer.writerow({k: _fmt(row.get(k)) for k in CSV_COLUMNS})
        self.file.flush()
        import os

        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def truncate_log(path: Path, last_step: int) -> None:
    """Drop rows after ``last_step`` (steps done after the checkpoint a run resumes from)."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(r for r in rows if r.get("step") and int(r["step"]) <= last_step)


def read_log(path: Path) -> List[Dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def plot_curves(log_path: Path, png_path: Path, title: str) -> Optional[Path]:
    """Loss terms (log scale) and held-out abs_rel against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log_path)
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "silog", "distill_output", "distill_features", "load_balance"):
        points = [(s, r.get(key, math.nan)) for s, r in zip(steps, rows, strict=True)]
        points = [(s, v) for s, v in points if v == v and v > 0]  # silog only on frames with ground truth
        if points:
            sparse = len(points) < 0.8 * len(rows)
            ax_loss.plot([p[0] for p in points], [p[1] for p in points], label=key, linewidth=1,
                         marker="." if sparse else None, linestyle="none" if sparse else "-", markersize=3)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("training loss terms")
    ax_loss.legend(fontsize=8)
    val = [(r["step"], r["val_abs_rel"]) for r in rows if r.get("val_abs_rel") == r.get("val_abs_rel")]
    if val:
        ax_val.plot([v[0] for v in val], [v[1] for v in val], marker="o")
    ax_val.set_xlabel("step")
    ax_val.set_ylabel("abs_rel")
    ax_val.set_title("held-out abs_rel (validation set)")
    fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def write_card(path: Path, card: Dict[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def command_line(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
