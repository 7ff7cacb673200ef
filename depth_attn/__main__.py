import sys

from depth_attn.cli import main

sys.exit(main())
