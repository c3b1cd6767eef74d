"""What several benchmark scripts share (they run as `python bench/NAME.py`, so this folder is on sys.path)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def uptime() -> str:
    """`uptime`'s line (the machine's load beside a figure), or "" where there is no `uptime`."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def write_result(result: dict, out: str | Path) -> None:
    """Print a benchmark's result as JSON and write it to `out` (its folder made if needed)."""
    text = json.dumps(result, indent=1)
    print(text)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
