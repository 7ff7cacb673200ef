"""`depth-attn export`: a network to ONNX at a fixed input size, into the artefact cache (or a file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command, add_identity_args, estimator_config_from_args, warn_if_untrained


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export")
    add_identity_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="also copy the ONNX file here (with --all: a folder, one <config>.onnx per configuration)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or newer (default: 17)")
    p.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                   help="torch exporter (default: auto = TorchScript at opset 17, dynamo if that fails)")
    p.add_argument("--all", action="store_true",
                   help="export every configuration of --network (all sizes, variants, placements), untrained")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: quantise the fp32 file statically for ONNX Runtime on the CPU (QDQ, per-channel "
                   "weights), calibrated on --calibration; cached under the calibration set's checksum")
    p.add_argument("--calibration", type=Path, default=None, metavar="FOLDER_OR_BAG",
                   help="int8 only: a folder of images (taken in name order) or a rosbag2 recording (its image "
                   "frames in order): real frames of the robot's camera, the same selection as build-engine")
    p.add_argument("--calibration-frames", type=int, default=100, help="int8 only: frames to calibrate on")
    p.add_argument("--rebuild", action="store_true", help="export again even when the cache has the file")
    p.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    import sys

    from tqdm import tqdm

    from depth_attn.models import list_configs

    if args.precision == "int8" and args.calibration is None:
        raise ValueError("--precision int8 needs --calibration FOLDER_OR_BAG (real frames of the robot's camera)")
    if args.all:
        if args.precision == "int8":
            raise ValueError("--all exports untrained networks; int8 is calibrated for one trained network: drop --all")
        if args.weights not in ("auto", "none"):
            raise ValueError("--all exports untrained networks: checkpoints belong to one size; drop --weights")
        args.weights = "none"
        print("note: --all exports untrained networks (initialised from seed 0): for timing only", file=sys.stderr)
        if args.out is None:
            raise ValueError("--all needs --out FOLDER")
        args.out.mkdir(parents=True, exist_ok=True)
        failures = 0
        for config in tqdm(list_configs(args.network), desc="export", unit="config"):
            target = args.out / f"{config.name}.onnx"
            try:
                _export_one(args, config, target)
            except NotImplementedError as exc:
                failures += 1
                tqdm.write(f"{config.name}: not exported: {exc}")
        return 1 if failures else 0
    path = _export_one(args, None, None)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
        print(f"copied to {args.out.resolve()}")
    return 0


def _export_one(args: argparse.Namespace, config, copy_to) -> Path:
    """Export the configuration the arguments name (``config``: another one, untrained)."""
    import shutil

    import numpy as np

    from depth_attn.inference import DepthEstimator
    from depth_attn.inference.artefacts import onnx_artefact
    from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
    from depth_attn.inference.export import check_onnx
    from depth_attn.inference.parity import random_batch, relative_error

    overrides = {} if config is None else {"model": config}
    estimator = DepthEstimator(estimator_config_from_args(args, backend="torch", precision="fp32", **overrides))
    if config is None:
        warn_if_untrained(estimator)
    result = onnx_artefact(estimator.source, opset=args.opset, exporter=args.exporter, force=args.rebuild)
    summary = check_onnx(result.path, estimator.input_hw)
    line = (f"{estimator.model_config.name} {estimator.input_hw[0]}x{estimator.input_hw[1]}: opset {summary['opset']}, "
            f"{summary['nodes']} nodes, output {summary['output_shape']}, {result.path.stat().st_size / 1e6:.1f} MB, "
            f"cache {result.status} -> {result.path}")
    if not args.no_parity:
        batch = random_batch(estimator.input_hw)
        reference = estimator.backend.run(batch)
        onnx_out = OnnxRuntimeBackend(result.path).run(batch)
        line += f"; ONNX Runtime vs PyTorch max relative error {relative_error(onnx_out, reference):.2e}"
        if not np.all(np.isfinite(onnx_out)):
            raise RuntimeError(f"{estimator.model_config.name}: ONNX Runtime output has NaN/Inf")
    if args.precision == "int8":
        from depth_attn.inference.artefacts import Calibration, int8_card, int8_onnx_artefact

        calibration = Calibration(args.calibration, args.calibration_frames)
        fp32_path = result.path
        result = int8_onnx_artefact(estimator.source, calibration, opset=args.opset, exporter=args.exporter,
                                    force=args.rebuild)
        card = int8_card(result.path)
        kept = ", ".join(card["keep_fp32_prefixes"]) or "-"
        line += (f"\nint8: {card['calibration_frames_used']} calibration frames, {card['quantized_nodes']} "
                 f"quantised tensors, {len(card['fp32_nodes'])} nodes kept fp32 ({kept}), "
                 f"{result.path.stat().st_size / 1e6:.1f} MB, cache {result.status} -> {result.path}")
        if not args.no_parity:
            batch = random_batch(estimator.input_hw)
            fp32_out = OnnxRuntimeBackend(fp32_path).run(batch)
            int8_out = OnnxRuntimeBackend(result.path, precision="int8").run(batch)
            line += f"; int8 vs fp32 max relative error {relative_error(int8_out, fp32_out):.2e} (random input)"
    if copy_to is not None:
        shutil.copyfile(result.path, copy_to)
        line += f"; copied to {copy_to}"
    print(line, flush=True)
    return result.path
