"""The evaluation graph's speed: player -> depth node -> eval node over real DDS in one process.

For each frame rate: the shared KITTI frames played (restamped) through the depth node and the eval
node; reports the received rate, frames lost, end-to-end latency p50/p90/p99 (eval node receive
time - the player's send stamp), the network's own p50 (the depth node's diagnostics, same run) and
the graph cost = latency p50 - network p50. "As fast as it goes": the highest tried rate that loses at
most 5 % of the frames (ros2_benchmark's rule), and the player sending flat out.

    .venv/bin/python bench/bench_graph.py                       # 10 Hz, then 15, 20, 30, 60 Hz, and flat out
    .venv/bin/python bench/bench_graph.py --rates 10 --frames 90 --backend torch
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_once(bag: Path, out_dir: Path, rate: float, frames: int, backend: str, warmup: int) -> Dict[str, float]:
    from depth_attn.ros.graph import make_spec, run_graph

    per_pass = 3  # the shared annotated frames
    repeat = max(1, -(-(frames + warmup) // per_pass))
    spec = make_spec(REPO / "config" / "kitti_eval.yaml", sets=[
        f"player.bag={bag}", f"player.repeat={repeat}", f"player.frame_rate={float(rate)}",
        "player.start_delay=1.0", f"depth_node.backend={backend}", f"eval_node.out_dir={out_dir}",
        "eval_node.print_table=false", "eval_node.idle_timeout=3.0",
    ])
    run_graph(spec, duration=900.0)
    summary = json.loads((out_dir / "summary.json").read_text())
    with open(out_dir / "frames.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["frame"]) >= warmup]
    sent = summary["frames"]["expected"] - warmup
    latency = np.array([float(r["latency_ms"]) for r in rows])
    stamps = np.array([int(r["stamp_ns"]) for r in rows])
    arrival = (stamps + latency * 1e6) / 1e9
    received_rate = (len(rows) - 1) / (arrival.max() - arrival.min()) if len(rows) > 1 else float("nan")
    network_p50 = summary["network_ms"]["p50"]
    p50, p90, p99 = (float(np.percentile(latency, q)) for q in (50, 90, 99))
    return {
        "rate_hz": rate, "sent": sent, "received": len(rows), "lost": sent - len(rows),
        "lost_pct": 100.0 * (sent - len(rows)) / max(sent, 1), "received_rate_hz": received_rate,
        "latency_p50_ms": p50, "latency_p90_ms": p90, "latency_p99_ms": p99,
        "jitter_ms": float(np.std(latency)), "network_p50_ms": network_p50, "graph_cost_ms": p50 - network_p50,
        "node_p50_ms": float(summary["depth_node"].get("latency_ms_p50", "nan")),
        "abs_rel": summary["metrics"]["abs_rel"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10,15,20,30,60", help="frame rates to try, Hz (comma-separated)")
    parser.add_argument("--flat-out", type=float, default=1000.0,
                        help="one more run with the player at this rate (as fast as it sends); 0 = skip")
    parser.add_argument("--frames", type=int, default=60, help="frames scored per rate (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="first frames not counted")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench_graph", help="results folder")
    args = parser.parse_args()
    # a DDS domain of its own: other graphs on this machine (tests, benches) must not add traffic
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    from depth_attn.data.kitti import KittiDrive
    from depth_attn.data.kitti2bag import write_bag
    from depth_attn.data.sample import layout_annotated_drive

    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_graph_"))
    drive = KittiDrive.open(layout_annotated_drive(root))
    bag = write_bag(drive.frames, drive.calib, root / "bag", progress=False).path

    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if args.flat_out > 0:
        rates.append(args.flat_out)
    results: List[Dict[str, float]] = []
    for rate in rates:
        result = run_once(bag, args.out / f"rate_{rate:g}", rate, args.frames, args.backend, args.warmup)
        results.append(result)
        print(json.dumps(result), flush=True)

    sustained = [r for r in results if r["lost_pct"] <= 5.0 and r["rate_hz"] != args.flat_out]
    best = max(sustained, key=lambda r: r["rate_hz"]) if sustained else None
    lines = [
        f"- machine: {cpu_name()}, {os.cpu_count()} cores; backend {args.backend} (METER-tiny, meter-xxs-kitti, "
        "636x192 input); date " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        f"- command: `.venv/bin/python bench/bench_graph.py --rates {args.rates} --frames {args.frames} "
        f"--backend {args.backend}`",
        "",
        "| player rate (Hz) | sent | received | lost | received rate (Hz) | latency p50 / p90 / p99 (ms) | "
        "jitter (ms) | network p50 (ms) | depth node in->out p50 (ms) | graph cost p50 (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        label = "flat out" if r["rate_hz"] == args.flat_out else f"{r['rate_hz']:g}"
        lines.append(
            f"| {label} | {r['sent']} | {r['received']} | {r['lost']} ({r['lost_pct']:.0f} %) | "
            f"{r['received_rate_hz']:.1f} | {r['latency_p50_ms']:.1f} / {r['latency_p90_ms']:.1f} / "
            f"{r['latency_p99_ms']:.1f} | {r['jitter_ms']:.1f} | {r['network_p50_ms']:.1f} | {r['node_p50_ms']:.1f} | "
            f"{r['graph_cost_ms']:.1f} |"
        )
    if best:
        lines += ["", f"Highest tried rate with at most 5 % lost: {best['rate_hz']:g} Hz."]
    load = os.getloadavg()
    lines += ["", "Load average during the runs (other work on this machine): "
              f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}."]
    report = "\n".join(lines) + "\n"
    (args.out / "bench_graph.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
