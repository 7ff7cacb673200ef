"""The depth node's health: per-stage timing statistics, rejected input and failures (rate-limited
warnings), the per-frame ``depth/timing`` message and the ``/diagnostics`` status with its level rules."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Dict, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from depth_attn.stream import RateMeter, RollingStats, Throttle

# per-frame timings (ms): cloud and color include their publish; publish = time inside the
# publish() calls of depth, points and depth/image_color (rclpy's conversion, DDS serialisation and transport)
# depth/timing, one message per frame after its depth: the stages, and where its latency went: in_ms =
# image stamp -> this node's callback (camera/player, transport, executor), node_ms = callback -> depth
# handed to publish()
FRAME_TIMING_KEYS = ("decode_ms", "preprocess_ms", "network_ms", "postprocess_ms", "in_ms", "node_ms")
STAGES = ("decode", "preprocess", "network", "postprocess", "depth_msg", "cloud", "color", "publish", "total",
          "latency")

# /diagnostics goes STALE after this many periods without an image.
STALE_PERIODS = 5


def reason_key(exc: BaseException) -> str:
    """The kind of bad input an error reports, which its warning is rate-limited by: the error's ``kind``
    where it names one, else its whole message with the numbers masked (so fx=1e-300 and fx=2e-300 are
    one kind, and a NaN in K does not hide an all-zero P)."""
    kind = getattr(exc, "kind", None)
    if kind:
        return str(kind)
    return type(exc).__name__ + ": " + re.sub(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", "#", str(exc))


def untrained_warning(estimator) -> str:
    """What the node says (WARN) when it publishes depth from a network that is not (fully) trained."""
    name = estimator.model_config.name
    if estimator.weights_path is None:
        return (f"{name} runs UNTRAINED (weights: none): its depth is meaningless; use it for timing only, or set "
                "weights: auto")
    if estimator.coverage_gaps:
        gaps = len(estimator.coverage_gaps)
        return (f"{name} runs with weights {estimator.weights_name} that do not cover it ({gaps} "
                "tensors untrained, allow_partial_weights is set): its depth is not trustworthy")
    return ""


class FrameTiming:
    """``depth/timing``: one DiagnosticArray per frame, stamped like its depth (so an evaluator pairs
    them exactly), with ``FRAME_TIMING_KEYS`` in milliseconds. Its message is reused frame after frame."""

    def __init__(self, publisher, node_name: str) -> None:
        self.publisher = publisher
        self._status = DiagnosticStatus(level=DiagnosticStatus.OK, name=f"{node_name}: timing",
                                        values=[KeyValue(key=k) for k in FRAME_TIMING_KEYS])

    def publish(self, header, values_ms: Sequence[float]) -> None:
        for key_value, value in zip(self._status.values, values_ms, strict=True):
            key_value.value = f"{value:.3f}"
        self.publisher.publish(DiagnosticArray(header=header, status=[self._status]))


class FrameHealth:
    """What the frames did: timing statistics per stage, the output rate, rejected input by kind and
    failures by error type, each rejection or failure warned about at most every 5 s per kind."""

    def __init__(self, logger, throttle: Throttle) -> None:
        self.stats = {name: RollingStats(300) for name in STAGES}
        self.rate = RateMeter(5.0)
        self.bad_input: Counter = Counter()
        self.errors: Counter = Counter()
        self.last_stage_ms: Dict[str, float] = {}
        self.last_image = time.monotonic()  # (start: STALE after STALE_PERIODS reports without an image)
        self._logger = logger
        self._throttle = throttle
        self._reported = (0, 0)  # bad inputs and failures counted at the last diagnostics report
        self._last_bad_reason = ""

    def frame_done(self, stage_ms: Dict[str, float]) -> None:
        for name, value in stage_ms.items():
            self.stats[name].add(value)
        self.last_stage_ms = stage_ms
        self.rate.tick()

    def count_bad(self, kind: str, exc: BaseException) -> None:
        self._last_bad_reason = f"bad {kind}: {exc}"
        self.bad_input[kind] += 1
        if self._throttle(("bad", kind, reason_key(exc))):
            self._logger.warning(f"bad {kind} ignored ({self.bad_input[kind]} so far): {exc}")

    def count_error(self, exc: BaseException) -> None:
        self.errors[type(exc).__name__] += 1
        if self._throttle(("error", type(exc).__name__)):
            self._logger.error(f"frame failed ({type(exc).__name__}): {exc}; carrying on with the next")

    def values(self) -> Dict[str, str]:
        """The timing percentiles for /diagnostics."""
        values = {}
        for label, stage in (("network_ms", "network"), ("total_ms", "total"), ("latency_ms", "latency")):
            for q, v in self.stats[stage].percentiles().items():
                values[f"{label}_{q}"] = f"{v:.2f}"
        return values

    def level(self, stale_after_s: float, image_topic: str, received: int):
        """(level, message) since the last report: rejected input is an ERROR with its count and reason,
        failures a WARN; no image for ``stale_after_s`` is STALE. Each clears once the cause has gone."""
        level = DiagnosticStatus.OK
        message = "running"
        bad = sum(self.bad_input.values())
        failed = sum(self.errors.values())
        new_bad, new_failed = bad - self._reported[0], failed - self._reported[1]
        self._reported = (bad, failed)
        silent_s = time.monotonic() - self.last_image
        if new_bad:
            level = DiagnosticStatus.ERROR
            message = (f"{new_bad} input message(s) rejected since the last report ({bad} in all): "
                       f"{self._last_bad_reason}")
        elif new_failed:
            level, message = DiagnosticStatus.WARN, f"{new_failed} frame(s) failed since the last report, see log"
        elif silent_s > stale_after_s:
            level = DiagnosticStatus.STALE
            message = (f"no image on {image_topic} for {silent_s:.1f} s" if received
                       else f"no image on {image_topic} yet ({silent_s:.1f} s since start)")
        return level, message


def depth_status(node) -> DiagnosticStatus:
    """The depth node's /diagnostics status: counts, model, timing percentiles and a level that says
    what is wrong (rejected input, failures, no image, untrained network, still building)."""
    estimator = node.estimator
    s = node.settings
    info = estimator.describe() if estimator is not None else {
        "model": s.model.name, "weights": s.weights, "backend": node.backend_name,
        "device": s.device}
    health: FrameHealth = node.health
    values = {
        "rate_hz": f"{health.rate.rate():.2f}",
        "frames_received": str(node.slot.received),
        "frames_published": str(node.frames_out),
        "frames_dropped": str(node.slot.dropped),
        "pending_max": str(node.slot.max_pending),
        "bad_images": str(health.bad_input["image"]),
        "bad_camera_infos": str(health.bad_input["camera_info"]),
        "processing_errors": str(sum(health.errors.values())),
        "frames_without_camera_info": str(node.pairing.frames_without_info),
        "camera_info_waits_timed_out": str(node.pairing.infos.timeouts),
        "camera_info_fallbacks": str(node.pairing.infos.fallbacks),
        "model": str(info.get("model")),
        "weights": str(info.get("weights")),
        "backend": str(info.get("backend", node.backend_name)),
        "backend_choice": node.auto_choice or "given",  # backend auto: what it chose and why
        "precision": s.precision,
        "input_hw": "x".join(str(v) for v in estimator.input_hw) if estimator is not None else "-",
        "frames_while_building": str(node.frames_while_building),
    }
    values.update(health.values())
    level, message = health.level(STALE_PERIODS * s.diagnostics_period, node.sub_image.topic_name,
                                  node.slot.received)
    if level != DiagnosticStatus.ERROR and getattr(node, "untrained_warning", ""):
        level, message = DiagnosticStatus.WARN, node.untrained_warning
    if estimator is None:  # building in the background, or failed to
        took = time.monotonic() - node.build_started
        if node.build_error:
            level, message = DiagnosticStatus.ERROR, f"cannot start: {node.build_error}"
        else:
            what = "engine" if node.backend_name == "tensorrt" else "network"
            level, message = DiagnosticStatus.WARN, f"building {what} ({took:.0f} s)"
    return DiagnosticStatus(level=level, name=f"{node.get_name()}: depth", message=message,
                            hardware_id=str(info.get("device", info.get("backend"))),
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])


def lifecycle_status(node_name: str, state: str, configure_error: Optional[str]) -> DiagnosticStatus:
    """The status of a depth node that is not active: its lifecycle state, and why configure failed."""
    level, message = DiagnosticStatus.OK, {
        "unconfigured": "unconfigured: waiting for configure (lifecycle manager)",
        "inactive": "inactive: configured, waiting for activate (no camera subscriptions)",
        "finalized": "finalized (shut down)"}.get(state, state)
    if state == "unconfigured" and configure_error:
        level, message = DiagnosticStatus.ERROR, f"unconfigured: configure failed: {configure_error}"
    return DiagnosticStatus(level=level, name=f"{node_name}: depth", message=message)
