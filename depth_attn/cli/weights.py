"""`depth-attn weights`: list, fetch and import checkpoints into the checksummed cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers, "weights", "list, fetch or import checkpoints",
        "Manage checkpoints in the cache ($DEPTH_ATTN_HOME/weights, default ~/.cache/depth_attn/weights). Known "
        "checkpoints are checked against their sha256; a file that does not match is refused and nothing is left "
        "in the cache.",
        "  depth-attn weights list\n"
        "  depth-attn weights fetch meter-xxs-kitti\n"
        "  depth-attn weights import meter-xxs-kitti ~/Downloads/meter_xxs_kitti.pth")
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    sub.add_parser(
        "list",
        help="known checkpoints and where they are on this machine",
        description="Print every known checkpoint: the configuration it covers (network-size-variant-placement; "
        "`weights: auto` picks it for that configuration), dataset, input size, output unit, whether its sha256 "
        "is known (verified) and where it is on this machine (- if not here).",
    ).set_defaults(func=run_list)
    f = sub.add_parser(
        "fetch",
        help="download a known checkpoint (progress bar, checksum check)",
        description="Download a known checkpoint into the cache. Example: depth-attn weights fetch meter-xxs-kitti. "
        "Without internet, fetch it elsewhere and use `depth-attn weights import`.",
    )
    f.add_argument("name", help="known checkpoint name, e.g. meter-xxs-kitti")
    f.add_argument("--url", default=None, help="download from this URL instead of the upstream one (a mirror)")
    f.set_defaults(func=run_fetch)
    i = add_command(
        sub, "import", "take a local file as a known checkpoint, or a trained one with its card (checksum check)",
        "Copy a local file into the cache under a known name, checked like a download, or take a checkpoint made "
        "by `depth-attn train` with the NAME.json card beside it: it becomes known by its name and `weights: auto` "
        "picks it for its configuration.",
        "  depth-attn weights import meter-xxs-kitti ~/Downloads/meter_xxs_kitti.pth\n"
        "  depth-attn weights import out/train/meter-tiny-meta/meter-xxs-meta-kitti.pth")
    i.add_argument("name", help="known checkpoint name (e.g. meter-xxs-kitti), or the trained .pth file alone")
    i.add_argument("path", type=Path, nargs="?", default=None, help="the checkpoint file (with a known name)")
    i.set_defaults(func=run_import)
    a = add_command(
        sub, "average", "average trained checkpoints of one configuration into one, measured and carded",
        "Write the uniform average of two or more checkpoints made by `depth-attn train` (each with its NAME.json "
        "card beside it; all of one network, size, variant, placement, dataset and input size) to OUTPUT, measure "
        "it on the held-out sets (data.val) of the first one's config, and write OUTPUT's card: its held-out "
        "metrics, every input with its sha256 and held-out metrics, and as `command` the commands that made the "
        "inputs followed by this one. Averaging gains when the inputs come from different starts or runs; two "
        "fine-tunings of one parent average to what either gives.",
        "  depth-attn weights average out/soup/meter-xxs-meta-kitti.pth \\\n"
        "      out/train/meta-a/meter-xxs-meta-kitti.pth out/train/meta-b/meter-xxs-meta-kitti.pth\n"
        "  depth-attn weights import out/soup/meter-xxs-meta-kitti.pth")
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
