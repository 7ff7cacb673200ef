"""`depth-attn weights`: list, fetch and import checkpoints into the checksummed cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "weights")
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    add_command(sub, "list", key="weights list").set_defaults(func=run_list)
    f = add_command(sub, "fetch", key="weights fetch")
    f.add_argument("name", help="known checkpoint name, e.g. meter-xxs-kitti")
    f.add_argument("--url", default=None, help="download from this URL instead of the upstream one (a mirror)")
    f.set_defaults(func=run_fetch)
    i = add_command(sub, "import", key="weights import")
    i.add_argument("name", help="known checkpoint name (e.g. meter-xxs-kitti), or the trained .pth file alone")
    i.add_argument("path", type=Path, nargs="?", default=None, help="the checkpoint file (with a known name)")
    i.set_defaults(func=run_import)
    a = add_command(sub, "average", key="weights average")
    a.add_argument("output", type=Path, help="the averaged checkpoint to write (.pth; its card goes beside it)")
    a.add_argument("inputs", type=Path, nargs="+", help="two or more trained checkpoints (.pth with cards)")
    a.add_argument("--name", default=None, help="checkpoint name on the card (default: the first input's)")
    a.add_argument("--threads", type=int, default=0, help="torch threads for the held-out evaluation "
                   "(default: torch's choice)")
    a.set_defaults(func=run_average)


def run_list(args: argparse.Namespace) -> int:
    from depth_attn.weights import listing

    rows = listing()
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from depth_attn.weights import fetch

    print(f"{args.name} -> {fetch(args.name, url=args.url)}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from depth_attn.weights import import_file, import_trained

    if args.path is None:
        print(f"{args.name} -> {import_trained(Path(args.name))}")
    else:
        print(f"{args.name} -> {import_file(args.name, args.path)}")
    return 0


def average_command(args: argparse.Namespace) -> str:
    """The command as a user would type it again (recorded on the card); --threads changes no number."""
    from depth_attn.training.report import command_line

    words = ["depth-attn", "weights", "average", str(args.output), *(str(p) for p in args.inputs)]
    if args.name:
        words += ["--name", args.name]
    return command_line(words)


def run_average(args: argparse.Namespace) -> int:
    import torch

    from depth_attn.training.average import average_checkpoints

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    card = average_checkpoints(args.inputs, args.output, argv=[average_command(args)], name=args.name)
    print(f"weights: {args.output}\ncard:    {args.output.with_suffix('.json')}")
    for name, metrics in card["heldout"].items():
        print(f"held-out {name}: abs_rel {metrics['abs_rel']:.4f}  delta1 {metrics['delta1']:.4f}  "
              f"rmse {metrics['rmse']:.3f} m  ({int(metrics['frames'])} frames)")
    for source in card["averaged_from"]:
        held = source.get("heldout") or {}
        summary = "  ".join(f"{k} {v['abs_rel']:.4f}" for k, v in held.items())
        print(f"  from {source['file']}: abs_rel {summary or '(not recorded)'}")
    return 0
