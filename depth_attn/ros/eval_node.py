"""eval_node: scores the depth node online, frame by frame.

Subscribes ``depth/image_rect`` (32FC1, the depth node's output of that name), ``depth/timing`` (the
depth node's per-frame timings, stamped like the depth), ``ground_truth`` (32FC1, e.g. from a KITTI bag played with
``--restamp``) and ``/diagnostics`` (the depth node's configuration and running statistics).
Pairs depth with ground truth by exact stamp; per pair computes the KITTI metrics (``crop``,
``min_depth``/``max_depth``) and the latency = receive time - the input image's stamp (meaningful
when the player restamps to the send time); appends one flushed row to ``<out_dir>/frames.csv``.
After ``max_frames`` pairs, or ``idle_timeout`` seconds without messages once some came, or on
shutdown (Ctrl-C), writes ``summary.json`` and ``frames.png`` and prints the table.

The ``network_ms`` column is that frame's network time from ``depth/timing``; for a frame whose timing
never came it falls back to the depth node's recent median from /diagnostics.

The pairing and scoring live in ``depth_attn.evaluation.online`` (no ROS); this is the shell.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Dict, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from depth_attn.evaluation.online import OnlineEvaluator
from depth_attn.evaluation.records import format_table
from depth_attn.metrics import CROPS
from depth_attn.ros import convert, intra_process, param_schema
from depth_attn.ros.param_schema import Param
from depth_attn.ros.sim_clock import steady_timer, warn_without_clock

# read at start (read-only): a run-time set would not reach the evaluator
PARAMETERS: Dict[str, Param] = param_schema.fixed_at_start({
    "out_dir": Param("out/kitti_eval", "folder for frames.csv, summary.json and frames.png"),
    "crop": Param("none", "evaluated region", choices=CROPS),
    "min_depth": Param(1e-3, "ground truth used above this many metres"),
    "max_depth": Param(80.0, "ground truth used below this many metres (predictions clamped to it)"),
    "expected_frames": Param(0, "frames with ground truth the run should see (0 = count the ground truth received)"),
    "max_frames": Param(0, "finish after this many scored frames (0 = no limit)"),
    "idle_timeout": Param(0.0, "finish after this many seconds without messages, once some came (0 = never)"),
    "depth_timeout": Param(10.0, "fail (exit code 1) when ground truth came after the last depth and no depth came for "
                            "this many seconds: the depth node stopped answering (0 = never)"),
    "depth_reliability": Param("reliable", "QoS of the depth subscription (match the depth node)",
                               choices=("reliable", "best_effort")),
    "diagnostics_name": Param("depth", "use /diagnostics statuses whose name contains this"),
    "print_table": Param(True, "print the summary table when finished"),
    "save_depth": Param(False, "also write each scored prediction to <out_dir>/depth/<frame>.png (uint16, "
                        "metres x 256)"),
})


class EvalNode(Node):
    """See the module docstring. ``finished`` is set once the summary is written."""

    def __init__(self, node_name: str = "eval_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = param_schema.declare(self, PARAMETERS)
        self.params = p
        self.evaluator = OnlineEvaluator(Path(p["out_dir"]), p["crop"], float(p["min_depth"]), float(p["max_depth"]),
                                         save_depth=bool(p["save_depth"]))
        self.finished = threading.Event()
        self.exit_code = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Optional[tuple]] = queue.Queue()
        self._closing = False

        depth_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE if p["depth_reliability"] == "reliable"
                               else ReliabilityPolicy.BEST_EFFORT)
        gt_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        # depth arrivals get their own callback group: their receive time must not wait behind other callbacks
        self.sub_depth = intra_process.create_subscription(self, Image, "depth/image_rect", self._on_depth, depth_qos,
                                                           callback_group=MutuallyExclusiveCallbackGroup())
        self.sub_gt = intra_process.create_subscription(self, Image, "ground_truth", self._on_gt, gt_qos,
                                                        callback_group=MutuallyExclusiveCallbackGroup())
        self.sub_timing = intra_process.create_subscription(self, DiagnosticArray, "depth/timing", self._on_timing,
                                                            depth_qos)
        self.sub_diag = self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.timer = steady_timer(self, 0.2, self._check_idle)  # real seconds, under use_sim_time too
        self._last_depth_at: Optional[float] = None  # time.monotonic() of the last depth / ground truth received
        self._last_gt_at: Optional[float] = None
        self._newest_depth_ns = -1  # the newest depth stamp received
        self._gt_ahead: set = set()  # ground-truth stamps newer than every depth received
        warn_without_clock(self)
        self.worker = threading.Thread(target=self._work, name=f"{node_name}-worker", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"scoring {self.sub_depth.topic_name} against {self.sub_gt.topic_name} (crop {p['crop']}, "
            f"{p['min_depth']:g}..{p['max_depth']:g} m) -> {self.evaluator.log.path}")

    # callbacks: stamp the arrival, copy nothing, queue; the worker scores
    def _on_depth(self, msg: Image) -> None:
        received_ns = time.time_ns()
        self._last_depth_at = time.monotonic()
        stamp = convert.stamp_to_ns(msg.header.stamp)
        if stamp > self._newest_depth_ns:
            self._newest_depth_ns = stamp
            self._gt_ahead = {s for s in self._gt_ahead if s > stamp}
        self._queue.put(("depth", msg, received_ns))

    def _on_gt(self, msg: Image) -> None:
        self._last_gt_at = time.monotonic()
        stamp = convert.stamp_to_ns(msg.header.stamp)
        if stamp > self._newest_depth_ns:
            self._gt_ahead.add(stamp)
        self._queue.put(("gt", msg, 0))

    def _on_timing(self, msg: DiagnosticArray) -> None:
        if msg.status:
            values = {kv.key: kv.value for kv in msg.status[0].values}
            self._queue.put(("timing", (convert.stamp_to_ns(msg.header.stamp), values), 0))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if self.params["diagnostics_name"] in status.name:
                self._queue.put(("diag", {kv.key: kv.value for kv in status.values}, 0))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload, received_ns = item
            try:
                with self._lock:
                    if self.evaluator.summary is not None:
                        continue
                    if kind == "diag":
                        self.evaluator.update_diagnostics(payload)
                        continue
                    if kind == "timing":
                        row = self.evaluator.add_timing(*payload)
                    else:
                        stamp = convert.stamp_to_ns(payload.header.stamp)
                        depth = convert.image_to_depth(payload)
                        self.evaluator.expect_timing = self.sub_timing.get_publisher_count() > 0
                        if kind == "depth":
                            row = self.evaluator.add_depth(stamp, depth, received_ns)
                        else:
                            row = self.evaluator.add_ground_truth(stamp, depth)
                if row is not None:
                    self._after_row(row)
            except Exception as exc:  # a bad message must not stop the node
                self.get_logger().warning(f"{kind} message ignored: {exc}")

    def _after_row(self, row) -> None:
        self.get_logger().debug(
            f"frame {row['frame']}: abs_rel {row['abs_rel']:.4f}, latency {row['latency_ms']:.1f} ms")
        limit = int(self.params["max_frames"])
        if limit and self.evaluator.frames_scored >= limit:
            self.finish("max_frames reached")

    def _check_idle(self) -> None:
        if self.finished.is_set():
            return
        ev = self.evaluator
        idle = float(self.params["idle_timeout"])
        over = idle > 0 and bool(ev.gt_received or ev.depth_received) and self._queue.empty() \
            and time.monotonic() - ev.last_activity > idle
        # ground truth still unanswered when the run is over: the depth node stopped too
        stopped = self.depth_stopped(idle if over else float(self.params["depth_timeout"]))
        if stopped is not None:
            self.exit_code = 1
            self.get_logger().error(stopped)
            self.finish(stopped)
        elif over:
            self.finish(f"no messages for {idle:g} s")

    def depth_stopped(self, silence_s: float) -> Optional[str]:
        """Why the depth node is taken as stopped (ground truth came after its last depth, and no depth for
        ``silence_s``), else None; never with ``depth_timeout`` 0. A depth node that never answered is
        still starting (loading, building an engine): only one that answered and then fell silent stopped.
        One unanswered frame is a frame dropped while the network was busy (its ground truth can arrive
        after the depth of the frame before): a stop takes two frames (stamps) newer than every depth."""
        last_depth, last_gt = self._last_depth_at, self._last_gt_at
        if float(self.params["depth_timeout"]) <= 0 or last_depth is None or last_gt is None or last_gt <= last_depth \
                or len(self._gt_ahead) < 2:
            return None
        silent = time.monotonic() - last_depth
        if silent <= silence_s:
            return None
        ev = self.evaluator
        return (f"the depth node stopped answering: no depth on {self.sub_depth.topic_name} for {silent:.0f} s "
                f"while ground truth kept coming ({ev.depth_received} depth, {ev.gt_received} ground truth "
                f"received)")

    def finish(self, reason: str = "shutdown") -> dict:
        """Write summary.json / frames.png (once), print the table, set ``finished``."""
        with self._lock:
            already = self.evaluator.summary is not None
            summary = self.evaluator.finish(frames_expected=int(self.params["expected_frames"]),
                                            source=self.sub_gt.topic_name)
        if not already:
            summary["finished_because"] = reason
            if self.params["print_table"] and not self.evaluator.rows:
                print(f"[{self.get_name()}] {reason}: no frames scored ({self.evaluator.gt_received} ground-truth and "
                      f"{self.evaluator.depth_received} depth messages received)", flush=True)
            elif self.params["print_table"]:
                files = summary["files"]
                print(f"\n[{self.get_name()}] {reason}\n{format_table(summary)}\n"
                      f"per-frame CSV: {files['csv']}\nsummary:       {files['summary']}\n"
                      f"plot:          {files['plot']}",
                      flush=True)
        self.finished.set()
        return summary

    def close(self) -> None:
        """Drain what already arrived, then finish (the graph runner and main() call this on shutdown)."""
        if self._closing:
            return
        self._closing = True
        self._queue.put(None)
        self.worker.join(10.0)
        self.finish("shutdown")


def main(args=None) -> int:
    """`ros2 run depth_attn eval_node --ros-args -p out_dir:=out/eval -r depth/image_rect:=/depth/image_rect
    -r ground_truth:=/kitti/depth/ground_truth`."""
    from depth_attn.ros.node_main import run_node

    return run_node("eval_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
