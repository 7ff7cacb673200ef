"""`depth-attn`: one command, many subcommands. Each subcommand lives in its own module with
``register(subparsers)``; modules import their heavy dependencies only when run, so ``--help`` is
fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# (subcommand module) in the order `--help` lists them.
COMMAND_MODULES = (
    "demo",
    "predict",
    "weights",
    "zoo",
    "export",
    "build_engine",
    "bench",
    "doctor",
    "cache",
    "run",
    "kitti2bag",
    "play",
    "eval",
    "sweep",
    "study",
    "train",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-attn",
        description="Efficient-attention monocular metric depth: predict, export, benchmark, evaluate, "
        "and run the ROS 2 node graph. `depth-attn COMMAND --help` explains each command.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"depth_attn.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"depth_attn.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as exc:  # OSError: a file where a folder goes, a read-only disk
        print(f"depth-attn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
