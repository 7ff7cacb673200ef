"""What the benchmark scripts share (imported as ``bench_common``: each script runs from bench/)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence


def write_report(lines: Sequence[str], out: Optional[Path]) -> int:
    """Print a benchmark's report (markdown lines) and, with ``out``, write it there (its folder made);
    the script's exit status (0)."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return 0
