"""Errors that rnnkit raises on purpose, each carrying an exit status for the CLI.

Every error names where the problem is (file:line and column, or config key), the bad
value, the rule it broke and how to fix it. A `DataError` lists *every* problem found,
not only the first one, so a user fixes a file in one pass.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_LISTED = 50  # problems printed in full; the rest are counted (all are kept on `.problems`)


class RnnkitError(Exception):
    """Base class. `exit_code` is what `rnnkit` exits with when this reaches the CLI."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One bad value in one input row.

    Attributes:
        file: path of the input file as given by the user.
        line: 1-based line number in that file (for Parquet and Arrow: 1-based row number), or None
            for problems that concern the whole file (e.g. a missing column).
        column: column / field name (or channel index for .ts), or None.
        value: the offending value, shortened to at most 80 characters; None for a column missing as a whole.
        rule: what was expected ("expected 3 fields, found 2").
        fix: one sentence on how to repair it.
        record_id: id of the record the row belongs to, when known.
    """

    file: str
    line: int | None
    column: str | None
    value: str | None
    rule: str
    fix: str
    record_id: str | None = None

    def location(self) -> str:
        loc = self.file if self.line is None else f"{self.file}:{self.line}"
        return loc if self.column is None else f"{loc} column {self.column!r}"

    def __str__(self) -> str:
        value = "" if self.value is None else f"value {self.value!r}: "  # None: a problem of a column, not a cell
        return f"{self.location()}: {value}{self.rule}. Fix: {self.fix}"

    def to_dict(self) -> dict:
        return asdict(self)


def shorten(value: object, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataError(RnnkitError):
    """Input data failed validation. Raised before the first training step."""

    exit_code = 2

    def __init__(self, problems: list[Problem], header: str | None = None):
        self.problems = list(problems)
        self.header = header
        super().__init__(self.message("all are listed in the error's .problems"))

    def message(self, where_the_rest_are: str) -> str:
        """The header and the first MAX_LISTED problems; past those, a count and `where_the_rest_are` (the Python
        API's message points at `.problems`; the command line names what it can do instead)."""
        n = len(self.problems)
        head = self.header or f"{n} problem{'s' if n != 1 else ''} found in the input data"
        # a header alone (no problems listed) ends the message: no colon left dangling
        lines = [head + ":" if n else head] + [f"  - {p}" for p in self.problems[:MAX_LISTED]]
        if n > MAX_LISTED:
            lines.append(f"  ... and {n - MAX_LISTED} more ({where_the_rest_are})")
        return "\n".join(lines)


class MissingExtra(RnnkitError):
    """An optional dependency is not installed; the message says which extra brings it (exit 2)."""

    exit_code = 2


class ConfigError(RnnkitError):
    """A configuration key or value is invalid (unknown key, wrong type, out of range)."""

    exit_code = 2


class CheckpointError(RnnkitError):
    """A checkpoint is missing, corrupt (checksum mismatch), unsafe, or incompatible."""

    exit_code = 3


class TrainingError(RnnkitError):
    """Training stopped on a problem the user must act on (e.g. a non-finite loss)."""

    exit_code = 4


class Interrupted(RnnkitError):
    """SIGINT/SIGTERM arrived; a checkpoint was written. Exit status 130 / 143 like a shell."""

    def __init__(self, signum: int, path: Path | None):
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        where = (f"checkpoint written to {path}; continue with `rnnkit train --resume {Path(path).parent.parent}`"
                 if path else "no checkpoint written")
        super().__init__(f"training interrupted by {name}: {where}.")
