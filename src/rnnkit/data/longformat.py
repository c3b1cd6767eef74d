"""Long format -> records: one row per time step, grouped by an id column, ordered by a time column.

Contract: `interpret_long` builds one `Record` per sequence id, in file order of each sequence's
first row: values (T, C) float32 from the feature columns, rows sorted by time (numerically when
every time value of the sequence is a number, else as strings), ``extra["sequence_id"]``. A
sequence is kept or rejected as a whole: a bad row, a missing or duplicate time, a bad value or a
label that is not constant rejects it, keyed by its first line with the raw text of all its rows.
A row without an id is a bad row of its own. Bad rows never raise; the result is a `ReadResult`.

The table may come as the file's chunks (`rnnkit.data.readers` reads CSV, TSV, Parquet and Arrow long format
10,000 rows at a time): each row is checked on its own as its chunk is read and kept as a slim `_Step` (line, raw
text, time value, label, float32 values, its own problems) instead of its dict of fields, and the sequences are
checked and built once every chunk is read, so the result is the same as for one table of the whole file.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from rnnkit.data.bulk import gc_paused
from rnnkit.data.cells import MISSING, POSITIONS_LISTED, absent, is_blank, parse_scalar
from rnnkit.data.records import ParsedRow, ReadOptions, ReadResult, Record, collect_rows
from rnnkit.data.tables import Issue, Table, TableRow
from rnnkit.errors import shorten


def _plain_label(fields: dict[str, Any], opts: ReadOptions) -> str | None:
    v = fields.get(opts.label_column, MISSING)
    return None if v is MISSING or is_blank(v) else str(v).strip()


def _time_key(values: list[Any]) -> list[tuple[float, str]] | list[str]:
    """Numeric sort keys when every time value is a finite number, else string keys."""
    keys: list[float] = []
    for v in values:
        try:
            x = float(v) if not isinstance(v, bool) else math.nan
        except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
            break
        if not math.isfinite(x):
            break
        keys.append(x)
    else:
        return keys  # type: ignore[return-value]
    return [str(v).strip() for v in values]


class _Step:
    """One row of a long-format sequence, kept slim while the rest of the file is read: what the sequence checks
    and the record need (its line, raw text, time value, label and float32 values, its own problems), not the
    row's dict of fields."""

    __slots__ = ("broken", "issues", "label", "line", "raw", "time", "time_missing", "values")

    def __init__(self, row: TableRow, features: list[str], opts: ReadOptions) -> None:
        self.line, self.raw, self.broken = row.line, row.raw, row.broken
        self.issues: list[tuple[int, Issue]] | None = None  # the row's own: a missing time, a bad value
        self.time = self.label = self.values = None
        self.time_missing = False
        if row.broken is not None:
            return
        fields = row.fields
        issues = []
        self.time = fields.get(opts.time_column, MISSING)
        if self.time is MISSING or is_blank(self.time):
            self.time_missing = True
            issues.append((row.line, absent(opts.time_column, self.time, "time value", "give every row its time")))
        numbers = []
        for col in features:
            x, issue = parse_scalar(col, fields.get(col, MISSING), opts.from_text)
            if issue:
                issues.append((row.line, issue))
            numbers.append(x)
        if issues:
            self.issues = issues
        else:  # float32 as numpy casts a float64 (round to nearest), 4 bytes a value
            self.values = array.array("f", [float(x) for x in numbers]).tobytes()  # type: ignore[arg-type]
        label = _plain_label(fields, opts)
        self.label = None if label is None else sys.intern(label)  # one string for a sequence's rows


def interpret_long(table: Table | Iterable[Table], opts: ReadOptions, columns: list[str] | None = None
                   ) -> ReadResult:
    """Rows grouped by id and ordered by time -> one record per sequence. `table` may be the file's chunks, read
    one at a time (`columns`: the file's columns): each row is kept as a slim `_Step` once its chunk is read."""
    assert opts.id_column and opts.time_column
    tables = [table] if isinstance(table, Table) else table
    special = {opts.id_column, opts.time_column, opts.label_column}
    features: list[str] | None = None
    groups: dict[str, list[_Step]] = {}
    parsed: list[ParsedRow] = []
    with gc_paused():  # a million slim steps stay alive: no cyclic collection scanning them again and again
        for chunk in tables:
            if features is None:
                features = opts.feature_columns or [c for c in (columns or chunk.columns) if c not in special]
            for row in chunk.rows:
                v = row.fields.get(opts.id_column, MISSING)
                if v is MISSING or is_blank(v):
                    # A row without an id cannot join a sequence; it is a bad row of its own.
                    issue = row.broken or absent(opts.id_column, v, "sequence id", "give the row its sequence id")
                    parsed.append(ParsedRow(TableRow(row.line, {}, row.raw), None, f"{opts.base}:{row.line}",
                                            [(row.line, issue)]))
                    continue
                # Broken rows whose id field is readable join their sequence, so that the sequence is
                # rejected instead of being built with a step missing.
                groups.setdefault(str(v).strip(), []).append(_Step(row, features, opts))

    width = len(features or [])
    for sid, steps in groups.items():
        rid = f"{opts.base}:{sid}"
        # A sequence is one unit: keyed by its first line, raw text = all of its rows.
        raw = "".join(r.raw if r.raw.endswith(("\n", "\r")) else r.raw + "\n" for r in steps)
        unit = TableRow(steps[0].line, {}, raw)
        issues = _long_sequence_issues(sid, steps, opts)
        if issues:
            parsed.append(ParsedRow(unit, None, rid, sorted(issues, key=lambda i: i[0])))
            continue
        keys = _time_key([r.time for r in steps])
        order = sorted(range(len(steps)), key=lambda i: keys[i])
        values = np.frombuffer(b"".join(steps[i].values for i in order), dtype=np.float32).reshape(
            len(steps), width).copy()
        # constant within the sequence (checked above); None only when require_label is False
        rec = Record(rid, opts.file, steps[0].line, values=values, label=steps[0].label, extra={"sequence_id": sid})
        parsed.append(ParsedRow(unit, rec, rid, []))
    parsed.sort(key=lambda u: u.row.line)  # file order of each sequence's first row
    return collect_rows(opts.file, parsed)


def _long_sequence_issues(sid: str, rows: list[_Step], opts: ReadOptions) -> list[tuple[int, Issue]]:
    """Every problem of one long-format sequence, each with the line of the row it is on."""
    assert opts.time_column
    issues: list[tuple[int, Issue]] = []
    good = [r for r in rows if r.broken is None]
    issues += [(r.line, r.broken) for r in rows if r.broken is not None]
    times_ok = True
    for row in good:
        times_ok = times_ok and not row.time_missing
        issues += row.issues or ()
    if times_ok and good:
        times = [r.time for r in good]
        seen: dict[Any, int] = {}
        for row, key, t in zip(good, _time_key(times), times, strict=True):
            if key in seen:
                issues.append(
                    (
                        row.line,
                        (
                            opts.time_column,
                            shorten(t),
                            f"duplicate time value in sequence {sid!r} (also on line {seen[key]})",
                            "each time of a sequence must appear once; remove or merge the duplicate rows",
                        ),
                    )
                )
            else:
                seen[key] = row.line
    if opts.has_label and good:
        labels = [(row.line, row.label) for row in good]
        first_line, first = labels[0]
        differ = [(line, lab) for line, lab in labels if lab != first]
        if differ:
            listed = ", ".join(f"{lab!r} on line {line}" for line, lab in differ[:POSITIONS_LISTED])
            more = f" and {len(differ) - POSITIONS_LISTED} more" if len(differ) > POSITIONS_LISTED else ""
            issues.append(
                (
                    differ[0][0],
                    (
                        opts.label_column,
                        shorten(differ[0][1] if differ[0][1] is not None else ""),
                        f"label not constant within sequence {sid!r}: {first!r} on line {first_line}, "
                        f"but {listed}{more}",
                        "give every row of a sequence the same label",
                    ),
                )
            )
        elif first is None and opts.require_label:
            issues.append(
                (
                    first_line,
                    (
                        opts.label_column,
                        "",
                        "missing label",
                        "give the sequence a label, or remove it",
                    ),
                )
            )
    return issues
