"""Arguments shared by the commands that run a network, and the one way to turn them into a
DepthEstimator."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Dict, Optional, Tuple

from depth_attn.inference.backends.base import BACKEND_CHOICES, PRECISIONS
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS, ModelConfig, validate_config

AUTO_WEIGHTS = "auto"  # weights.AUTO (not imported here: --help stays fast)


def parse_hw(text: str) -> Tuple[int, int]:
    """'192x636' -> (192, 636) (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 192x636, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError("height and width must be positive")
    return h, w


def help_text(description: str, examples: str) -> str:
    """A description wrapped to the terminal's width, then examples kept line by line (for
    RawDescriptionHelpFormatter)."""
    import shutil
    import textwrap

    width = min(shutil.get_terminal_size((100, 20)).columns, 100) - 2
    return textwrap.fill(" ".join(description.split()), width) + "\n\nexamples:\n" + examples


@functools.lru_cache(maxsize=1)
def command_texts() -> Dict[str, Dict[str, str]]:
    """Every command's --help texts, keyed by command ("weights import" for a nested one): summary,
    description and, for most, examples. They live in help.yaml beside this module, one file for all."""
    import yaml

    return yaml.safe_load(Path(__file__).with_name("help.yaml").read_text(encoding="utf-8"))


def add_command(subparsers: argparse._SubParsersAction, name: str, key: Optional[str] = None,
                **parser_options) -> argparse.ArgumentParser:
    """The subcommand ``name`` with its texts from help.yaml (``key``, default ``name``): --help is the
    description, wrapped, then its examples line by line; ``parser_options`` go to ``add_parser``."""
    texts = command_texts()[key or name]
    description = texts["description"]
    if "examples" in texts:
        description = help_text(description, texts["examples"])
        parser_options.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return subparsers.add_parser(name, help=texts["summary"], description=description, **parser_options)


def add_identity_args(parser: argparse.ArgumentParser) -> None:
    """Which network (the model identity), which weights, at which input size: every command that
    builds one network takes these, with these defaults."""
    group = parser.add_argument_group("model")
    group.add_argument("--network", choices=NETWORKS, default="meter", help="depth network (default: meter)")
    group.add_argument("--size", choices=SIZES, default="tiny", help="network size (default: tiny)")
    group.add_argument("--variant", choices=VARIANTS, default="base", help="attention variant (default: base)")
    group.add_argument("--placement", choices=PLACEMENTS, default="full", help="where the variant goes (default: full)")
    group.add_argument(
        "--weights", default=AUTO_WEIGHTS,
        help="auto (the shipped or cached checkpoint covering network/size/variant/placement for --dataset), a known "
        "checkpoint name (see `depth-attn weights list`), a .pth file, or none: an untrained network, for timing "
        f"only (said on stderr) (default: {AUTO_WEIGHTS})",
    )
    group.add_argument("--dataset", default="kitti", choices=("kitti", "nyu"),
                       help="what --weights auto picks a checkpoint for (default: kitti)")
    group.add_argument("--allow-partial-weights", action="store_true",
                       help="run even where the weights leave part of the network untrained (a base checkpoint for a "
                       "variant: what can be derived from it is, as in training; the rest stays as built); refused "
                       "otherwise")
    group.add_argument("--input-size", type=parse_hw, default=None, metavar="HxW",
                       help="network input size, e.g. 192x636 (default: the checkpoint's, else the network's spec)")


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """How the network runs and what is done with its output (none of it changes the network)."""
    group = parser.add_argument_group("runtime")
    group.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                       help="what runs the network (default: auto: TensorRT where it and a CUDA GPU are present, "
                       "else OpenVINO on an x86 CPU where it is installed, else ONNX Runtime)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32", help="numeric precision (default: fp32)")
    group.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:0 (default: cpu)")
    group.add_argument("--max-depth", type=float, default=None,
                       help="clamp depth to this many metres (default: the checkpoint's largest depth)")
    group.add_argument("--no-canonical-camera", dest="canonical_camera", action="store_false",
                       help="stretch every frame to the input size instead of mapping it into the training camera "
                       "(for networks trained on your own camera)")
    group.add_argument("--fit-input-to-camera", action="store_true",
                       help="run the network at the smallest input size that holds the camera's view at the training "
                       "focal length, instead of padding or cropping it into the checkpoint's size (off by default: "
                       "METER measured far worse at sizes it was not trained at)")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model identity and weights, and how it runs: for commands that run one network."""
    add_identity_args(parser)
    add_runtime_args(parser)


def model_from_args(args: argparse.Namespace) -> ModelConfig:
    """The model identity the arguments name (refused clearly where the combination does not exist)."""
    return validate_config(args.network, args.size, args.variant, args.placement)


def estimator_config_from_args(args: argparse.Namespace, **overrides):
    """The EstimatorConfig the arguments describe; ``overrides`` (e.g. ``backend``) win."""
    from depth_attn.inference import EstimatorConfig

    values = dict(
        model=model_from_args(args),
        weights=args.weights,
        dataset=args.dataset,
        allow_partial_weights=args.allow_partial_weights,
        input_hw=args.input_size,
    )
    for name, attr in (("backend", "backend"), ("precision", "precision"), ("device", "device"),
                       ("max_depth", "max_depth"), ("canonical_camera", "canonical_camera"),
                       ("fit_input_to_camera", "fit_input_to_camera")):
        if hasattr(args, attr):
            values[name] = getattr(args, attr)
    values.update(overrides)
    return EstimatorConfig(**values)


def warn_if_untrained(estimator) -> None:
    """Say on stderr when what runs is untrained or partly so (nothing untrained goes by silently)."""
    import sys

    if estimator.weights_path is None:
        print(f"warning: {estimator.model_config.name} runs UNTRAINED (--weights none): its depth is meaningless; "
              "use it for timing only", file=sys.stderr)
    elif estimator.coverage_gaps:
        print(f"warning: {estimator.weights_name} leaves {len(estimator.coverage_gaps)} tensors of "
              f"{estimator.model_config.name} untrained (--allow-partial-weights): its depth is not trustworthy",
              file=sys.stderr)


def estimator_from_args(args: argparse.Namespace, **overrides):
    from depth_attn.inference import DepthEstimator

    estimator = DepthEstimator(estimator_config_from_args(args, **overrides))
    warn_if_untrained(estimator)
    return estimator
