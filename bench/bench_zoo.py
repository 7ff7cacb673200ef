"""Benchmark the model zoo on this machine: parameters, GMACs at the study's input size, and CPU
latency (p50, p90) of the network alone, each variant as a ratio to its base measured in the
same run.

Timing done right (the study's pitfall 6 avoided): the network alone on a fixed input (no data
loading, no pre/post-processing), warm-up calls first, torch.inference_mode, the device
synchronised before each clock read (CUDA), many repetitions, median and p90 reported. The
configurations of one (network, size) group are timed round-robin, one call each per round, so a
change in machine load hits base and variants alike and the ratios stay fair.

    .venv/bin/python bench/bench_zoo.py --out docs/bench/zoo_results.csv
    .venv/bin/python bench/bench_zoo.py --network meter --repeats 30
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds for one call, the device synchronised before both clock reads."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_round_robin(
    calls: Dict[str, Callable[[], object]], warmup: int, repeats: int, device: torch.device
) -> Dict[str, List[float]]:
    """Warm each call up, then ``repeats`` rounds of one timed call each; seconds per call."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(timed_call(fn, device))
    return times


def selected_configs(networks: Sequence[str], sizes: Sequence[str]):
    from depth_attn.models import list_configs

    out = []
    for config in list_configs():
        if config.network not in networks:
            continue
        if config.size in sizes and (config.size == "tiny" or config.network == "meter"):
            out.append(config)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from depth_attn.models.registry import NETWORKS, SIZES

    for flag, names, what in (("--network", NETWORKS, "networks to measure"),
                              ("--size", SIZES, "sizes (Swin-based networks are measured at tiny only)")):
        parser.add_argument(flag, nargs="+", default=list(names), choices=names, help=what)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per configuration")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per configuration (default: 20 for METER, 3 for the Swin networks)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/zoo_results.csv"), help="CSV to write")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from depth_attn.models import build_model
    from depth_attn.models.spec import network_spec
    from depth_attn.models.stats import model_stats

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = selected_configs(args.network, args.size)
    groups: Dict[tuple, list] = {}
    for config in configs:
        groups.setdefault((config.network, config.size), []).append(config)

    rows = []
    for (network, _size), members in tqdm(list(groups.items()), desc="groups", file=sys.stderr):
        hw = network_spec(network).input_hw
        repeats = args.repeats or (20 if network == "meter" else 3)
        warmup = args.warmup if network == "meter" else min(args.warmup, 1)
        x = torch.rand(1, 3, *hw, device=device)
        models, calls = {}, {}
        for config in members:
            torch.manual_seed(0)
            model = build_model(config.network, config.size, config.variant, config.placement).eval().to(device)
            models[config.name] = model

            def call(m=model, x=x):
                with torch.inference_mode():
                    return m(x)

            calls[config.name] = call
        times = time_round_robin(calls, warmup, repeats, device)
        base_p50 = base_min = None
        for config in members:
            stats = model_stats(config, hw)
            p50 = statistics.median(times[config.name]) * 1e3
            best = min(times[config.name]) * 1e3
            if config.variant == "base":
                base_p50, base_min = p50, best
            rows.append(
                {
                    "config": config.name,
                    "input": f"{hw[0]}x{hw[1]}",
                    "params_M": round(stats.params / 1e6, 3),
                    "gmacs": round(stats.gmacs, 3),
                    "p50_ms": round(p50, 1),
                    "p90_ms": round(percentile(times[config.name], 0.9) * 1e3, 1),
                    "min_ms": round(best, 1),
                    "repeats": repeats,
                    "speed_vs_base": round(base_p50 / p50, 3) if base_p50 else "",
                    "speed_vs_base_min": round(base_min / best, 3) if base_min else "",
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
        del models, calls

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}"
    )
    print(
        "| config | input | params (M) | GMACs | p50 (ms) | p90 (ms) | min (ms) "
        "| speed vs base, p50 (x) | speed vs base, min (x) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['config']} | {r['input']} | {r['params_M']} | {r['gmacs']} | {r['p50_ms']} | {r['p90_ms']} "
            f"| {r['min_ms']} | {r['speed_vs_base']} | {r['speed_vs_base_min']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
