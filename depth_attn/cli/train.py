"""`depth-attn train`: train or distil a configuration (one process; torchrun for several)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

DESCRIPTION = """Train or distil a network from a YAML config (sections: model, teacher, data, augment,
objective, schedule, output; see config/train/*.yaml). One process here; for DDP over several
processes, GPUs or nodes start the same arguments with torchrun:

  depth-attn train --config config/train/meter_tiny_meta_distill_cpu.yaml
  torchrun --nproc-per-node 4 -m depth_attn.training --config config/train/meter_tiny_pyra_kitti_eigen_gpu.yaml
  torchrun --nnodes 2 --node-rank 0 --master-addr HOST --master-port 29500 --nproc-per-node 8 \\
      -m depth_attn.training --config FILE        (and --node-rank 1 on the second node)

Writes into output.dir: train.csv (a row per step, flushed), checkpoints/last.pt (every
output.checkpoint_every steps and on SIGINT/SIGTERM), best.pth (best held-out abs_rel), and at the end
NAME.pth (a state dict, loads with weights_only=True), NAME.json (its card: configuration, data,
steps, held-out metrics, sha256, command) and curves.png. --set schedule.ema=0.999 keeps a moving
average of the weights: best.pth and NAME.pth then hold the average. Use the result with
`depth-attn weights import OUT/NAME.pth` (the card is read from beside it)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="training config (YAML), e.g. config/train/meter_tiny_meta_distill_cpu.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set schedule.steps=500 --set output.dir=out/x "
                        "(repeatable)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT|auto",
                        help="continue a run at its exact step from checkpoints/last.pt (auto: the one in output.dir)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to train.csv)")


def recipe_arguments(arguments: Sequence[str]) -> List[str]:
    """``arguments`` without the ones that only steer this process (--resume, --no-progress): a card
    records the command that makes the run from scratch, and a continued run gives the same figures."""
    kept: List[str] = []
    skip_value = False
    for argument in arguments:
        if skip_value:
            skip_value = False
        elif argument == "--resume":
            skip_value = True
        elif not (argument.startswith("--resume=") or argument == "--no-progress"):
            kept.append(argument)
    return kept


def invocation() -> List[str]:
    """The command line as a user would type it again (recorded in the card)."""
    import os
    from pathlib import Path

    program = Path(sys.argv[0]).name
    arguments = recipe_arguments(sys.argv[1:])
    if program.startswith("__main__"):
        if "WORLD_SIZE" in os.environ:
            nproc = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
            return ["torchrun", "--nproc-per-node", nproc, "-m", "depth_attn.training", *arguments]
        return ["python", "-m", "depth_attn.training", *arguments]
    return [program, *arguments]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train or distil a configuration (torchrun for DDP)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.training import TrainConfigError, TrainError, load_config, train

    try:
        config = load_config(args.config, args.overrides)
        result = train(config, resume=args.resume, argv=invocation(), progress=not args.no_progress)
    except (TrainConfigError, TrainError, OSError) as exc:  # OSError: output.dir a file, a read-only disk
        print(f"depth-attn train: error: {exc}", file=sys.stderr)
        return 2
    if result.final_weights is not None and result.heldout is not None:
        print(f"weights: {result.final_weights}\ncard:    {result.card}\ncurves:  {result.out_dir / 'curves.png'}")
        for name, metrics in result.heldout.items():
            print(f"held-out {name}: abs_rel {metrics['abs_rel']:.4f}  delta1 {metrics['delta1']:.4f}  "
                  f"rmse {metrics['rmse']:.3f} m  ({int(metrics['frames'])} frames)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth_attn.training", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
