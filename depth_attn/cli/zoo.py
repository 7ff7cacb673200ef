"""`depth-attn zoo`: the table of model configurations with their parameters, GMACs and weights."""

from __future__ import annotations

import argparse

from depth_attn.cli.common import add_command, parse_hw
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS

EPILOG = """\
names: network-size-variant-placement, e.g. newcrfs-tiny-meta-decoder. network meter|pixelformer|newcrfs,
size tiny|base|large (METER XXS/XS/S, Swin-T/B/L), variant base|meta|pyra|moh (the original attention
or an efficient replacement), placement full|encoder|decoder (where the replacement goes; METER has
attention in its encoder only, so full only; base is always full): 72 configurations.

examples:
  depth-attn zoo --network meter
  depth-attn zoo --network newcrfs --size tiny --resolution 480x640
  depth-attn zoo --csv zoo.csv
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "zoo", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--network", nargs="+", choices=NETWORKS, default=list(NETWORKS), help="networks to list (default: all)"
    )
    p.add_argument("--size", nargs="+", choices=SIZES, default=list(SIZES), help="sizes to list (default: all)")
    p.add_argument("--variant", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="variants (default: all)")
    p.add_argument(
        "--placement", nargs="+", choices=PLACEMENTS, default=list(PLACEMENTS), help="placements (default: all)"
    )
    p.add_argument(
        "--resolution",
        type=parse_hw,
        default=None,
        metavar="HxW",
        help="input size for the GMACs, e.g. 352x1216 (PixelFormer/NeWCRFs need multiples of 32)",
    )
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    p.set_defaults(func=run)


def official_weights(network: str, size: str, variant: str) -> str:
    from depth_attn.weights import CHECKPOINTS

    if variant != "base":
        names = [i.name for i in CHECKPOINTS.values() if (i.network, i.size) == (network, size)]
        return f"(from {names[0]}, strict=False)" if names else "-"
    names = [i.name for i in CHECKPOINTS.values() if (i.network, i.size) == (network, size)]
    return ", ".join(names) or "-"


def run(args: argparse.Namespace) -> int:
    import csv
    import sys

    from tqdm import tqdm

    from depth_attn.models import list_configs
    from depth_attn.models.stats import model_stats

    configs = [
        c
        for c in list_configs()
        if c.network in args.network
        and c.size in args.size
        and c.variant in args.variant
        and c.placement in args.placement
    ]
    if not configs:
        raise ValueError("no configuration matches these filters (METER has placement full only; base is full only)")
    rows = []
    for config in tqdm(configs, desc="counting", unit="config", file=sys.stderr, disable=len(configs) < 5):
        stats = model_stats(config, args.resolution)
        rows.append(
            {
                "config": config.name,
                "input": f"{stats.input_hw[0]}x{stats.input_hw[1]}",
                "params_M": f"{stats.params / 1e6:.3f}",
                "gmacs": f"{stats.gmacs:.3f}",
                "weights": official_weights(config.network, config.size, config.variant),
            }
        )
    headers = {
        "config": "config",
        "input": "input",
        "params_M": "params (M)",
        "gmacs": "GMACs",
        "weights": "official weights",
    }
    widths = {k: max(len(headers[k]), *(len(r[k]) for r in rows)) for k in headers}
    print("  ".join(headers[k].ljust(widths[k]) for k in headers))
    for r in rows:
        print(
            "  ".join(r[k].rjust(widths[k]) if k in ("params_M", "gmacs") else r[k].ljust(widths[k]) for k in headers)
        )
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(headers))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {len(rows)} rows to {args.csv}", file=sys.stderr)
    return 0
