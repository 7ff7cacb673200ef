"""`depth-attn cache`: see and clear the built artefacts (ONNX files, TensorRT engines, OpenVINO blobs)."""

from __future__ import annotations

import argparse
import time

from depth_attn.cli.common import add_command

KINDS = ("onnx", "engines", "openvino")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "cache")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    for name, text, func in (("list", "show the cached artefacts", run_list),
                             ("clear", "delete cached artefacts (all, or those matching --kind/--match)", run_clear)):
        a = sub.add_parser(name, help=text, description=text)
        a.add_argument("--kind", choices=KINDS, default=None, help="only this kind of artefact")
        a.add_argument("--match", default="", metavar="TEXT",
                       help="only entries whose label contains TEXT, e.g. meter-tiny")
        a.set_defaults(func=func)


def run_list(args: argparse.Namespace) -> int:
    from depth_attn.inference.cache import ArtefactCache

    cache = ArtefactCache()
    entries = [e for e in cache.entries(args.kind) if args.match in e.label]
    print(f"{cache.root}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
    for e in entries:
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        print(f"  {e.kind:<7} {e.label:<48} {e.size / 1e6:9.1f} MB  {made}  {e.path}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from depth_attn.inference.cache import ArtefactCache

    removed = ArtefactCache().remove(args.kind, args.match)
    freed = sum(e.size for e in removed) / 1e6
    print(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({freed:.1f} MB)")
    return 0
