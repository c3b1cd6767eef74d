"""Long format -> records: one row per time step, grouped by an id column, ordered by a time column.

Contract: `interpret_long` builds one `Record` per sequence id, in file order of each sequence's
first row: values (T, C) float32 from the feature columns, rows sorted by time (numerically when
every time value of the sequence is a number, else as strings), ``extra["sequence_id"]``. A
sequence is kept or rejected as a whole: a bad row, a missing or duplicate time, a bad value or a
label that is not constant rejects it, keyed by its first line with the raw text of all its rows.
A row without an id is a bad row of its own. Bad rows never raise; the result is a `ReadResult`.

The table may come as the file's chunks (`rnnkit.data.readers` reads CSV, TSV, Parquet and Arrow long format
10,000 rows at a time). Each row is checked on its own as its chunk is read and then kept in flat columns, a few
bytes a step beside its values: its sequence's number, its line, its time value (one shared string for a time
that many sequences have) and its float32 values; a row's own problems, and the label check, are kept per
sequence. The sequences are checked and built once every chunk is read, so the result is the same as for one
table of the whole file. A row's raw text is not kept: the rejected sequences' rows are read again from the
file (`reread`) for the rejects file, only when a sequence is rejected.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from rnnkit.data.bulk import gc_paused
from rnnkit.data.cells import MISSING, POSITIONS_LISTED, absent, is_blank, parse_scalar
from rnnkit.data.records import ParsedRow, ReadOptions, ReadResult, Record, collect_rows, raw_texts
from rnnkit.data.tables import Issue, Table, TableRow
from rnnkit.errors import shorten

_UNSET = object()  # a sequence none of whose rows has been read whole yet (no label seen)


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


class _Steps:
    """Every step of the file in flat columns, in file order, and what is known of each sequence so far.

    Per step: its sequence's number (`group`), `line`, `time` (the cell as read; strings interned, so a time value
    that many sequences share is one object) and `width` float32 `values` (NaN for a row with a problem). Per
    sequence: its id, whether a row of it has a problem of its own (`bad`), its first whole row's label and line,
    and the labels that differ from that one (count, then the first few with their lines). A row's own problems
    are kept by step number; they are few."""

    def __init__(self, opts: ReadOptions, width: int) -> None:
        self.opts, self.width = opts, width
        self.group, self.line, self.values = array.array("i"), array.array("q"), array.array("f")
        self.time: list[Any] = []
        self.ids: dict[str, int] = {}
        self.sids: list[str] = []
        self.bad = bytearray()
        self.label: list[Any] = []
        self.label_line: list[int] = []
        self.differ: dict[int, list[Any]] = {}
        self.broken: dict[int, Issue] = {}
        self.issues: dict[int, list[tuple[int, Issue]]] = {}
        self.time_missing: set[int] = set()
        self._nan = array.array("f", [math.nan] * width)

    def add(self, sid: str, row: TableRow, features: list[str]) -> None:
        opts = self.opts
        g = self.ids.get(sid)
        if g is None:
            g = self.ids[sid] = len(self.sids)
            self.sids.append(sid)
            self.bad.append(0)
            self.label.append(_UNSET)
            self.label_line.append(0)
        k = len(self.time)
        self.group.append(g)
        self.line.append(row.line)
        if row.broken is not None:
            self.broken[k] = row.broken
            self.bad[g] = 1
            self.time.append(None)
            self.values.extend(self._nan)
            return
        fields = row.fields
        issues = []
        t = fields.get(opts.time_column, MISSING)
        if t is MISSING or is_blank(t):
            self.time_missing.add(k)
            issues.append((row.line, absent(opts.time_column, t, "time value", "give every row its time")))
        numbers = []
        for col in features:
            x, issue = parse_scalar(col, fields.get(col, MISSING), opts.from_text)
            if issue:
                issues.append((row.line, issue))
            numbers.append(x)
        if issues:
            self.issues[k] = issues
            self.bad[g] = 1
            self.values.extend(self._nan)
        else:  # float32 as numpy casts a float64 (round to nearest), 4 bytes a value
            self.values.extend([float(x) for x in numbers])  # type: ignore[arg-type]
        self.time.append(sys.intern(t) if type(t) is str else t)
        label = _plain_label(fields, opts)
        label = None if label is None else sys.intern(label)  # one string for a sequence's rows
        first = self.label[g]
        if first is _UNSET:
            self.label[g], self.label_line[g] = label, row.line
        elif label != first:
            self.bad[g] = 1
            seen = self.differ.setdefault(g, [0])
            seen[0] += 1
            if len(seen) <= POSITIONS_LISTED:
                seen.append((row.line, label))

    def sequence_issues(self, g: int, steps: np.ndarray) -> tuple[list[tuple[int, Issue]], list[Any] | None]:
        """Every problem of sequence `g` (its steps in file order), each with the line of the row it is on, and
        the sort keys of its times (None when a row is broken or has no time)."""
        opts = self.opts
        assert opts.time_column
        sid, lines, issues = self.sids[g], self.line, []
        at = steps.tolist()
        if self.bad[g]:
            issues += [(lines[k], self.broken[k]) for k in at if k in self.broken]
            good = [k for k in at if k not in self.broken]
            for k in good:
                issues += self.issues.get(k, ())
            times_ok = not any(k in self.time_missing for k in good)
        else:
            good, times_ok = at, True
        keys = None
        if times_ok and good:
            times = [self.time[k] for k in good]
            keys = _time_key(times)
            if len(set(keys)) < len(keys):
                seen: dict[Any, int] = {}
                for k, key, t in zip(good, keys, times, strict=True):
                    if key in seen:
                        issues.append((lines[k], (
                            opts.time_column, shorten(t),
                            f"duplicate time value in sequence {sid!r} (also on line {seen[key]})",
                            "each time of a sequence must appear once; remove or merge the duplicate rows")))
                    else:
                        seen[key] = lines[k]
        if opts.has_label and good:
            first, first_line = self.label[g], self.label_line[g]
            if g in self.differ:
                count, *listed = self.differ[g]
                shown = ", ".join(f"{lab!r} on line {line}" for line, lab in listed)
                more = f" and {count - POSITIONS_LISTED} more" if count > POSITIONS_LISTED else ""
                line, lab = listed[0]
                issues.append((line, (
                    opts.label_column, shorten(lab if lab is not None else ""),
                    f"label not constant within sequence {sid!r}: {first!r} on line {first_line}, but {shown}{more}",
                    "give every row of a sequence the same label")))
            elif first is None and opts.require_label:
                issues.append((first_line, (opts.label_column, "", "missing label",
                                            "give the sequence a label, or remove it")))
        return issues, keys


def interpret_long(table: Table | Iterable[Table], opts: ReadOptions, columns: list[str] | None = None,
                   reread: Callable[[], Iterable[Table]] | None = None) -> ReadResult:
    """Rows grouped by id and ordered by time -> one record per sequence. `table` may be the file's chunks, read
    one at a time (`columns`: the file's columns): each row goes into flat columns once its chunk is read.
    `reread` gives the file's chunks again, for the raw text of the rows of rejected sequences (needed only when
    one is; a whole `table` is its own)."""
    assert opts.id_column and opts.time_column
    if isinstance(table, Table):
        whole = table
        tables: Iterable[Table] = [table]
        reread = reread or (lambda: [whole])
    else:
        tables = table
    special = {opts.id_column, opts.time_column, opts.label_column}
    features: list[str] | None = None
    steps: _Steps | None = None
    parsed: list[ParsedRow] = []
    with gc_paused():  # per-chunk rows by the thousand: no cyclic collection walking them
        for chunk in tables:
            if features is None:
                features = opts.feature_columns or [c for c in (columns or chunk.columns) if c not in special]
                steps = _Steps(opts, len(features))
            assert steps is not None
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
                steps.add(str(v).strip(), row, features)
    if steps is not None and steps.sids:
        parsed += _sequences(steps, reread)
    parsed.sort(key=lambda u: u.row.line)  # file order of each sequence's first row
    return collect_rows(opts.file, parsed)


def _sequences(steps: _Steps, reread: Callable[[], Iterable[Table]] | None) -> list[ParsedRow]:
    """One record, or one rejected unit, per sequence."""
    opts, width = steps.opts, steps.width
    group = np.frombuffer(steps.group, dtype=np.int32)
    order = np.argsort(group, kind="stable")  # each sequence's steps together, in file order
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(steps.sids)))]).tolist()
    values = np.frombuffer(steps.values, dtype=np.float32).reshape(len(group), width)
    lines = steps.line
    out: list[ParsedRow] = []
    rejected: dict[int, ParsedRow] = {}
    for g, sid in enumerate(steps.sids):
        rid = f"{opts.base}:{sid}"
        at = order[bounds[g]:bounds[g + 1]]
        issues, keys = steps.sequence_issues(g, at)
        if issues:
            unit = ParsedRow(TableRow(lines[at[0]], {}, ""), None, rid, sorted(issues, key=lambda i: i[0]))
            rejected[g] = unit
            out.append(unit)
            continue
        assert keys is not None
        by_time = at[sorted(range(len(keys)), key=keys.__getitem__)]
        # constant within the sequence (checked above); None only when require_label is False
        rec = Record(rid, opts.file, lines[at[0]], values=values[by_time], label=steps.label[g],
                     extra={"sequence_id": sid})
        out.append(ParsedRow(TableRow(lines[at[0]], {}, ""), rec, rid, []))
    if rejected:
        _raw_text(steps, order, bounds, rejected, reread)
    return out


def _raw_text(steps: _Steps, order: np.ndarray, bounds: list[int], rejected: dict[int, ParsedRow],
              reread: Callable[[], Iterable[Table]] | None) -> None:
    """Each rejected sequence's raw text, all of its rows (as far as the rejects file keeps), read again from the
    file: the lines of its rows are known, their text was not kept."""
    assert reread is not None, "a long-format table read in chunks needs `reread` for its rejected rows"
    owner = {steps.line[k]: g for g in rejected for k in order[bounds[g]:bounds[g + 1]].tolist()}
    texts = raw_texts(reread(), lambda row: owner.get(row.line),
                      lambda _, raw: raw if raw.endswith(("\n", "\r")) else raw + "\n")
    for g, unit in rejected.items():
        unit.row.raw = texts.get(g, "")
