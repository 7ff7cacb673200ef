"""Streams of frames without ROS: the newest-frame slot, stamp pairing, rolling latency statistics,
and the worker thread that drains the slot.

The depth node's callbacks only ``put`` into a ``LatestSlot``; one ``FrameWorker`` takes from it.
A frame that arrives while the worker is busy replaces the waiting one and counts as dropped, so
the queue is never longer than one and latency stays bounded however fast frames come.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Generic, Hashable, Optional, Sequence, Tuple, TypeVar

import numpy as np

T = TypeVar("T")

# Python hands the GIL to a waiting thread only every sys.getswitchinterval() (5 ms by default).
# The frame worker drops and retakes the GIL at every cv2/numpy/ONNX Runtime call, and each
# retake can wait that long behind the executor threads that build incoming 1-2 MB messages; in the
# one-process evaluation graph that made frames 2-3x slower and lost a third of them at 10 Hz.
# At 1 ms both vanished (docs/benchmarks.md, "the evaluation graph").
GIL_SWITCH_INTERVAL_S = 0.001


def prefer_frame_latency() -> None:
    """Shorten the interpreter's thread switch interval (process-wide) so the frame worker gets the
    GIL back promptly; never lengthens one that was set shorter."""
    import sys

    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class LatestSlot(Generic[T]):
    """A queue of length one: ``put`` replaces what waits (counted in ``dropped``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._full = False
        self._closed = False
        self.received = 0
        self.dropped = 0
        self.max_pending = 0

    def put(self, item: T) -> bool:
        """Offer a frame; True when it replaced one that was still waiting."""
        with self._cond:
            self.received += 1
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self.max_pending = max(self.max_pending, 1)
            self._cond.notify()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The waiting frame (and the slot is empty again), or None after ``timeout`` or ``close``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    @property
    def pending(self) -> int:
        with self._cond:
            return int(self._full)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FrameWorker(threading.Thread):
    """Takes frames from a ``LatestSlot`` and hands each to ``handle``; an exception from ``handle``
    goes to ``on_error`` and the worker carries on with the next frame."""

    def __init__(self, slot: LatestSlot, handle: Callable[[object], None],
                 on_error: Callable[[object, BaseException], None], name: str = "frame-worker") -> None:
        super().__init__(name=name, daemon=True)
        self.slot = slot
        self.handle = handle
        self.on_error = on_error
        self._stop_event = threading.Event()
        self.busy = False

    def run(self) -> None:
        while not self._stop_event.is_set():
            item = self.slot.take(timeout=0.1)
            if item is None:
                continue
            self.busy = True
            try:
                self.handle(item)
            except Exception as exc:  # a bad frame must never stop the stream
                self.on_error(item, exc)
            finally:
                self.busy = False

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self.slot.close()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


@dataclass
class Match(Generic[T]):
    item: Optional[T]
    exact: bool


class StampCache(Generic[T]):
    """The last ``capacity`` items (e.g. camera infos) by stamp; ``match`` finds the one with the
    exact stamp, else the newest one of the same frame (``exact=False``). ``match(..., wait_s)`` first
    waits up to ``wait_s`` for the exact one, as image_transport's camera subscriber pairs an image
    with the camera info a driver publishes just after it. Only where waiting can pay: not when one
    newer than the stamp has come (this stamp's was skipped), nor after ``FALLBACK_MODE`` waits in a
    row ended without it (a camera whose stamps never match, or without camera infos), until an item
    comes for a stamp that was matched without it (then waiting would have paid). ``timeouts`` counts
    the waits that ended without it."""

    FALLBACK_MODE = 5

    def __init__(self, capacity: int = 32) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._by_stamp: OrderedDict[Tuple[int, str], T] = OrderedDict()
        self._latest: Dict[str, T] = {}
        self._newest_stamp: Dict[str, int] = {}
        self._missed: Deque[Tuple[int, str]] = deque(maxlen=8)  # stamps matched without their own item
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.exact_matches = 0
        self.fallbacks = 0
        self.consecutive_fallbacks = 0
        self.timeouts = 0
        self._timeouts_in_a_row = 0

    def add(self, stamp_ns: int, frame_id: str, item: T) -> None:
        with self._lock:
            key = (int(stamp_ns), frame_id)
            self._by_stamp[key] = item
            self._by_stamp.move_to_end(key)
            while len(self._by_stamp) > self.capacity:
                self._by_stamp.popitem(last=False)
            self._latest[frame_id] = item
            self._newest_stamp[frame_id] = max(int(stamp_ns), self._newest_stamp.get(frame_id, int(stamp_ns)))
            if key in self._missed:  # it came after its image was served without it: waiting pays
                self._timeouts_in_a_row = 0
            self._arrived.notify_all()

    def _may_come(self, key: Tuple[int, str]) -> bool:
        newest = self._newest_stamp.get(key[1])
        return (key not in self._by_stamp and (newest is None or newest < key[0])
                and self._timeouts_in_a_row < self.FALLBACK_MODE)

    def match(self, stamp_ns: int, frame_id: str, wait_s: float = 0.0) -> Match[T]:
        key = (int(stamp_ns), frame_id)
        with self._lock:
            if wait_s > 0 and self._may_come(key):
                self._arrived.wait_for(lambda: not self._may_come(key), wait_s)
                if key not in self._by_stamp:  # ran out, or a newer one came instead
                    self.timeouts += 1
                    self._timeouts_in_a_row += 1
            item = self._by_stamp.get(key)
            if item is not None:
                self.exact_matches += 1
                self.consecutive_fallbacks = 0
                self._timeouts_in_a_row = 0
                return Match(item, True)
            self._missed.append(key)
            item = self._latest.get(frame_id)
            if item is not None:
                self.fallbacks += 1
                self.consecutive_fallbacks += 1
            return Match(item, False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_stamp)


class RollingStats:
    """Percentiles over the last ``window`` values (milliseconds, say)."""

    def __init__(self, window: int = 300) -> None:
        self._values: Deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))
            self.count += 1

    def percentiles(self, qs: Sequence[float] = (50, 90, 99)) -> Dict[str, float]:
        """{"p50": ..., "p90": ..., "p99": ...}; NaN when nothing was added yet."""
        with self._lock:
            values = np.array(self._values, dtype=np.float64)
        if values.size == 0:
            return {f"p{q:g}": float("nan") for q in qs}
        return {f"p{q:g}": float(v) for q, v in zip(qs, np.percentile(values, qs), strict=False)}

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._times: Deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            self._times.append(now)
            self._trim(now)

    def rate(self) -> float:
        with self._lock:
            now = self._clock()
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class Throttle:
    """At most one True per ``period_s`` for each key: for throttled log messages."""

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: Dict[Hashable, float] = {}

    def __call__(self, key: Hashable) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            return False
        self._last[key] = now
        return True
