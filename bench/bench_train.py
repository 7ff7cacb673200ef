"""Training throughput (images/s) at METER-tiny's training size, one process against two DDP
processes started by torch's own launcher (what torchrun runs), alternated in one run.

Each round trains METER-tiny meta from the base checkpoint (output + feature distillation, batch 4
per process at 192x636, frozen BatchNorm, channels_last) for --steps steps on drive 0023 and one
unlabelled drive from ../shared; the images/s of the steps after --skip are kept (the CSV's own
column: batch x processes / step time). On the CPU one process uses all cores (--threads), each DDP
process its share.

    .venv/bin/python bench/bench_train.py
    .venv/bin/python bench/bench_train.py --rounds 2 --steps 20 --out out/bench/train.md
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_common import write_report  # (bench/, the script's folder, is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def config(out_dir: Path, steps: int, threads: int) -> dict:
    return {
        "model": {"network": "meter", "size": "tiny", "variant": "meta", "init": "meter-xxs-kitti",
                  "input_size": [192, 636]},
        "teacher": {"network": "meter", "size": "tiny", "variant": "base", "weights": "meter-xxs-kitti"},
        "data": {"train": [
            {"type": "kitti_raw", "path": "{data}/kitti/raw/2011_09_26/2011_09_26_drive_0023_sync",
             "gt": "velodyne_raw"},
            {"type": "images", "path": "{data}/kitti/unlabelled/drive_b_91", "calib": "{data}/kitti/raw/2011_09_26"}]},
        "augment": {"crop": [192, 636]},
        "objective": {"distill_output": 1.0, "distill_features": 1.0, "silog": 0.02},
        "schedule": {"steps": steps, "batch_size": 4, "threads": threads, "warmup_steps": 5},
        "output": {"dir": str(out_dir), "checkpoint_every": 10_000, "validate_every": 10_000},
    }


def run(processes: int, steps: int, skip: int, cores: int, work: Path) -> float:
    out_dir = work / f"run_{processes}_{time.monotonic_ns()}"
    threads = max(1, cores // processes)
    cfg = work / f"{out_dir.name}.yaml"
    cfg.write_text(yaml.safe_dump(config(out_dir, steps, threads)))
    if processes == 1:
        cmd = [sys.executable, "-m", "depth_attn.training", "--config", str(cfg), "--no-progress"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "depth_attn.training", "--config", str(cfg), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    with open(out_dir / "train.csv", newline="") as f:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(f)][skip:]
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="steps per round (default: 20)")
    parser.add_argument("--skip", type=int, default=5, help="first steps not counted (default: 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of 1 and 2 processes (default: 2)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU cores to share (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown) here")
    args = parser.parse_args()
    results = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for processes in (1, 2):
                results[processes].append(run(processes, args.steps, args.skip, args.cores, Path(tmp)))
    one, two = statistics.median(results[1]), statistics.median(results[2])
    lines = [
        f"{platform.processor() or platform.machine()}, {args.cores} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, METER-tiny meta distillation, 192x636, "
        f"batch 4 per process, {args.steps} steps x {args.rounds} rounds (first {args.skip} not counted)",
        "",
        "| processes | threads each | images/s (median) | per round |",
        "| --- | --- | --- | --- |",
        f"| 1 | {max(1, args.cores)} | {one:.2f} | {', '.join(f'{v:.2f}' for v in results[1])} |",
        f"| 2 (DDP, gloo) | {max(1, args.cores // 2)} | {two:.2f} | {', '.join(f'{v:.2f}' for v in results[2])} |",
        "",
        f"2 processes / 1 process: {two / one:.2f}x",
    ]
    return write_report(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
