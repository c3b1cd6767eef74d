"""One process trains into a run directory at a time: an exclusive lock held for the whole run.

Invariants:
1. `claim(DIR)` takes an exclusive, non-blocking `flock` on `DIR/.rnnkit.lock` before any data are read,
   and keeps it until the claiming call ends (`Claims.close`); a second process gets a `ConfigError`
   (exit 2) naming the holder's pid, and reads nothing.
2. The operating system drops the lock when the holder dies, `kill -9` included, so a lock can never
   go stale; the file itself stays (it holds only the last holder's pid and start time, for messages).
3. Within one process a claim is re-entrant: a repaired run (`train.nonfinite=repair`) trains the same
   directory again under the lock it already holds.

`flock` is advisory and local to one machine's kernel (on a network file system it may not exclude
processes on other hosts); every rnnkit command that writes a run directory goes through here.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from rnnkit.errors import ConfigError

LOCK_FILE = ".rnnkit.lock"


class Claims:
    """The run directories this call holds; `close()` (or the `with` block's end) releases them all."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, Path, bool]] = {}

    def claim(self, run_dir: Path, *, created: bool = False, what: str = "train") -> None:
        """Lock `run_dir` (an existing, writable directory) for this call; `created`: the caller just made
        it, so that a call that wrote nothing else into it removes it again."""
        key = os.path.realpath(run_dir)
        if key in self._held:
            return
        path = run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ConfigError(
                f"{run_dir} is in use by another rnnkit process{holder}; two runs cannot share a run "
                f"directory. Wait for it to finish (then `rnnkit train --resume {run_dir}` continues it), "
                "or choose another --out.") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": what, "since": time.strftime(
            "%Y-%m-%d %H:%M:%S")}).encode())
        self._held[key] = (fd, run_dir, created)

    def close(self) -> None:
        for fd, run_dir, created in self._held.values():
            if created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                # a run that failed before writing anything (e.g. bad data) leaves no directory behind
                (run_dir / LOCK_FILE).unlink(missing_ok=True)
                run_dir.rmdir()
            os.close(fd)  # closing the descriptor drops the flock
        self._held.clear()

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {info['pid']}, `rnnkit {info.get('command', 'train')}` since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
