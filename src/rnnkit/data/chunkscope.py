"""The scope in which a file is read one chunk at a time through readers written for whole files.

`rnnkit.data.chunked` cuts a table file into chunks; for each, `serving(path, table, state)` opens a scope in
which `rnnkit.data.tables.load_table(path)` returns that chunk instead of reading the file, so a family's own
reader (its options, checks and encoding) reads exactly that chunk and nothing of the family changes. The scope
carries what must hold across chunks (`ChunkState`):

- ids: the values of an id column are unique across the file (`shared_ids`; the text/numeric row reader keeps
  its first-seen lines there);
- bad rows: under ``data.bad_rows=skip`` the rejected rows are counted across chunks (`BadRowTally`, fed by
  `rnnkit.data.validate.validate_splits`) and the bad-row limit is applied to the whole file at the end, as a
  whole-file read applies it; a row under ``error`` still fails at once;
- whether the reader asked for the table at all (`Served.used`): a reader that reads its file another way
  (CoNLL, .ts, a word list) read the whole file, and its result is the whole file's;
- rows that are not independent: long format (one row per time step, a sequence may span chunks) raises
  `NotRowLocal` from the reader, and the caller reads the whole file instead.

This module imports nothing of rnnkit.data, so that the readers can import it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import DataError, Problem

KEPT_PROBLEMS = 50  # bad-row problems kept across chunks for the final message (the count is exact)


class NotRowLocal(Exception):  # noqa: N818 - a signal to the streaming loop, never shown to a user
    """Raised by a reader under `serving` when a record may span chunks (long format)."""


@dataclass
class BadRowTally:
    """Bad rows skipped across the chunks of one file, for the limit and the one warning at the end."""

    rows: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, rows: int, rejected: int, problems: list[Problem]) -> None:
        self.rows += rows
        self.rejected += rejected
        self.problems.extend(problems[: max(0, KEPT_PROBLEMS - len(self.problems))])

    def finish(self, max_bad_fraction: float) -> None:
        """Warn about the skipped rows, or raise when they exceed `max_bad_fraction` of the file's rows."""
        if not self.rejected:
            return
        fraction = self.rejected / self.rows if self.rows else 0.0
        if fraction > max_bad_fraction:
            kept = "" if len(self.problems) >= self.rejected else f"; the first {len(self.problems)} are listed"
            raise DataError(
                self.problems,
                header=(f"{self.rejected} of {self.rows} rows ({fraction:.2%}) are bad, more than the limit "
                        f"data.max_bad_fraction={max_bad_fraction:g} ({max_bad_fraction:.2%}){kept}. Repair the "
                        "file(s), or raise the limit with `--set data.max_bad_fraction=0.05`"))
        shown = "; ".join(str(p) for p in self.problems[:3])
        warnings.warn(f"skipped {self.rejected} bad row(s) without a rejects file (first: {shown})", RuntimeWarning,
                      stacklevel=2)


@dataclass
class ChunkState:
    """What holds across the chunks of one file."""

    ids: dict[str, int] = field(default_factory=dict)
    bad: BadRowTally = field(default_factory=BadRowTally)


@dataclass
class Served:
    path: Path
    table: Any  # rnnkit.data.tables.Table (not imported: tables imports this module)
    state: ChunkState
    used: bool = False


_SERVED: ContextVar[Served | None] = ContextVar("rnnkit_served_chunk", default=None)


def _key(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


@contextlib.contextmanager
def serving(path: str | os.PathLike, table, state: ChunkState) -> Iterator[Served]:
    """Within the block, `load_table(path)` returns `table` (one chunk of the file)."""
    served = Served(_key(path), table, state)
    token = _SERVED.set(served)
    try:
        yield served
    finally:
        _SERVED.reset(token)


def active() -> Served | None:
    """The chunk being served, or None when files are read whole."""
    return _SERVED.get()


def served_table(path: str | os.PathLike):
    """The chunk served for `path` (and mark it used), or None."""
    served = _SERVED.get()
    if served is None or served.path != _key(path):
        return None
    served.used = True
    return served.table


def shared_ids() -> dict[str, int]:
    """Id -> first line, shared by the chunks of the file being served (a fresh dict otherwise)."""
    served = _SERVED.get()
    return served.state.ids if served is not None else {}


def require_row_local() -> None:
    """Called by a reader whose records may span rows: under `serving`, give up the chunked read."""
    if _SERVED.get() is not None:
        raise NotRowLocal
