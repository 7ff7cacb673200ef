"""``python -m depth_attn.training --config FILE``: the entry point torchrun starts on every rank
(``torchrun --nproc-per-node 2 -m depth_attn.training --config FILE``); the same arguments as
``depth-attn train``."""

import sys

from depth_attn.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
