"""The evaluation graph's speed: player -> depth node -> eval node over real DDS.

For each case and frame rate: the shared KITTI frames played (restamped) through the depth node and
the eval node; reports the received rate, frames lost, end-to-end latency p50/p90/p99 (eval node
receive time - the player's send stamp), the network's own p50 (the depth node's diagnostics, same
run) and the graph cost = latency p50 - network p50, split (per frame, from the depth node's depth/timing) into
in (image stamp -> the depth node's callback), the depth node outside its network, and out (the
depth's hop to the eval node). "As fast as it goes": the highest tried rate
that loses at most 5 % of the frames (ros2_benchmark's rule), and the player sending flat out.

Cases (``--cases``, LAYOUT/DEPTH_RESOLUTION):
  one/camera         all three nodes in one process (`depth-attn run`), depth at the camera's 1242x375;
                     the nodes hand messages to each other in-process (depth_attn/ros/intra_process.py)
  one/network        the same with depth_resolution: network (636x192 depth and camera info)
  one-dds/camera     one process, every message through DDS (`depth-attn run --no-intra-process`)
  one-dds/network    the same at the network's resolution
  processes/camera   each node in a process of its own (`depth-attn run --node NAME`), as on a robot,
                     with the transport `depth-attn run` sets up (config/fastdds_large_data.xml)
  processes/network  the same with depth at the network's resolution
  processes-default/camera  separate processes with Fast DDS's default settings (DEPTH_ATTN_TRANSPORT=default)

    .venv/bin/python bench/bench_graph.py                       # one/camera at 10, 15, 20, 30, 60 Hz and flat out
    .venv/bin/python bench/bench_graph.py --rates 10 --flat-out 0 \
        --cases one/camera,one/network,processes/camera,processes/network,processes-default/camera
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from depth_attn.cli.doctor import cpu_model  # noqa: E402

CASES = ("one/camera", "one/network", "one-dds/camera", "one-dds/network",
         "processes/camera", "processes/network", "processes-default/camera")


def graph_sets(bag: Path, out_dir: Path, rate: float, frames: int, backend: str, warmup: int,
               depth_resolution: str) -> List[str]:
    per_pass = 3  # the shared annotated frames
    repeat = max(1, -(-(frames + warmup) // per_pass))
    return [
        f"player.bag={bag}", f"player.repeat={repeat}", f"player.frame_rate={float(rate)}",
        "player.start_delay=1.0", "player.wait_timeout=60.0", f"depth_node.backend={backend}",
        f"depth_node.depth_resolution={depth_resolution}", f"eval_node.out_dir={out_dir}",
        "eval_node.print_table=false", "eval_node.idle_timeout=3.0",
    ]


def _frame_name(frame: str) -> str:
    """'func (/path/to/file.py:123)' -> 'func (file.py)'."""
    func, _, where = frame.partition(" (")
    return f"{func} ({where.rsplit('/', 1)[-1].split(':')[0]})" if where else func


def summarise_profile(path: Path, top: int = 14) -> List[str]:
    """Markdown rows from py-spy's collapsed stacks (``-f raw``, non-idle samples only): how the busy
    samples split between the frame worker (the depth node's ``_process``), the executor (callbacks,
    taking messages off DDS) and the rest (start-up, imports), then the worker's hottest functions
    (inclusive: samples inside them; self: on top of the stack), as shares of the worker's samples."""
    groups = {"frame worker (_process)": 0, "executor (callbacks, take)": 0, "start-up and other": 0}
    inclusive: Dict[str, int] = {}
    own: Dict[str, int] = {}
    worker_total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        worker = [i for i, f in enumerate(frames) if f == "DepthNode._process (depth_node.py)"]
        if worker:
            groups["frame worker (_process)"] += count
            worker_total += count
            below = frames[worker[0]:]
            for name in set(below):
                inclusive[name] = inclusive.get(name, 0) + count
            own[below[-1]] = own.get(below[-1], 0) + count
        elif any(f.split(" (")[0].rsplit(".", 1)[-1] in ("spin_once", "spin", "_spin_once_impl") for f in frames):
            groups["executor (callbacks, take)"] += count
        else:
            groups["start-up and other"] += count
    total = sum(groups.values())
    rows = ["| where the busy samples were | samples | share |", "| --- | ---: | ---: |"]
    rows += [f"| {name} | {n} | {100.0 * n / max(total, 1):.1f} % |" for name, n in groups.items()]
    rows += ["", "| frame worker: function (file) | inclusive % of the worker | self % |", "| --- | ---: | ---: |"]
    for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"| `{name}` | {100.0 * count / max(worker_total, 1):.1f} | "
                    f"{100.0 * own.get(name, 0) / max(worker_total, 1):.1f} |")
    return rows


def run_in_processes(sets: List[str], out_dir: Path, transport: str, profile: bool = False) -> None:
    """player, depth node and eval node each in its own `depth-attn run --node NAME` process; with
    ``profile`` the depth node runs under py-spy (sampling, 100 Hz) into ``depth_node.pyspy.txt``."""
    env = dict(os.environ)
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        env.pop(name, None)
    env["DEPTH_ATTN_TRANSPORT"] = transport
    cli = "import sys; from depth_attn.cli import main; sys.exit(main())"
    base = [sys.executable, "-c", cli, "run", "--config", str(REPO / "config" / "kitti_eval.yaml")]
    out_dir.mkdir(parents=True, exist_ok=True)
    procs: Dict[str, subprocess.Popen] = {}
    try:
        for node in ("eval_node", "depth_node", "player"):  # listeners first
            extra = ["--duration", "900"] if node == "depth_node" else []
            for item in sets:  # a process is given its own node's parameters only
                extra += ["--set", item] if item.startswith(f"{node}.") else []
            command = base + ["--node", node] + extra
            if profile and node == "depth_node":
                py_spy = Path(sys.executable).with_name("py-spy")
                command = [str(py_spy), "record", "--nonblocking", "--rate", "100", "-f", "raw",
                           "-o", str(out_dir / "depth_node.pyspy.txt"), "--"] + command
            with open(out_dir / f"{node}.log", "w") as log:
                procs[node] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)
        procs["player"].wait(timeout=900)
        procs["eval_node"].wait(timeout=120)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                # SIGINT to its process group: the node closes cleanly and py-spy (if it wraps it) writes
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)


def run_once(bag: Path, out_dir: Path, rate: float, frames: int, backend: str, warmup: int,
             case: str = "one/camera", profile: bool = False) -> Dict[str, float]:
    from depth_attn.ros.graph import make_spec, run_graph

    layout, depth_resolution = case.split("/")
    sets = graph_sets(bag, out_dir, rate, frames, backend, warmup, depth_resolution)
    if layout in ("one", "one-dds"):
        spec = make_spec(REPO / "config" / "kitti_eval.yaml", sets=sets, intra_process=layout == "one")
        run_graph(spec, duration=900.0)
    else:
        run_in_processes(sets, out_dir, "default" if layout == "processes-default" else "profile", profile)
    summary = json.loads((out_dir / "summary.json").read_text())
    with open(out_dir / "frames.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["frame"]) >= warmup]
    sent = summary["frames"]["expected"] - warmup
    nan = float("nan")
    latency = np.array([float(r["latency_ms"]) for r in rows]) if rows else np.array([nan])
    stamps = np.array([int(r["stamp_ns"]) for r in rows]) if rows else np.array([0])
    arrival = (stamps + latency * 1e6) / 1e9
    received_rate = (len(rows) - 1) / (arrival.max() - arrival.min()) if len(rows) > 1 else nan
    network_p50 = float(summary.get("network_ms", {}).get("p50", nan))
    p50, p90, p99 = (float(np.percentile(latency, q)) for q in (50, 90, 99))
    return {
        "case": case, "rate_hz": rate, "sent": sent, "received": len(rows), "lost": sent - len(rows),
        "lost_pct": 100.0 * (sent - len(rows)) / max(sent, 1), "received_rate_hz": received_rate,
        "latency_p50_ms": p50, "latency_p90_ms": p90, "latency_p99_ms": p99,
        "jitter_ms": float(np.std(latency)), "network_p50_ms": network_p50, "graph_cost_ms": p50 - network_p50,
        "node_p50_ms": float(summary.get("depth_node", {}).get("latency_ms_p50", nan)),
        "abs_rel": summary.get("metrics", {}).get("abs_rel", nan),
        # where the latency went (p50 over the frames, from the depth node's depth/timing)
        "in_p50_ms": summary.get("path_ms", {}).get("in_p50", nan),
        "node_outside_p50_ms": summary.get("path_ms", {}).get("node_outside_network_p50", nan),
        "out_p50_ms": summary.get("path_ms", {}).get("out_p50", nan),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10,15,20,30,60", help="frame rates to try, Hz (comma-separated)")
    parser.add_argument("--flat-out", type=float, default=1000.0,
                        help="one more run with the player at this rate (as fast as it sends); 0 = skip")
    parser.add_argument("--frames", type=int, default=60, help="frames scored per rate (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="first frames not counted")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino", "torch", "auto"))
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench_graph", help="results folder")
    parser.add_argument("--cases", default="one/camera",
                        help=f"comma-separated cases, each run at every rate: {', '.join(CASES)} (see above)")
    parser.add_argument("--profile", action="store_true",
                        help="run the depth node of the processes cases under py-spy (pip install py-spy) and "
                        "add its hottest functions to the report")
    args = parser.parse_args()
    if args.profile and not Path(sys.executable).with_name("py-spy").exists():
        parser.error("--profile needs py-spy beside this Python: pip install py-spy")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for case in cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}; choose from {', '.join(CASES)}")
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
    for rate in rates:  # the cases interleaved per rate: one sitting, comparable
        for case in cases:
            folder = args.out / f"{case.replace('/', '_')}_rate_{rate:g}"
            result = run_once(bag, folder, rate, args.frames, args.backend, args.warmup, case, args.profile)
            result["folder"] = str(folder)
            results.append(result)
            print(json.dumps(result), flush=True)
    lines = [
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; backend {args.backend} (METER-tiny, meter-xxs-kitti, "
        "636x192 input); date " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        f"- command: `.venv/bin/python bench/bench_graph.py --rates {args.rates} --flat-out {args.flat_out:g} "
        f"--frames {args.frames} --backend {args.backend} --cases {','.join(cases)}`",
        "",
        "| case | player rate (Hz) | sent | received | lost | received rate (Hz) | latency p50 / p90 / p99 (ms) | "
        "jitter (ms) | network p50 (ms) | depth node in->out p50 (ms) | graph cost p50 (ms) | "
        "graph cost: in / node outside network / out p50 (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        label = "flat out" if r["rate_hz"] == args.flat_out else f"{r['rate_hz']:g}"
        lines.append(
            f"| {r['case']} | {label} | {r['sent']} | {r['received']} | {r['lost']} ({r['lost_pct']:.0f} %) | "
            f"{r['received_rate_hz']:.1f} | {r['latency_p50_ms']:.1f} / {r['latency_p90_ms']:.1f} / "
            f"{r['latency_p99_ms']:.1f} | {r['jitter_ms']:.1f} | {r['network_p50_ms']:.1f} | {r['node_p50_ms']:.1f} | "
            f"{r['graph_cost_ms']:.1f} | {r['in_p50_ms']:.1f} / {r['node_outside_p50_ms']:.1f} / "
            f"{r['out_p50_ms']:.1f} |"
        )
    for case in cases:
        sustained = [r for r in results if r["case"] == case and r["lost_pct"] <= 5.0 and r["rate_hz"] != args.flat_out]
        if sustained:
            best = max(sustained, key=lambda r: r["rate_hz"])
            lines += ["", f"{case}: highest tried rate with at most 5 % lost: {best['rate_hz']:g} Hz."]
    for r in results:
        profile_path = Path(r["folder"]) / "depth_node.pyspy.txt"
        if profile_path.is_file():
            lines += ["", f"py-spy, depth node process, {r['case']} at {r['rate_hz']:g} Hz (non-idle samples):", ""]
            lines += summarise_profile(profile_path)
    load = os.getloadavg()
    lines += ["", "Load average during the runs (other work on this machine): "
              f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}."]
    report = "\n".join(lines) + "\n"
    (args.out / "bench_graph.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
