"""Arguments shared by the commands that run a network, and the one way to turn them into a
DepthEstimator."""

from __future__ import annotations

import argparse
from typing import Optional, Tuple

from depth_attn.inference.backends.base import BACKEND_CHOICES, PRECISIONS
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS


def parse_hw(text: str) -> Tuple[int, int]:
    """'192x636' -> (192, 636) (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 192x636, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError("height and width must be positive")
    return h, w


def add_model_args(parser: argparse.ArgumentParser, weights_default: Optional[str] = None) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--network", choices=NETWORKS, default="meter", help="depth network (default: meter)")
    group.add_argument("--size", choices=SIZES, default="tiny", help="network size (default: tiny)")
    group.add_argument("--variant", choices=VARIANTS, default="base", help="attention variant (default: base)")
    group.add_argument("--placement", choices=PLACEMENTS, default="full", help="where the variant goes (default: full)")
    group.add_argument(
        "--weights",
        default=weights_default,
        help="auto (the shipped or cached checkpoint covering network/size/variant/placement for --dataset), a known "
        "checkpoint name (see `depth-attn weights list`), a .pth file, or none (untrained, for timing)"
        + (f" (default: {weights_default})" if weights_default else " (default: none)"),
    )
    group.add_argument("--dataset", default="kitti", choices=("kitti", "nyu"),
                       help="what --weights auto picks a checkpoint for (default: kitti)")
    group.add_argument("--allow-partial-weights", action="store_true",
                       help="run even where the weights leave part of the network untrained (a base checkpoint for a "
                       "variant); refused otherwise")
    group.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                       help="what runs the network (default: auto: TensorRT where it and a CUDA GPU are present, "
                       "else OpenVINO on an x86 CPU where it is installed, else ONNX Runtime)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32", help="numeric precision (default: fp32)")
    group.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:0 (default: cpu)")
    group.add_argument("--input-size", type=parse_hw, default=None, metavar="HxW",
                       help="network input size, e.g. 192x636 (default: the checkpoint's, else the study's KITTI size)")
    group.add_argument("--max-depth", type=float, default=None, help="clamp depth to this many metres")
    group.add_argument("--no-canonical-camera", dest="canonical_camera", action="store_false",
                       help="stretch every frame to the input size instead of mapping it into the training camera "
                       "(for networks trained on your own camera)")
    group.add_argument("--fit-input-to-camera", action="store_true",
                       help="run the network at the smallest input size that holds the camera's view at the training "
                       "focal length, instead of padding or cropping it into the checkpoint's size (off by default: "
                       "METER measured far worse at sizes it was not trained at)")


def estimator_from_args(args: argparse.Namespace):
    import sys

    from depth_attn.inference import DepthEstimator, EstimatorConfig

    estimator = DepthEstimator(
        EstimatorConfig(
            network=args.network,
            size=args.size,
            variant=args.variant,
            placement=args.placement,
            weights=args.weights,
            dataset=getattr(args, "dataset", "kitti"),
            allow_partial_weights=getattr(args, "allow_partial_weights", False),
            backend=args.backend,
            precision=args.precision,
            device=args.device,
            input_hw=args.input_size,
            max_depth=args.max_depth,
            canonical_camera=getattr(args, "canonical_camera", True),
            fit_input_to_camera=getattr(args, "fit_input_to_camera", False),
        )
    )
    if estimator.weights_path is None:
        print(f"warning: {estimator.model_config.name} runs UNTRAINED (--weights none): its depth is meaningless; "
              "use it for timing only", file=sys.stderr)
    elif estimator.coverage_gaps:
        print(f"warning: {estimator.weights_name} leaves {len(estimator.coverage_gaps)} tensors of "
              f"{estimator.model_config.name} untrained (--allow-partial-weights): its depth is not trustworthy",
              file=sys.stderr)
    return estimator
