"""Honest latency: warm-up first, synchronise the device before reading the clock, many runs,
percentiles (never a total over a loop)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np


def synchronize(device: str) -> None:
    """Wait for queued work on ``device`` ('cpu', 'cuda', 'cuda:1'); a no-op on the CPU."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))


@dataclass(frozen=True)
class LatencyStats:
    """Per-run latencies in milliseconds, summarised."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_fps: float  # sequential runs per second: 1000 / mean

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        if len(samples_ms) == 0:
            raise ValueError("no latency samples to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        mean = float(values.mean())
        return cls(
            runs=int(values.size),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            mean_ms=mean,
            min_ms=float(values.min()),
            max_ms=float(values.max()),
            throughput_fps=1000.0 / mean if mean > 0 else float("inf"),
        )

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def time_call(fn: Callable[[], object], device: str = "cpu") -> float:
    """Milliseconds one call takes, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


def measure_interleaved(
    calls: Dict[str, Callable[[], object]],
    runs: int,
    warmup: int,
    device: str = "cpu",
    progress: Optional[str] = None,
) -> Dict[str, LatencyStats]:
    """Latency of several callables measured in ONE loop, round-robin: run i of every callable
    before run i + 1 of any, so that load from other processes hits them all alike and ratios
    between them stay fair. ``progress``: a tqdm label, or None for no bar."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: Dict[str, List[float]] = {name: [] for name in calls}
    iterations = range(runs)
    if progress:
        from tqdm import tqdm

        iterations = tqdm(iterations, desc=progress, unit="round", leave=False)
    for _ in iterations:
        for name, fn in calls.items():
            samples[name].append(time_call(fn, device))
    return {name: LatencyStats.from_samples(values) for name, values in samples.items()}


def measure(fn: Callable[[], object], runs: int, warmup: int, device: str = "cpu") -> LatencyStats:
    return measure_interleaved({"fn": fn}, runs, warmup, device)["fn"]
