"""`depth-attn bench`: network latency of one backend or several, measured honestly in one run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

from depth_attn import keyvalue
from depth_attn.cli.common import add_model_args, parse_hw
from depth_attn.cli.export import help_text


def _option(text: str):
    try:
        return keyvalue.split_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="latency p50/p90/p99 and throughput of one or more backends",
        description=help_text(
        "Time the network alone (backend.run on a preprocessed frame: host array in, host array out, "
        "the device synchronised before each clock read) and the whole estimate() (resize in, network, resize "
        "out, clamp) on a camera-size frame. Each backend is warmed up, then the backends are run round-robin, "
        "one run each per round, so load from other processes hits them alike and their ratios are fair. "
        "Reports p50/p90/p99 latency in ms and throughput (1000 / mean latency, frames/s for one stream).",
        "  depth-attn bench --backends torch onnxruntime --input-size 192x636 --runs 100\n"
        "  depth-attn bench --weights meter-xxs-kitti --backend tensorrt --precision fp16 --device cuda "
        "--json bench.json\n"
        "  depth-attn bench --backends torch --option channels_last=true --option compile=true"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    group = p.add_argument_group("measurement")
    group.add_argument("--backends", nargs="+", choices=("torch", "onnxruntime", "tensorrt"), default=None,
                       metavar="BACKEND", help="measure these in one run (torch, onnxruntime, tensorrt; "
                       "default: --backend)")
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
    import time

    import numpy as np

    from depth_attn.cli.doctor import cpu_model
    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.inference.timing import measure_interleaved

    if args.runs < 1 or args.warmup < 0:
        raise ValueError("--runs must be >= 1 and --warmup >= 0")
    backends: List[str] = args.backends or [args.backend]
    options = dict(args.option)
    estimators: Dict[str, DepthEstimator] = {}
    for name in backends:
        estimators[name] = DepthEstimator(
            EstimatorConfig(network=args.network, size=args.size, variant=args.variant, placement=args.placement,
                            weights=args.weights, backend=name, precision=args.precision, device=args.device,
                            input_hw=args.input_size, max_depth=args.max_depth, backend_options=dict(options),
                            dataset=args.dataset, allow_partial_weights=args.allow_partial_weights)
        )
    first = next(iter(estimators.values()))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*args.camera_size, 3), dtype=np.uint8)
    batch = first.preprocess(rgb)
    import torch

    on_gpu = args.device.startswith("cuda") or "tensorrt" in backends
    sync_device = (args.device if args.device.startswith("cuda") else "cuda") if on_gpu else "cpu"
    if on_gpu and not torch.cuda.is_available():
        sync_device = "cpu"  # the backend itself will have refused to start; nothing to synchronise
    network = measure_interleaved({n: (lambda e=e: e.backend.run(batch)) for n, e in estimators.items()},
                                  args.runs, args.warmup, sync_device, progress="network")
    end_to_end = {}
    if not args.no_end_to_end:
        end_to_end = measure_interleaved({n: (lambda e=e: e.estimate(rgb)) for n, e in estimators.items()},
                                         args.runs, args.warmup, sync_device, progress="end-to-end")

    h, w = first.input_hw
    print(f"{first.model_config.name}, input {h}x{w}, camera {args.camera_size[0]}x{args.camera_size[1]}, "
          f"{args.precision}, {args.runs} runs after {args.warmup} warm-up, {cpu_model()}")
    header = f"{'backend':12s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'fps':>7s}"
    if end_to_end:
        header += f" {'e2e p50':>8s} {'e2e p90':>8s}"
    print(header + "  device")
    rows = []
    for name, estimator in estimators.items():
        stats = network[name]
        line = f"{name:12s} {stats.p50_ms:8.2f} {stats.p90_ms:8.2f} {stats.p99_ms:8.2f} {stats.throughput_fps:7.1f}"
        row = {"backend": name, "describe": {k: str(v) for k, v in estimator.describe().items()},
               "network": stats.as_dict()}
        if end_to_end:
            e2e = end_to_end[name]
            line += f" {e2e.p50_ms:8.2f} {e2e.p90_ms:8.2f}"
            row["end_to_end"] = e2e.as_dict()
        print(line + f"  {estimator.describe().get('device', '')}")
        rows.append(row)
    if len(backends) > 1:
        base = network[backends[0]].p50_ms
        print("p50 relative to " + backends[0] + ": "
              + ", ".join(f"{n} {network[n].p50_ms / base:.2f}x" for n in backends[1:]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpu": cpu_model(), "platform": platform.platform()},
            "model": first.model_config.name, "input_hw": [h, w], "camera_hw": list(args.camera_size),
            "precision": args.precision, "runs": args.runs, "warmup": args.warmup, "options": options,
            "results": rows,
        }
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0
