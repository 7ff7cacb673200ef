"""The eval node's logic without ROS: pair predicted depth with ground truth by exact stamp, score
each pair, log it (one flushed CSV row), and summarise at the end.

The ``frame`` column is the ordinal of the ground-truth message (0, 1, 2, ... in arrival order), the
same numbering offline evaluation uses, so the two CSVs compare row by row."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import cv2
import numpy as np

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

# Where a frame's latency went, from the depth node's depth/timing: in_ms = image stamp -> the depth
# node's callback (the player's publish, the DDS hop or in-process hand-over, the node's executor);
# node_ms = callback -> depth handed to publish() (queue, decode, pre/post-processing, network, the
# message); the rest of the latency is the depth's hop to this node (its publish call included).
PATH_KEYS = ("in_ms", "node_ms")


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def path_breakdown(rows: List[Mapping[str, object]]) -> Dict[str, float]:
    """p50 of each part of the latency over the rows that have all of them (ms); {} when none do."""
    parts = []
    for row in rows:
        values = [_float(row.get(k)) for k in ("latency_ms", *PATH_KEYS, "network_ms")]
        if all(v == v for v in values):
            latency, in_ms, node_ms, network_ms = values
            parts.append((in_ms, node_ms, network_ms, node_ms - network_ms, latency - in_ms - node_ms, latency))
    if not parts:
        return {}
    table = np.array(parts)
    names = ("in_p50", "node_p50", "network_p50", "node_outside_network_p50", "out_p50", "latency_p50")
    return {name: float(np.median(table[:, i])) for i, name in enumerate(names)}


@dataclass
class PendingDepth:
    depth: np.ndarray
    received_ns: int  # wall clock when the depth arrived


class OnlineEvaluator:
    """Feed it ``add_depth`` / ``add_ground_truth`` / ``add_timing`` in any order; each completed pair
    becomes a row.

    ``pending_limit`` bounds the unpaired messages kept per side (a depth for a frame without ground
    truth is never paired; the oldest is forgotten first)."""

    AWAIT_TIMING_ROWS = 2  # scored rows kept back for their timing message before they are logged anyway

    def __init__(self, out_dir: Path, crop: str = "none", min_depth: float = 1e-3, max_depth: float = 80.0,
                 pending_limit: int = 64, save_depth: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.save_depth = save_depth  # each scored prediction to <out_dir>/depth/<frame>.png
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.crop, self.min_depth, self.max_depth = crop, min_depth, max_depth
        self.log = CsvLog(self.out_dir / CSV_NAME)
        self._depth: OrderedDict[int, PendingDepth] = OrderedDict()
        self._gt: OrderedDict[int, Tuple[int, np.ndarray]] = OrderedDict()
        self._limit = pending_limit
        self.gt_received = 0
        self.depth_received = 0
        self.depth_unpaired_dropped = 0
        self.network_ms: Optional[float] = None  # the depth node's latest network time (diagnostics)
        # per-frame timings that came before their depth, by stamp: network_ms, in_ms, node_ms
        self._frame_timing: OrderedDict[int, Dict[str, float]] = OrderedDict()
        self._awaiting_timing: OrderedDict[int, Dict[str, object]] = OrderedDict()  # scored, not yet logged
        self.frames_with_timing = 0
        self.frames_scored = 0
        # True while a depth/timing source is connected: only then do scored rows wait for their timing
        self.expect_timing = False
        self.node_info: Dict[str, str] = {}
        self.first_received_ns: Optional[int] = None
        self.last_received_ns: Optional[int] = None
        self.last_activity = time.monotonic()
        self.summary: Optional[Dict[str, object]] = None

    @property
    def rows(self) -> List[Dict[str, object]]:
        return self.log.rows

    def update_diagnostics(self, values: Mapping[str, str]) -> None:
        """Key/values of the depth node's DiagnosticStatus (network_ms_p50, model, backend, ...)."""
        self.node_info.update(values)
        try:
            self.network_ms = float(values["network_ms_p50"])
        except (KeyError, ValueError):
            pass

    def add_timing(self, stamp_ns: int, values: Mapping[str, str]) -> Optional[Dict[str, object]]:
        """The depth node's timings of the frame with this stamp (its ``depth/timing`` message). It may
        come before or after the frame's depth; a scored row waits for it (see ``_score``). Returns the
        row it completed, if any."""
        try:
            network_ms = float(values["network_ms"])
        except (KeyError, ValueError):
            return None
        timing = {"network_ms": network_ms, **{key: _float(values.get(key)) for key in PATH_KEYS}}
        row = self._awaiting_timing.get(stamp_ns)
        if row is None:
            self._frame_timing[stamp_ns] = timing
            while len(self._frame_timing) > self._limit:
                self._frame_timing.popitem(last=False)
            return None
        row.update(timing)
        self.frames_with_timing += 1
        self._log_awaiting(through=stamp_ns)
        return row

    def add_depth(self, stamp_ns: int, depth: np.ndarray, received_ns: int) -> Optional[Dict[str, object]]:
        self.depth_received += 1
        self.last_activity = time.monotonic()
        if stamp_ns in self._gt:
            ordinal, gt = self._gt.pop(stamp_ns)
            return self._score(ordinal, stamp_ns, depth, gt, received_ns)
        self._depth[stamp_ns] = PendingDepth(depth, received_ns)
        while len(self._depth) > self._limit:
            self._depth.popitem(last=False)
            self.depth_unpaired_dropped += 1
        return None

    def add_ground_truth(self, stamp_ns: int, gt: np.ndarray) -> Optional[Dict[str, object]]:
        ordinal = self.gt_received
        self.gt_received += 1
        self.last_activity = time.monotonic()
        pending = self._depth.pop(stamp_ns, None)
        if pending is not None:
            return self._score(ordinal, stamp_ns, pending.depth, gt, pending.received_ns)
        self._gt[stamp_ns] = (ordinal, gt)
        while len(self._gt) > self._limit:
            self._gt.popitem(last=False)
        return None

    def _score(self, ordinal: int, stamp_ns: int, depth: np.ndarray, gt: np.ndarray, received_ns: int):
        """Score a pair. The row is logged once its frame's timing is known; a row whose timing has not
        come waits (only while ``expect_timing``), at most until ``AWAIT_TIMING_ROWS`` newer rows are scored
        or the run finishes, and then takes the depth node's running median. Rows are logged in the order
        they were scored."""
        if depth.shape != gt.shape:
            if depth.shape[0] > gt.shape[0] or depth.shape[1] > gt.shape[1]:
                raise ValueError(f"depth {depth.shape[1]}x{depth.shape[0]} is larger than the ground truth "
                                 f"{gt.shape[1]}x{gt.shape[0]} of stamp {stamp_ns}")
            # Depth published at the network's scale (depth_resolution: network): scored on the
            # ground truth's grid, as the offline evaluation scores the network's output.
            depth = cv2.resize(depth, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        latency_ms = (received_ns - stamp_ns) / 1e6
        timing = self._frame_timing.pop(stamp_ns, {})
        network_ms = timing.get("network_ms")
        row = frame_row(ordinal, stamp_ns, depth, gt, latency_ms, network_ms, self.crop, self.min_depth,
                        self.max_depth)
        row.update(timing)
        if self.save_depth:
            save_prediction(self.out_dir, ordinal, depth)
        if self.first_received_ns is None:
            self.first_received_ns = received_ns
        self.last_received_ns = received_ns
        self._awaiting_timing[stamp_ns] = row
        self.frames_scored += 1
        if network_ms is not None:
            self.frames_with_timing += 1
            self._log_awaiting(through=stamp_ns)
        elif not self.expect_timing:
            self._log_awaiting(through=stamp_ns)
        while len(self._awaiting_timing) > self.AWAIT_TIMING_ROWS:
            self._log_awaiting(through=next(iter(self._awaiting_timing)))
        return row

    def _log_awaiting(self, through: Optional[int] = None) -> None:
        """Log the waiting rows in order, up to and including the one of stamp ``through`` (all if None);
        those still without their own timing take the running median from /diagnostics."""
        while self._awaiting_timing:
            stamp_ns, row = self._awaiting_timing.popitem(last=False)
            if row["network_ms"] is None or row["network_ms"] != row["network_ms"]:  # None or NaN
                row["network_ms"] = float("nan") if self.network_ms is None else self.network_ms
            self.log.append(row)
            if stamp_ns == through:
                return

    def finish(self, frames_expected: int = 0, model: Optional[Mapping[str, object]] = None, source: str = "",
               error: Optional[str] = None) -> Dict[str, object]:
        """Close the CSV, write summary.json and frames.png; idempotent (the first call wins)."""
        if self.summary is not None:
            return self.summary
        self._log_awaiting()
        self.log.close()
        rows = self.rows
        expected = max(int(frames_expected), self.gt_received, len(rows))
        duration = None
        if len(rows) >= 2 and self.first_received_ns is not None and self.last_received_ns is not None:
            # (n - 1) intervals between n arrivals, scaled so that summarize's n / duration is the rate
            span = (self.last_received_ns - self.first_received_ns) / 1e9
            duration = span * len(rows) / (len(rows) - 1) if span > 0 else None
        info = dict(model or {})
        for key in ("model", "weights", "backend", "precision", "input_hw"):
            if key in self.node_info and key not in info:
                info[key] = self.node_info[key]
        summary = summarize(rows, mode="online", model=info, frames_expected=expected, duration_s=duration,
                            crop=self.crop, min_depth=self.min_depth, max_depth=self.max_depth, source=source,
                            error=error)
        node_network = {q: self.node_info.get(f"network_ms_{q}") for q in ("p50", "p90", "p99")}
        if self.frames_with_timing == len(rows) and rows:
            summary["network_ms_source"] = "depth node depth/timing, per frame"
        elif all(v is not None for v in node_network.values()):
            # the depth node's own statistics over its frames beat percentiles of the per-row snapshots
            summary["network_ms"] = {q: float(v) for q, v in node_network.items()}  # type: ignore[arg-type]
            summary["network_ms_source"] = "depth node /diagnostics (its last <= 300 frames)"
        summary["depth_node"] = dict(self.node_info)
        path = path_breakdown(rows)
        if path:
            summary["path_ms"] = path
        summary["unpaired"] = {"depth": len(self._depth) + self.depth_unpaired_dropped, "ground_truth": len(self._gt)}
        files = {"csv": self.out_dir / CSV_NAME, "summary": self.out_dir / SUMMARY_NAME,
                 "plot": self.out_dir / PLOT_NAME}
        summary["files"] = {k: str(v.resolve()) for k, v in files.items()}
        write_summary(files["summary"], summary)
        try:
            plot_frames(rows, files["plot"], title=f"{info.get('model', 'depth')} (online)")
        except Exception:  # noqa: BLE001  a plot must never cost the summary
            pass
        self.summary = summary
        return summary
