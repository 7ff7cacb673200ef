"""`depth-attn doctor`: what works on this machine. The first command to run on a new robot."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command, add_identity_args, model_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "doctor")
    add_identity_args(p)
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def versions() -> dict:
    import importlib.metadata
    import importlib.util
    import platform

    import depth_attn

    found = {"python": platform.python_version(), "depth_attn": depth_attn.__version__}
    for label, dist in (("torch", "torch"), ("numpy", "numpy"), ("opencv", "opencv-python-headless"),
                        ("onnx", "onnx"), ("onnxscript", "onnxscript"), ("onnxruntime", "onnxruntime"),
                        ("onnxruntime-gpu", "onnxruntime-gpu"), ("openvino", "openvino"), ("tensorrt", "tensorrt")):
        try:
            found[label] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[label] = None
    if found["tensorrt"] is None:
        from depth_attn.inference.backends.tensorrt_backend import tensorrt_version

        found["tensorrt"] = tensorrt_version()  # JetPack installs it without pip metadata
    if found["opencv"] is None:
        import cv2

        found["opencv"] = cv2.__version__
    # ROS is only looked for, never imported: the core stays ROS-free.
    found["rclpy"] = "found" if importlib.util.find_spec("rclpy") else None
    return found


def devices() -> dict:
    import os
    import platform

    import torch

    info = {"machine": platform.machine(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": []}
    model_file = Path("/proc/device-tree/model")
    if model_file.is_file():
        info["board"] = model_file.read_text(errors="replace").strip("\x00\n ")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["cuda"].append({"index": i, "name": props.name, "capability": f"{props.major}.{props.minor}",
                                 "memory_gib": round(props.total_memory / 2**30, 1)})
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["onnxruntime_providers"] = []
    from depth_attn.inference.parity import openvino_unavailable

    missing = openvino_unavailable()
    if missing:
        info["openvino_devices"] = []
        info["openvino"] = missing
    else:
        import openvino

        info["openvino_devices"] = list(openvino.Core().available_devices)
        info["openvino"] = "ok"
    from depth_attn.inference.backends import choose_backend

    info["auto_backend"] = "{}: {}".format(*choose_backend("cpu"))
    return info


def cpu_model() -> str:
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run(args: argparse.Namespace) -> int:
    import json

    from depth_attn.inference.cache import artefacts_dir
    from depth_attn.inference.parity import self_test

    found = versions()
    machine = devices()
    print("versions")
    for name, version in found.items():
        print(f"  {name:16s} {version or '-'}")
    print("devices")
    print(f"  cpu              {machine['cpu']} ({machine['cpu_count']} cores, torch uses {machine['torch_threads']})")
    if "board" in machine:
        print(f"  board            {machine['board']}")
    for gpu in machine["cuda"]:
        print(f"  cuda:{gpu['index']:<11d} {gpu['name']} (sm {gpu['capability']}, {gpu['memory_gib']} GiB)")
    if not machine["cuda"]:
        print("  cuda             none visible to PyTorch")
    print(f"  onnxruntime      {', '.join(machine['onnxruntime_providers']) or '-'}")
    print(f"  openvino         {', '.join(machine['openvino_devices']) or machine['openvino']}")
    print(f"backend auto       {machine['auto_backend']}")
    print(f"artefact cache     {artefacts_dir()}")
    model = model_from_args(args)
    untrained = args.weights.strip().lower() in ("", "none", "untrained")
    print(f"self-test          {model.name}, weights {'untrained (seed 0)' if untrained else args.weights}, against "
          "torch cpu fp32", flush=True)
    results = self_test(model, args.weights, args.input_size, dataset=args.dataset,
                        allow_partial_weights=args.allow_partial_weights)
    print(f"  {'backend':12s} {'device':6s} {'prec':5s} {'result':6s} {'rel.err':>9s} {'ms':>8s}  detail")
    for r in results:
        err = f"{r.relative_error:.1e}" if r.relative_error is not None else "-"
        ms = f"{r.latency_ms:.1f}" if r.latency_ms is not None else "-"
        print(f"  {r.backend:12s} {r.device:6s} {r.precision:5s} {r.status.upper():6s} {err:>9s} {ms:>8s}  {r.detail}")
    failed = [r for r in results if r.status == "fail"]
    working = sorted({r.backend for r in results if r.status == "pass"})
    print(f"working backends: {', '.join(working) or 'none'}; "
          + (f"{len(failed)} FAILED" if failed else "no failures"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"versions": found, "devices": machine, "artefact_cache": str(artefacts_dir()),
                  "self_test": [r.as_dict() for r in results]}
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if failed else 0
