"""`depth-attn weights`: list, fetch and import checkpoints into the checksummed cache."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "weights",
        help="list, fetch or import checkpoints",
        description="Manage checkpoints in the cache ($DEPTH_ATTN_HOME/weights, default "
        "~/.cache/depth_attn/weights). Known checkpoints are checked against their sha256; a file that "
        "does not match is refused and nothing is left in the cache.",
    )
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
    i = sub.add_parser(
        "import",
        help="take a local file as a known checkpoint, or a trained one with its card (checksum check)",
        description="Copy a local file into the cache under a known name, checked like a download, or take a "
        "checkpoint made by `depth-attn train` with the NAME.json card beside it: it becomes known by its name "
        "and `weights: auto` picks it for its configuration. Examples:\n"
        "  depth-attn weights import meter-xxs-kitti ~/Downloads/meter_xxs_kitti.pth\n"
        "  depth-attn weights import out/train/meter-tiny-meta/meter-xxs-meta-kitti.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("name", help="known checkpoint name (e.g. meter-xxs-kitti), or the trained .pth file alone")
    i.add_argument("path", type=Path, nargs="?", default=None, help="the checkpoint file (with a known name)")
    i.set_defaults(func=run_import)


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
