"""`depth-attn build-engine`: the TensorRT engine of a network on this GPU, built once and cached."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command, add_identity_args, estimator_config_from_args, warn_if_untrained


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "build-engine")
    add_identity_args(p)
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16", help="engine precision")
    p.add_argument("--device", default="cuda", help="CUDA device, e.g. cuda or cuda:1 (default: cuda)")
    p.add_argument("--calibration", type=Path, default=None, metavar="FOLDER_OR_BAG",
                   help="int8 only: a folder of images (taken in name order) or a rosbag2 recording (its colour "
                   "image topic)")
    p.add_argument("--calibration-frames", type=int, default=100, help="int8 only: frames to calibrate on")
    p.add_argument("--workspace-gb", type=float, default=2.0, help="TensorRT builder workspace, GiB")
    p.add_argument("--rebuild", action="store_true", help="build again even when the cache has an engine")
    p.add_argument("--out", type=Path, default=None, help="also copy the engine to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil

    from depth_attn.inference import DepthEstimator
    from depth_attn.inference.backends.tensorrt_backend import import_tensorrt
    from depth_attn.inference.parity import random_batch, relative_error

    import_tensorrt()  # say what to install before any export work
    if args.precision == "int8" and args.calibration is None:
        raise ValueError("--precision int8 needs --calibration FOLDER_OR_BAG (real frames of the robot's camera)")
    options = {"workspace_gb": args.workspace_gb, "rebuild": args.rebuild}
    if args.calibration is not None:
        options.update(calibration=str(args.calibration), calibration_frames=args.calibration_frames)
    estimator = DepthEstimator(estimator_config_from_args(args, backend="tensorrt", backend_options=options))
    warn_if_untrained(estimator)
    info = estimator.describe()
    engine = Path(str(info["engine"]))
    print(f"{estimator.model_config.name} {estimator.input_hw[0]}x{estimator.input_hw[1]} {args.precision} on "
          f"{info['device']}, TensorRT {info['tensorrt']}: {estimator.backend.artefact_status} -> {engine}")
    reference = DepthEstimator(estimator_config_from_args(args, backend="torch", precision="fp32", device="cpu"))
    batch = random_batch(estimator.input_hw)
    error = relative_error(estimator.backend.run(batch), reference.backend.run(batch))
    print(f"max relative error against PyTorch fp32 on the CPU (random input): {error:.2e}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(engine, args.out)
        print(f"copied to {args.out.resolve()}")
    return 0
