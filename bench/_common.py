"""What several benchmark scripts share (they run as `python bench/NAME.py`, so this folder is on sys.path)."""

from __future__ import annotations

import subprocess


def uptime() -> str:
    """`uptime`'s line (the machine's load beside a figure), or "" where there is no `uptime`."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
