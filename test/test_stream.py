"""depth_attn.stream without ROS: the one-frame slot, stamp pairing, rolling statistics."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from depth_attn.stream import FrameWorker, LatestSlot, RateMeter, RollingStats, StampCache, Throttle


def test_slot_keeps_only_the_newest_and_counts_drops():
    slot = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.pending == 1 and slot.max_pending == 1
    assert slot.take(timeout=0.01) == 3
    assert slot.pending == 0 and slot.take(timeout=0.01) is None
    assert (slot.received, slot.dropped) == (3, 2)


def test_slot_under_a_fast_producer_never_holds_more_than_one():
    slot, taken = LatestSlot(), []

    def consume():
        while True:
            item = slot.take(timeout=1.0)
            if item is None or item == 999:
                taken.append(item)
                return
            taken.append(item)
            time.sleep(0.002)  # a slow worker

    worker = threading.Thread(target=consume)
    worker.start()
    for i in range(500):
        slot.put(i)
    slot.put(999)
    worker.join(5.0)
    assert taken[-1] == 999  # the last frame is always answered
    assert slot.received == 501 and slot.dropped == 501 - len(taken)
    assert taken == sorted(taken) and slot.max_pending == 1


def test_worker_survives_a_failing_frame():
    slot, done, errors = LatestSlot(), [], []

    def handle(item):
        if item == "bad":
            raise ValueError("malformed")
        done.append(item)

    worker = FrameWorker(slot, handle, lambda item, exc: errors.append((item, str(exc))))
    worker.start()
    try:
        slot.put("bad")
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        slot.put("good")
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert errors == [("bad", "malformed")] and done == ["good"]
    assert not worker.is_alive()


def test_stamp_cache_pairs_exactly_then_falls_back_to_the_frames_newest():
    cache = StampCache(capacity=3)
    for stamp in (10, 20, 30, 40):
        cache.add(stamp, "cam", f"info{stamp}")
    cache.add(35, "other", "other35")
    assert len(cache) == 3
    m = cache.match(30, "cam")
    assert (m.item, m.exact) == ("info30", True)
    m = cache.match(10, "cam")  # evicted: the newest of the same frame
    assert (m.item, m.exact) == ("info40", False)
    m = cache.match(99, "other")
    assert (m.item, m.exact) == ("other35", False)
    assert cache.match(99, "nobody").item is None
    assert (cache.exact_matches, cache.fallbacks, cache.consecutive_fallbacks) == (1, 2, 2)
    cache.match(40, "cam")
    assert cache.consecutive_fallbacks == 0
    with pytest.raises(ValueError):
        StampCache(0)


def test_rolling_stats_percentiles_over_the_window():
    stats = RollingStats(window=100)
    assert np.isnan(stats.percentiles()["p50"])
    for v in range(1000):
        stats.add(v)
    p = stats.percentiles((50, 90))
    assert len(stats) == 100 and stats.count == 1000
    assert p["p50"] == pytest.approx(np.percentile(np.arange(900, 1000), 50))
    assert p["p90"] == pytest.approx(np.percentile(np.arange(900, 1000), 90))


def test_rate_meter_and_throttle_with_a_manual_clock():
    now = [0.0]
    meter = RateMeter(window_s=2.0, clock=lambda: now[0])
    assert meter.rate() == 0.0
    for _ in range(21):
        meter.tick()
        now[0] += 0.1
    assert meter.rate() == pytest.approx(10.0, rel=0.06)
    now[0] += 10
    assert meter.rate() == 0.0

    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle("a") and not throttle("a") and throttle("b")
    now[0] += 5.1
    assert throttle("a")


def test_frame_latency_shortens_the_gil_switch_interval_but_never_lengthens_it():
    import sys

    from depth_attn.stream import GIL_SWITCH_INTERVAL_S, prefer_frame_latency

    saved = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        prefer_frame_latency()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
        sys.setswitchinterval(0.0002)
        prefer_frame_latency()
        assert sys.getswitchinterval() == pytest.approx(0.0002)
    finally:
        sys.setswitchinterval(saved)


def test_stamp_cache_waits_a_bounded_time_for_the_exact_stamp():
    """Issue 30: the item a driver publishes just after its image is waited for; a lost one times out to
    the newest; waiting stops after FALLBACK_MODE waits in a row without it and resumes once one comes
    late for a stamp that was served without it."""
    import threading

    def pair(stamp, wait_s):
        found = cache.match(stamp, "cam", wait_s=wait_s)
        return found.item, found.exact

    cache: StampCache[str] = StampCache(8)
    late = threading.Timer(0.02, cache.add, args=(100, "cam", "info 100"))
    late.start()
    assert pair(100, 5.0) == ("info 100", True)  # came 20 ms later: waited for
    assert cache.timeouts == 0
    assert pair(200, 0.05) == ("info 100", False)  # never came: the newest, one time-out
    assert cache.timeouts == 1
    cache.add(300, "cam", "info 300")
    assert pair(250, 5.0) == ("info 300", False)  # a newer one came: no wait at all
    for stamp in range(400, 400 + StampCache.FALLBACK_MODE - 1):  # stamps that never match
        cache.match(stamp, "cam", wait_s=0.01)
    assert cache.timeouts == StampCache.FALLBACK_MODE
    assert not cache._may_come((1000, "cam"))  # no more waiting
    cache.add(403, "cam", "info 403")  # one came late for a stamp served without it: waiting pays again
    assert cache._may_come((1000, "cam"))
