"""`depth-attn bench`: network latency of one backend or several, measured honestly in one run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

from depth_attn import keyvalue
from depth_attn.cli.common import add_command, add_model_args, estimator_config_from_args, parse_hw
from depth_attn.inference.backends.base import BACKEND_CHOICES


def _option(text: str):
    try:
        return keyvalue.split_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "bench")
    add_model_args(p)
    group = p.add_argument_group("measurement")
    group.add_argument("--backends", nargs="+", choices=BACKEND_CHOICES, default=None,
                       metavar="BACKEND", help=f"measure these in one run ({', '.join(BACKEND_CHOICES)}; "
                       "default: --backend)")
    group.add_argument("--isolation", choices=("processes", "none"), default=None,
                       help="processes: each backend in a process of its own, the processes taking turns (the default "
                       "with several backends: one runtime's threads cannot steal another's cores); none: all in this "
                       "process, round-robin call by call (the default with one backend)")
    group.add_argument("--turns", type=int, default=3,
                       help="with --isolation processes: the runs are split into this many turns per backend, "
                       "the order alternating (default: 3)")
    group.add_argument("--runs", type=int, default=50, help="timed runs per backend (default: 50)")
    group.add_argument("--warmup", type=int, default=5, help="untimed runs first (default: 5)")
    group.add_argument("--camera-size", type=parse_hw, default=(375, 1242), metavar="HxW",
                       help="frame size for the end-to-end timing (default: KITTI's 375x1242)")
    group.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="a backend option, repeatable (e.g. intra_op_threads=2, channels_last=true, "
                       "compile=true, cuda_graphs=true); each backend ignores the options it does not know")
    group.add_argument("--no-end-to-end", action="store_true", help="time the network only")
    group.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import platform
    import sys
    import time

    from depth_attn.cli.doctor import cpu_model

    if args.runs < 1 or args.warmup < 0:
        raise ValueError("--runs must be >= 1 and --warmup >= 0")
    backends: List[str] = list(dict.fromkeys(args.backends or [args.backend]))
    options = dict(args.option)
    configs = {name: estimator_config_from_args(args, backend=name, backend_options=dict(options)) for name in backends}
    isolation = args.isolation or ("processes" if len(backends) > 1 else "none")
    if isolation == "processes":
        from depth_attn.inference.turns import describe_method, measure_in_turns

        device = "cuda" if args.device.startswith("cuda") or "tensorrt" in backends else "cpu"
        found = measure_in_turns(configs, args.runs, args.warmup, args.camera_size, args.turns,
                                 not args.no_end_to_end, device if _cuda_visible() or device == "cpu" else "cpu")
        method = describe_method(args.turns, args.runs)
        rows = {n: (r.describe, r.input_hw, r.network, r.end_to_end) for n, r in found.items()}
    else:
        rows = _measure_in_process(configs, args)
        method = ("in one process, round-robin, one run of each backend per round (ONNX Runtime's threads do not spin; "
                  "PyTorch's and OpenVINO's threads share the process)")
    describe, (h, w) = rows[backends[0]][0], rows[backends[0]][1]
    if describe.get("weights") == "untrained":
        print(f"warning: {describe['model']} runs UNTRAINED (--weights none): timing only", file=sys.stderr)
    print(f"{describe['model']}, input {h}x{w}, camera {args.camera_size[0]}x{args.camera_size[1]}, "
          f"{args.precision}, {args.runs} runs after {args.warmup} warm-up, {cpu_model()}")
    print(f"timing: {method}")
    header = f"{'backend':12s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'fps':>7s}"
    if not args.no_end_to_end:
        header += f" {'e2e p50':>8s} {'e2e p90':>8s}"
    print(header + "  device")
    report_rows = []
    for name, (info, _, stats, e2e) in rows.items():
        line = f"{name:12s} {stats.p50_ms:8.2f} {stats.p90_ms:8.2f} {stats.p99_ms:8.2f} {stats.throughput_fps:7.1f}"
        row = {"backend": name, "describe": info, "network": stats.as_dict()}
        if e2e is not None:
            line += f" {e2e.p50_ms:8.2f} {e2e.p90_ms:8.2f}"
            row["end_to_end"] = e2e.as_dict()
        chosen = f" (auto: {info['auto_choice']})" if info.get("auto_choice") else ""
        print(line + f"  {info.get('device', '')}{chosen}")
        report_rows.append(row)
    if len(backends) > 1:
        base = rows[backends[0]][2].p50_ms
        print("p50 relative to " + backends[0] + ": "
              + ", ".join(f"{n} {rows[n][2].p50_ms / base:.2f}x" for n in backends[1:]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpu": cpu_model(), "platform": platform.platform()},
            "model": describe["model"], "input_hw": [h, w], "camera_hw": list(args.camera_size),
            "precision": args.precision, "runs": args.runs, "warmup": args.warmup, "options": options,
            "isolation": isolation, "timing": method, "results": report_rows,
        }
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def _measure_in_process(configs: Dict[str, object], args: argparse.Namespace) -> Dict[str, tuple]:
    import numpy as np

    from depth_attn.inference import DepthEstimator
    from depth_attn.inference.timing import measure_interleaved

    estimators = {name: DepthEstimator(config) for name, config in configs.items()}
    first = next(iter(estimators.values()))
    rgb = np.random.default_rng(0).integers(0, 256, (*args.camera_size, 3), dtype=np.uint8)
    batch = first.preprocess(rgb)
    names = list(configs)
    on_gpu = args.device.startswith("cuda") or "tensorrt" in names
    sync_device = (args.device if args.device.startswith("cuda") else "cuda") if on_gpu and _cuda_visible() else "cpu"
    network = measure_interleaved({n: (lambda e=e: e.backend.run(batch)) for n, e in estimators.items()},
                                  args.runs, args.warmup, sync_device, progress="network")
    end_to_end = {}
    if not args.no_end_to_end:
        end_to_end = measure_interleaved({n: (lambda e=e: e.estimate(rgb)) for n, e in estimators.items()},
                                         args.runs, args.warmup, sync_device, progress="end-to-end")
    return {n: ({k: str(v) for k, v in e.describe().items()}, tuple(e.input_hw), network[n], end_to_end.get(n))
            for n, e in estimators.items()}
