"""Records and read results: what every reader returns, with provenance.

Contract: a `Record` is one input sequence after reading, before encoding; it names its file and
line. A `ReadResult` holds the good records of one file, a `Problem` for every bad row and the raw
text of each bad row (capped at `RAW_LIMIT` characters); ``len(records) + len(bad_rows) == rows``.

The row interpreters (text/numeric rows, long format, .ts) share `ReadOptions` (what
`rnnkit.data.readers.read_records` was asked for) and `ParsedRow` (one unit after interpretation:
a record, or the issues that reject it), and build their result with `collect_rows`.
`fix_channel_counts` rejects the records whose channel count differs from the most common one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

from rnnkit.data.tables import Issue, Table, TableRow
from rnnkit.errors import Problem

RAW_LIMIT = 2000  # characters of raw row text kept per rejected row (for rejects.jsonl)


@dataclass
class Record:
    """One sequence as read from a file.

    Exactly one of `tokens` (text input) or `values` (numeric input) is set.

    Attributes:
        id: stable id, "<file name>:<line>" unless the file has an id column.
        file: path of the source file.
        line: 1-based line (row) where the record starts.
        tokens: list of string tokens (text input).
        values: float32 array of shape (T, C) (numeric input, C channels).
        label: class label as a string (classification), or None when unlabeled.
        extra: any task-specific fields later readers need to keep.
    """

    id: str
    file: str
    line: int
    tokens: list[str] | None = None
    values: np.ndarray | None = None
    label: str | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        if self.tokens is not None:
            return len(self.tokens)
        assert self.values is not None
        return int(self.values.shape[0])


@dataclass
class ReadResult:
    """What `read_records` found in one file.

    Invariant: ``len(records) + len(bad_rows) == rows``; every bad row has at least one
    problem and never appears in `records`.

    Attributes:
        records: the good records, in file order.
        problems: one or more per bad row (row problems only; whole-file problems raise).
        rows: data rows seen, the denominator of the bad fraction. For long-format input one
            "row" is one sequence (plus any row that could not be assigned to a sequence),
            because a sequence is kept or rejected as a whole.
        bad_rows: line -> raw text of each rejected row, capped at `RAW_LIMIT` characters. For a
            rejected long-format sequence the key is its first line and the text holds all its rows.
        record_ids: line -> record id for each key of `bad_rows`, so problems can be grouped
            per rejected row even when they sit on another line of the same sequence.
    """

    records: list[Record]
    problems: list[Problem]
    rows: int
    bad_rows: dict[int, str]
    record_ids: dict[int, str] = field(default_factory=dict)


@dataclass
class ReadOptions:
    file: str
    base: str
    text_column: str
    sequence_column: str
    label_column: str
    id_column: str | None
    time_column: str | None
    feature_columns: list[str] | None
    tokenize: str
    lowercase: bool
    require_label: bool
    has_label: bool = False
    from_text: bool = True  # cells are strings (CSV/TSV) rather than typed JSON/Parquet/Arrow values


@dataclass
class ParsedRow:
    """A row (or long-format sequence) after interpretation: a record, or the issues that reject it."""

    row: TableRow
    record: Record | None
    record_id: str
    issues: list[tuple[int, Issue]]


def collect_rows(file: str, parsed: list[ParsedRow]) -> ReadResult:
    """Build the ReadResult: each unit is a good record or a rejected row with its problems."""
    records: list[Record] = []
    problems: list[Problem] = []
    bad_rows: dict[int, str] = {}
    record_ids: dict[int, str] = {}
    for unit in parsed:
        if unit.record is not None:
            records.append(unit.record)
            continue
        assert unit.issues, "a rejected row must carry at least one problem"
        bad_rows[unit.row.line] = unit.row.raw[:RAW_LIMIT]
        record_ids[unit.row.line] = unit.record_id
        for line, (column, value, rule, fix) in unit.issues:
            problems.append(Problem(file, line, column, value, rule, fix, unit.record_id))
    assert len(records) + len(bad_rows) == len(parsed)
    return ReadResult(records, problems, len(parsed), bad_rows, record_ids)


def raw_texts(chunks: Iterable[Table], key_of: Callable[[TableRow], Hashable | None],
              text_of: Callable[[Hashable, str], str]) -> dict[Hashable, str]:
    """The raw text of the rejected rows a file is read again for: each row that `key_of` gives a key (a rejected
    record), as `text_of(key, raw)`, joined per key in file order and cut at `RAW_LIMIT` characters (reading stops
    adding to a key once it has that many). Keys without a row are absent."""
    pieces: dict[Hashable, list[str]] = {}
    size: dict[Hashable, int] = {}
    for chunk in chunks:
        for row in chunk.rows:
            key = key_of(row)
            if key is None or size.get(key, 0) >= RAW_LIMIT:
                continue
            text = text_of(key, row.raw)
            pieces.setdefault(key, []).append(text)
            size[key] = size.get(key, 0) + len(text)
    return {key: "".join(texts)[:RAW_LIMIT] for key, texts in pieces.items()}


def fix_channel_counts(parsed: list[ParsedRow], column: str) -> None:
    """Reject records whose channel count differs from the rest (a model needs one input width).

    The expected count is the most common one among the good records (ties go to the
    earliest record), so one odd row is reported rather than every normal one.
    """
    widths = [u.record.values.shape[1] for u in parsed if u.record and u.record.values is not None]
    if not widths:
        return
    counts = Counter(widths)
    top = max(counts.values())
    expected = next(w for w in widths if counts[w] == top)
    for unit in parsed:
        rec = unit.record
        if rec is not None and rec.values is not None and rec.values.shape[1] != expected:
            found = rec.values.shape[1]
            unit.issues.append(
                (
                    unit.row.line,
                    (
                        column,
                        str(found),
                        f"expected {expected} channel(s) as most records have, found {found}",
                        "give every sequence the same channels",
                    ),
                )
            )
            unit.record = None
