"""Backends timed in processes of their own that take turns: each backend runs in a worker process,
and only one worker runs at a time, so one runtime's threads (ONNX Runtime's and PyTorch's spin
after each run, OpenVINO pins its own) cannot steal another's cores, as they do when two runtimes
share a process. The turns alternate (A B, B A, A B, ...) so that load from other processes, and
its drift over the run, hits every backend alike: the ratios stay fair on a shared machine.

``depth-attn bench --backends ...`` and the benchmarks in ``bench/`` use it.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from depth_attn.inference.timing import LatencyStats

# After a worker's turn its idle threads may still spin (PyTorch's OpenMP waits ~200 ms by default):
# the next worker starts only after this pause.
SETTLE_S = 0.3


@dataclass
class TurnsResult:
    describe: Dict[str, str]
    input_hw: Tuple[int, int]
    network: LatencyStats
    end_to_end: Optional[LatencyStats] = None
    start_s: float = 0.0  # building the estimator (export, compile or cache hit) in the worker
    samples: Dict[str, List[float]] = field(default_factory=dict, repr=False)


def _worker(connection, config, camera_hw: Tuple[int, int], device: str) -> None:
    """One backend in its own process: build it, then answer ("network" | "end_to_end", runs, warmup)."""
    try:
        import numpy as np

        from depth_attn.inference import DepthEstimator
        from depth_attn.inference.timing import time_call

        start = time.perf_counter()
        estimator = DepthEstimator(config)
        start_s = time.perf_counter() - start
        rgb = np.random.default_rng(0).integers(0, 256, (*camera_hw, 3), dtype=np.uint8)
        batch = estimator.preprocess(rgb)
        calls = {"network": lambda: estimator.backend.run(batch), "end_to_end": lambda: estimator.estimate(rgb)}
        describe = {k: str(v) for k, v in estimator.describe().items()}
        connection.send(("ready", describe, tuple(estimator.input_hw), start_s))
        while True:
            message = connection.recv()
            if message is None:
                return
            what, runs, warmup = message
            for _ in range(warmup):
                calls[what]()
            connection.send(("samples", [time_call(calls[what], device) for _ in range(runs)]))
    except Exception as exc:  # reported to the parent, which names the backend
        connection.send(("error", f"{type(exc).__name__}: {exc}"))


def measure_in_turns(
    configs: Dict[str, object],
    runs: int,
    warmup: int,
    camera_hw: Tuple[int, int] = (375, 1242),
    turns: int = 3,
    end_to_end: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> Dict[str, TurnsResult]:
    """``configs``: label -> ``EstimatorConfig``. Each backend gets ``warmup`` untimed runs and then
    ``runs`` timed runs, split into ``turns`` turns; between turns the other workers take theirs."""
    if runs < 1 or warmup < 0 or turns < 1:
        raise ValueError(f"runs and turns must be >= 1 and warmup >= 0, got {runs}, {turns}, {warmup}")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no thread pool inherited
    workers: Dict[str, Tuple[object, object]] = {}
    ready: Dict[str, tuple] = {}
    try:
        for label, config in configs.items():  # started one by one: building is not timed, but exports are heavy
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, config, camera_hw, device), daemon=True)
            process.start()
            workers[label] = (process, parent)
            ready[label] = _receive(label, parent, process)
        phases = ["network"] + (["end_to_end"] if end_to_end else [])
        samples: Dict[str, Dict[str, List[float]]] = {label: {p: [] for p in phases} for label in configs}
        per_turn = [runs // turns + (1 if i < runs % turns else 0) for i in range(turns)]
        steps = [(phase, i) for phase in phases for i in range(turns) if per_turn[i]]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(steps) * len(configs), desc="turns", unit="turn", leave=False)
        for phase, i in steps:
            order = list(configs) if i % 2 == 0 else list(reversed(list(configs)))
            for label in order:
                process, connection = workers[label]
                connection.send((phase, per_turn[i], warmup if i == 0 else max(1, warmup // 5)))
                samples[label][phase] += _receive(label, connection, process)[1]
                if bar is not None:
                    bar.update(1)
                time.sleep(SETTLE_S)
        if bar is not None:
            bar.close()
    finally:
        for process, connection in workers.values():
            try:
                connection.send(None)
            except (OSError, BrokenPipeError):
                pass
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    results = {}
    for label in configs:
        _, describe, input_hw, start_s = ready[label]
        e2e = LatencyStats.from_samples(samples[label]["end_to_end"]) if end_to_end else None
        results[label] = TurnsResult(describe, input_hw, LatencyStats.from_samples(samples[label]["network"]), e2e,
                                     start_s, samples[label])
    return results


def _receive(label: str, connection, process) -> tuple:
    while not connection.poll(1.0):
        if not process.is_alive():
            raise RuntimeError(f"the {label} worker process died (exit code {process.exitcode})")
    message = connection.recv()
    if message[0] == "error":
        raise RuntimeError(f"{label}: {message[1]}")
    return message


def describe_method(turns: int, runs: int) -> str:
    return (f"each backend in a process of its own, taking turns ({turns} turns of about {runs // turns} runs, "
            f"order alternating, {SETTLE_S:.1f} s pause between), so no backend runs while another is timed")
