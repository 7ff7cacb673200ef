"""`depth-attn export`: a network to ONNX at a fixed input size, into the artefact cache (or a file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import parse_hw
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS


def help_text(description: str, examples: str) -> str:
    """A description wrapped to the terminal's width, then examples kept line by line (for
    RawDescriptionHelpFormatter)."""
    import shutil
    import textwrap

    width = min(shutil.get_terminal_size((100, 20)).columns, 100) - 2
    return textwrap.fill(" ".join(description.split()), width) + "\n\nexamples:\n" + examples


def add_network_args(parser: argparse.ArgumentParser, weights_default=None) -> None:
    """Which network, at which size (no backend choice: for commands that make or test artefacts)."""
    group = parser.add_argument_group("model")
    group.add_argument("--network", choices=NETWORKS, default="meter", help="depth network")
    group.add_argument("--size", choices=SIZES, default="tiny", help="network size")
    group.add_argument("--variant", choices=VARIANTS, default="base", help="attention variant")
    group.add_argument("--placement", choices=PLACEMENTS, default="full", help="where the variant goes")
    group.add_argument("--weights", default=weights_default,
                       help="a known checkpoint name (`depth-attn weights list`) or a .pth file; omit for an "
                       "untrained network (initialised from a fixed seed)")
    group.add_argument("--input-size", type=parse_hw, default=None, metavar="HxW",
                       help="network input size, e.g. 192x636 (default: the checkpoint's, else the study's KITTI size)")
    group.add_argument("--max-depth", type=float, default=None, help="clamp depth to this many metres")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a network to ONNX (opset 17, input 'image', output 'depth')",
        description=help_text(
        "Export a network to ONNX at a fixed input size: input 'image' (1, 3, H, W) float32 RGB in "
        "[0, 1], output 'depth' (1, 1, h, w) in the network's unit; opset 17, checked with onnx.checker. "
        "The file goes into the artefact cache ($DEPTH_ATTN_HOME/artefacts/onnx, keyed by configuration, "
        "weights checksum, input size, exporter and torch version), where the onnxruntime and tensorrt "
        "backends find it; --out also copies it to a file. A parity check against PyTorch through ONNX "
        "Runtime follows unless --no-parity.",
        "  depth-attn export --weights meter-xxs-kitti --out meter_xxs_kitti.onnx\n"
        "  depth-attn export --network pixelformer --variant meta --placement decoder --input-size 352x1216\n"
        "  depth-attn export --all --network meter --input-size 192x636 --out exports/\n"
        "  depth-attn export --weights meter-xxs-kitti --precision int8 --calibration drive.mcap\n"
        "  depth-attn export --variant meta --weights auto --precision int8 --calibration frames/ \\\n"
        "      --calibration-frames 50"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_args(p)
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

    from tqdm import tqdm

    from depth_attn.models import list_configs

    if args.precision == "int8" and args.calibration is None:
        raise ValueError("--precision int8 needs --calibration FOLDER_OR_BAG (real frames of the robot's camera)")
    if args.all:
        if args.precision == "int8":
            raise ValueError("--all exports untrained networks; int8 is calibrated for one trained network: drop --all")
        if args.weights:
            raise ValueError("--all exports untrained networks: checkpoints belong to one size; drop --weights")
        if args.out is None:
            raise ValueError("--all needs --out FOLDER")
        args.out.mkdir(parents=True, exist_ok=True)
        failures = 0
        for config in tqdm(list_configs(args.network), desc="export", unit="config"):
            target = args.out / f"{config.name}.onnx"
            try:
                _export_one(args, config.size, config.variant, config.placement, target)
            except NotImplementedError as exc:
                failures += 1
                tqdm.write(f"{config.name}: not exported: {exc}")
        return 1 if failures else 0
    path = _export_one(args, args.size, args.variant, args.placement, None)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
        print(f"copied to {args.out.resolve()}")
    return 0


def _export_one(args: argparse.Namespace, size: str, variant: str, placement: str, copy_to) -> Path:
    import shutil

    import numpy as np

    from depth_attn.inference import DepthEstimator, EstimatorConfig
    from depth_attn.inference.artefacts import onnx_artefact
    from depth_attn.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
    from depth_attn.inference.export import check_onnx
    from depth_attn.inference.parity import random_batch, relative_error

    estimator = DepthEstimator(
        EstimatorConfig(network=args.network, size=size, variant=variant, placement=placement, weights=args.weights,
                        backend="torch", input_hw=args.input_size, max_depth=args.max_depth)
    )
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
