"""Run every benchmark of docs/benchmarks.md in one go (what `make bench` does), one after the other
so they do not disturb each other, and print where the results went.

    .venv/bin/python bench/run_all.py                  # everything, one after the other
    .venv/bin/python bench/run_all.py --only backends node
    .venv/bin/python bench/run_all.py --out out/bench

Each benchmark is a script of its own in bench/ with its own --help; this only chains them with the
settings used for docs/benchmarks.md. Keep the machine otherwise idle while it runs.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commands(out: Path) -> dict:
    return {
        "backends": ["bench_backends.py", "--runs", "30", "--torch-modes", "eager", "channels_last",
                     "--out", str(out / "backends_table.md"), "--json", str(out / "backends.json")],
        "node": ["bench_node.py", "--frames", "100", "--warmup", "10",
                 "--out", str(out / "node.md"), "--json", str(out / "node.json")],
        "graph": ["bench_graph.py", "--out", str(out / "graph")],
        "graph_processes": ["bench_graph.py", "--rates", "10", "--flat-out", "0", "--frames", "90", "--cases",
                            "one/camera,one-dds/camera,one/network,one-dds/network,processes/camera,"
                            "processes/network,processes-default/camera",
                            "--out", str(out / "graph_processes")],
        "dds_hop": ["bench_dds_hop.py", "--raw"],
        "zoo": ["bench_zoo.py", "--out", str(out / "zoo_results.csv")],
        "train": ["bench_train.py", "--out", str(out / "train.md")],
        "int8": ["bench_int8.py", "--runs", "40", "--profile", "base", "--out", str(out / "int8.md")],
        "cpu_limit": ["bench_cpu_limit.py", "--runs", "150", "--out", str(out / "cpu_limit.md")],
        "graph_openvino": ["bench_graph.py", "--rates", "10", "--flat-out", "0", "--frames", "90", "--backend",
                           "openvino", "--cases", "one/camera,one/network", "--out", str(out / "graph_openvino")],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="results folder (default: out/bench)")
    parser.add_argument("--only", nargs="+", choices=tuple(commands(Path("."))), default=None,
                        help="run only these benchmarks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    failed = []
    for name, argv in commands(args.out).items():
        if args.only and name not in args.only:
            continue
        log = args.out / f"{name}.log"
        command = [sys.executable, str(HERE / argv[0]), *argv[1:]]
        print(f"[{name}] {' '.join(command)}  (log: {log})", flush=True)
        start = time.monotonic()
        with open(log, "w") as handle:
            code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
        print(f"[{name}] {'done' if code == 0 else f'FAILED (exit {code})'} in {time.monotonic() - start:.0f} s")
        if code:
            failed.append(name)
    print(f"results in {args.out.resolve()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
