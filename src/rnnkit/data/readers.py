"""Read sequence records from CSV, TSV, JSONL, Parquet and UEA/UCR ``.ts`` files.

The reader is strict and complete: every bad row is reported as one or more `Problem`s
(file:line, column, value, rule, fix) and kept out of `ReadResult.records`; nothing is padded,
guessed or silently skipped. Problems that make the whole file unusable (missing file, missing
column, no header, not UTF-8) raise `DataError` at once, listing every such problem.

Three input layouts are understood (``input=``):

* ``"text"``: one row per sequence; a text column is split into tokens.
* ``"numeric"``: one row per sequence; a cell holds a JSON list of steps, ``[1, 2, 3]`` (one
  channel) or ``[[1, 2], [3, 4]]`` (one list of channels per step).
* ``"long"``: one row per time step; an id column groups rows into sequences and a time column
  orders them; the remaining columns are the channels.

UEA/UCR ``.ts`` files are always numeric.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import itertools
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rnnkit.data.records import Record
from rnnkit.errors import ConfigError, DataError, Problem, shorten

FORMATS = ("csv", "tsv", "jsonl", "parquet", "ts")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".ts": "ts",
}
INPUTS = ("auto", "text", "numeric", "long")
TOKENIZERS = ("whitespace", "char")
RAW_LIMIT = 2000  # characters of raw row text kept per rejected row (for rejects.jsonl)
_POSITIONS_LISTED = 5  # positions named per problem; the count says how many there are in all
_F32_MAX = float(np.finfo(np.float32).max)

_MISSING = object()  # a JSONL key that is absent, as opposed to present with null

_QUOTE_FIX = (
    "enclose fields that contain the delimiter, quotes or line breaks in double quotes, "
    'and double every quote inside such a field ("")'
)
_UNLABELED = " (unlabeled data can only be read where labels are optional, e.g. for predict)"
_NUMBER_FIX = "write plain numbers only (e.g. 0.5, -1e-3); no text, booleans or empty entries"
_FINITE_FIX = "replace NaN/Inf/missing values with real numbers (impute them in the source data), or remove the row"


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


# --------------------------------------------------------------------------- internal types


@dataclass
class TableRow:
    """One data row of a table-like file, before interpretation."""

    line: int
    fields: dict[str, Any]
    raw: str
    # A structural problem (wrong field count, invalid JSON, ...) as (column, value, rule, fix).
    # When set, `fields` may be partial and the row is rejected.
    broken: tuple[str | None, str, str, str] | None = None


@dataclass
class Table:
    columns: list[str]
    rows: list[TableRow]
    header_line: int | None = None  # CSV/TSV only
    header_looks_like_data: bool = False
    delimiter: str | None = None  # CSV/TSV only: the delimiter the fields were split on


@dataclass
class _Opts:
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
    from_text: bool = True  # cells are strings (CSV/TSV) rather than typed JSON/Parquet values


# An issue found in a row: (column, value, rule, fix); turned into a Problem once the row's
# line and record id are known.
_Issue = tuple[str | None, str, str, str]


@dataclass
class ParsedRow:
    """A row (or long-format sequence) after interpretation: a record, or the issues that reject it."""

    row: TableRow
    record: Record | None
    record_id: str
    issues: list[tuple[int, _Issue]]


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


# --------------------------------------------------------------------------- public entry point


def read_records(
    path: str | os.PathLike,
    *,
    format: str = "auto",
    input: str = "auto",
    text_column: str = "text",
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str | None = None,
    time_column: str | None = None,
    feature_columns: list[str] | None = None,
    tokenize: str = "whitespace",
    lowercase: bool = False,
    require_label: bool = True,
    delimiter: str = "auto",
) -> ReadResult:
    """Read one data file into records, collecting a problem for every bad row.

    Args:
        path: the file. `Record.file` and `Problem.file` are ``str(path)`` as given.
        format: "auto" (by extension: .csv, .tsv, .jsonl/.ndjson, .parquet, .ts) or one of
            "csv", "tsv", "jsonl", "parquet", "ts".
        input: "text", "numeric", "long" or "auto". Auto picks: .ts -> numeric; else
            `text_column` present -> text; else `sequence_column` present -> numeric; else
            `id_column` and `time_column` given -> long.
        text_column: column holding the text (input "text").
        sequence_column: column holding a JSON list of steps (input "numeric"). JSONL and
            Parquet cells may also hold the list itself instead of a JSON string.
        label_column: column holding the class label; labels are kept as stripped strings
            (JSON ``3`` -> ``"3"``).
        id_column: sequence id (required for "long"); for "text"/"numeric" it names the
            records (``"<file name>:<id>"``) and must be unique.
        time_column: time/order of each step (required for "long"). Rows may come in any order;
            they are sorted by time, numerically when every time value of the sequence is a
            number, else as strings.
        feature_columns: channels for "long" (default: every column except id, time, label).
            Ignored for other inputs.
        tokenize: "whitespace" (``str.split()``) or "char" (every character is a token).
        lowercase: lowercase text before tokenizing.
        require_label: every row needs a label; when False a missing label becomes None.
        delimiter: CSV/TSV field delimiter: one character (or comma, semicolon, tab, pipe), or
            "auto": ``,`` for csv and tab for tsv, sniffed among ``, ; tab |`` when the header
            then reads as one column that holds one of them. Ignored for other formats.

    Returns:
        A `ReadResult` with the good records, the problems of the bad rows, the number of rows
        seen and the raw text of each bad row. Record ids are ``"<file name>:<line>"`` (long
        format and id column: ``"<file name>:<id>"``); values are float32 arrays (T, C).
        Blank lines (and ``#`` comments in .ts files) are not rows.

    Raises:
        DataError: the file as a whole is unusable: not found, unknown extension, not UTF-8,
            empty / no header / no data rows, a required column missing (with the columns found
            and the nearest match), duplicate header names, a malformed .ts header, timestamped
            .ts data, or pyarrow missing for Parquet.
        ConfigError: an option value is invalid (unknown format/input/tokenize, "long" without
            id_column/time_column, an input that the format cannot hold).
    """
    file = str(path)
    p = Path(path)
    _check_choice("data.format", format, ("auto", *FORMATS))
    _check_choice("data.input", input, INPUTS)
    _check_choice("data.tokenize", tokenize, TOKENIZERS)
    delimiter = resolve_delimiter(delimiter)
    if input == "long" and (not id_column or not time_column):
        raise ConfigError(
            "input 'long' needs both data.id_column and data.time_column "
            f"(got id_column={id_column!r}, time_column={time_column!r}); "
            "set them, e.g. --set data.id_column=series --set data.time_column=t"
        )

    problems: list[Problem] = []
    if not p.exists():
        problems.append(_not_found(file, p))
    elif p.is_dir():
        problems.append(Problem(file, None, None, file, "is a directory, not a data file", "give a file's path"))
    fmt = format
    if format == "auto":
        fmt = EXTENSIONS.get(p.suffix.lower(), "")
        if not fmt:
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    p.suffix or "(no extension)",
                    "unknown file extension; accepted formats: "
                    + ", ".join(f"{ext} ({name})" for ext, name in EXTENSIONS.items()),
                    "rename the file to one of these extensions, or set --set data.format=csv (or tsv, "
                    "jsonl, parquet, ts)",
                )
            )
    if problems:
        raise DataError(problems, header=f"cannot read {file}")

    if fmt == "ts":
        if input not in ("auto", "numeric"):
            raise ConfigError(f"data.input={input!r} is not possible for {file}: .ts files hold numeric series")
        return _read_ts(p, file, require_label)

    opts = _Opts(
        file=file,
        base=os.path.basename(file),
        text_column=text_column,
        sequence_column=sequence_column,
        label_column=label_column,
        id_column=id_column,
        time_column=time_column,
        feature_columns=list(feature_columns) if feature_columns is not None else None,
        tokenize=tokenize,
        lowercase=lowercase,
        require_label=require_label,
        from_text=fmt in ("csv", "tsv"),
    )
    table = load_table(p, file, fmt, delimiter=delimiter)

    mode = _resolve_input(input, table, opts)
    _check_columns(mode, table, opts)
    opts.has_label = label_column in table.columns
    if mode == "long":
        return _interpret_long(table, opts)
    return _interpret_rows(table, opts, mode)


# --------------------------------------------------------------------------- options & columns


def _fail(file: str, rule: str, fix: str, *, line: int | None = None, value: str = "") -> NoReturn:
    """Raise a DataError for one problem that makes the whole file unusable."""
    raise DataError([Problem(file, line, None, value, rule, fix)], header=f"cannot read {file}")


def _check_choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        near = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(allowed)}{hint}")


def _not_found(file: str, p: Path) -> Problem:
    fix = "check the path (it is relative to the current directory)"
    parent = p.parent if str(p.parent) else Path(".")
    with contextlib.suppress(OSError):
        if parent.is_dir():
            near = difflib.get_close_matches(p.name, [c.name for c in parent.iterdir()], n=1)
            if near:
                fix = f"did you mean {str(parent / near[0])!r}? {fix}"
    return Problem(file, None, None, file, "file not found", fix)


def _nearest(name: str, columns: list[str]) -> str | None:
    for c in columns:  # a case-only difference is the most likely typo
        if c.lower() == name.lower():
            return c
    near = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return near[0] if near else None


def _missing_column(opts: _Opts, table: Table, name: str, key: str, extra_fix: str = "") -> Problem:
    found = ", ".join(repr(c) for c in table.columns) or "(none)"
    near = _nearest(name, table.columns)
    if near is not None:
        fix = f"did you mean {near!r}? set --set data.{key}={near}, or rename the column"
    else:
        fix = f"set --set data.{key}=<one of the columns found>, or add the column"
    return Problem(
        opts.file,
        None,
        name,
        name,
        f"column not found; columns found: {shorten(found, 300)}",
        fix + extra_fix,
    )


def _resolve_input(input: str, table: Table, opts: _Opts) -> str:
    if input != "auto":
        return input
    if opts.text_column in table.columns:
        return "text"
    if opts.sequence_column in table.columns:
        return "numeric"
    if opts.id_column and opts.time_column:
        return "long"
    if _delimiter_problem(opts.file, table):  # every other complaint would follow from it
        raise DataError(_delimiter_problem(opts.file, table), header=f"cannot read {opts.file}")
    found = ", ".join(repr(c) for c in table.columns) or "(none)"
    problems = [
        Problem(
            opts.file,
            None,
            None,
            shorten(found, 300),
            f"cannot tell the input layout: no text column {opts.text_column!r}, no sequence column "
            f"{opts.sequence_column!r}, and no id/time columns given; columns found: {shorten(found, 300)}",
            "name the column that holds the data: --set data.text_column=<col> (text), "
            "--set data.sequence_column=<col> (JSON list of numbers per row), or "
            "--set data.id_column=<col> --set data.time_column=<col> (one row per time step)",
        )
    ]
    # a near miss ("Text" for "text") is the likeliest cause: name it as a missing column
    for name, key in ((opts.text_column, "text_column"), (opts.sequence_column, "sequence_column")):
        if _nearest(name, table.columns) is not None:
            problems.append(_missing_column(opts, table, name, key))
    if opts.require_label and opts.label_column not in table.columns:
        problems.append(_missing_column(opts, table, opts.label_column, "label_column"))
    problems += _header_problem(opts.file, table)
    raise DataError(problems, header=f"cannot read {opts.file}")


def _delimiter_problem(file: str, table: Table) -> list[Problem]:
    """A header that reads as one column holding another delimiter: the file was split on the wrong one."""
    if table.delimiter is None or len(table.columns) != 1:
        return []
    others = [d for d in SNIFFED if d != table.delimiter and d in table.columns[0]]
    if not others:
        return []
    named = " or ".join(delimiter_name(d) for d in others)
    return [
        Problem(
            file,
            table.header_line,
            None,
            shorten(table.columns[0]),
            f"the header reads as one column when split on {delimiter_name(table.delimiter)}; "
            f"its fields look separated by {named}",
            f"set the delimiter: --set data.delimiter={_delimiter_setting(others[0])} "
            "(or data.delimiter=auto to detect it)",
        )
    ]


def _header_problem(file: str, table: Table) -> list[Problem]:
    if not table.header_looks_like_data:
        return []
    return [
        Problem(
            file,
            table.header_line,
            None,
            shorten(", ".join(table.columns)),
            "the first line must be a header naming the columns, and this one looks like data",
            "add a header line such as `text,label` (or `sequence,label`) at the top of the file",
        )
    ]


def _check_columns(mode: str, table: Table, opts: _Opts) -> None:
    """Raise one DataError listing every required column that the file lacks."""
    cols = set(table.columns)
    missing: list[Problem] = []
    need: list[tuple[str, str]] = []
    if mode == "text":
        need.append((opts.text_column, "text_column"))
    elif mode == "numeric":
        need.append((opts.sequence_column, "sequence_column"))
    else:
        need += [(opts.id_column, "id_column"), (opts.time_column, "time_column")]  # type: ignore[list-item]
        for c in opts.feature_columns or []:
            need.append((c, "feature_columns"))
    if mode != "long" and opts.id_column:
        need.append((opts.id_column, "id_column"))
    for name, key in need:
        if name not in cols:
            missing.append(_missing_column(opts, table, name, key))
    if opts.require_label and opts.label_column not in cols:
        missing.append(
            _missing_column(
                opts,
                table,
                opts.label_column,
                "label_column",
                _UNLABELED,
            )
        )
    if mode == "long" and not missing:
        special = {opts.id_column, opts.time_column, opts.label_column}
        if opts.feature_columns is not None:
            clash = [c for c in opts.feature_columns if c in special]
            if clash:
                raise ConfigError(
                    f"data.feature_columns {clash} overlap the id/time/label columns; list only the channels"
                )
        features = opts.feature_columns or [c for c in table.columns if c not in special]
        if not features:
            missing.append(
                Problem(
                    opts.file,
                    None,
                    None,
                    ", ".join(table.columns),
                    "no feature columns left besides the id, time and label columns",
                    "add at least one value column, or name them with --set data.feature_columns=[...]",
                )
            )
    if missing:
        wrong_delimiter = _delimiter_problem(opts.file, table)  # the missing columns follow from it
        problems = wrong_delimiter or missing + _header_problem(opts.file, table)
        raise DataError(problems, header=f"cannot read {opts.file}")


# --------------------------------------------------------------------------- loading files


def read_text_file(p: Path, file: str) -> str:
    try:
        data = p.read_bytes()
    except OSError as e:
        _fail(file, f"cannot read the file: {e.strerror or e}", "check the file's permissions", value=file)
    try:
        # utf-8-sig: a byte-order mark written by some editors is not part of the first column name
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        bad = data[e.start : e.start + 1]
        _fail(
            file,
            f"the file must be UTF-8; byte 0x{bad.hex()} at byte offset {e.start} is not valid UTF-8",
            "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
            line=line,
            value=repr(data[max(0, e.start - 20) : e.start + 20]),
        )


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    # csv's default field limit (128 KiB) is smaller than a long numeric sequence stored in one
    # cell; lift it while reading and restore the process-wide setting afterwards.
    old = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _looks_numeric(cells: list[str]) -> bool:
    def num(c: str) -> bool:
        try:
            float(c)
        except ValueError:
            return False
        return True

    filled = [c for c in cells if c.strip()]
    return bool(filled) and all(num(c) or c.lstrip().startswith("[") for c in filled)


DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
SNIFFED = ",;\t|"  # the delimiters `delimiter="auto"` tries when the header reads as one column


def delimiter_name(delimiter: str) -> str:
    """How a delimiter is shown in messages: 'tab' for a tab, else the character quoted."""
    return "tab" if delimiter == "\t" else repr(delimiter)


def _delimiter_setting(delimiter: str) -> str:
    """How to write a delimiter in `--set data.delimiter=...` (names where YAML would misread it)."""
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, delimiter)


def resolve_delimiter(delimiter: str | None) -> str:
    """A `data.delimiter` value -> "auto" or one character (names: comma, semicolon, tab, pipe).

    Raises:
        ConfigError: not "auto", a name, or a single character other than a quote or line break.
    """
    if delimiter is None or delimiter == "auto":
        return "auto"
    if isinstance(delimiter, str):
        d = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if len(d) == 1 and d not in "\"\r\n":
            return d
    raise ConfigError(
        f"data.delimiter={delimiter!r} must be auto, one character, or comma, semicolon, tab or pipe; "
        "write `,`, `|` and tab by name on the command line (--set data.delimiter=pipe): YAML reads them otherwise"
    )


def load_table(p: Path, file: str, fmt: str, *, delimiter: str = "auto") -> Table:
    """Load a CSV, TSV, JSONL or Parquet file (`fmt` already resolved) into a `Table` of raw rows.

    `delimiter` (CSV/TSV only): "auto" uses ``,`` for csv and tab for tsv, and when the header then
    reads as one column that holds one of ``, ; tab |``, the delimiter `csv.Sniffer` finds among them.
    """
    if fmt in ("csv", "tsv"):
        return load_delimited(p, file, resolve_delimiter(delimiter), fmt)
    if fmt == "jsonl":
        return load_jsonl(p, file)
    return load_parquet(p, file)


def _first_record(lines: list[str], delimiter: str) -> list[str] | None:
    """The header's cells when split on `delimiter` (None when it is not valid CSV)."""
    with _csv_field_limit():
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        try:
            for cells in reader:
                if any(c.strip() for c in cells):
                    return cells
        except csv.Error:
            return None
    return None


def _sniff_delimiter(file: str, lines: list[str], default: str) -> str:
    """`default`, unless the header reads as one column holding other delimiters: then the sniffed one."""
    head = _first_record(lines, default)
    if head is None or len(head) != 1:
        return default
    candidates = [d for d in SNIFFED if d != default and d in head[0]]
    if not candidates:
        return default  # a real one-column file
    sample = "".join(lines[:50])[:65536]  # enough rows to tell; a cell of a long sequence can be huge
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(candidates)).delimiter
    except csv.Error:
        sniffed = candidates[0] if len(candidates) == 1 else ""
    cells = _first_record(lines, sniffed) if sniffed in candidates else None
    if cells is None or len(cells) < 2:
        named = " or ".join(delimiter_name(d) for d in candidates)
        _fail(
            file,
            f"the header reads as one column when split on {delimiter_name(default)}, and it holds {named}; "
            "cannot tell which one separates the fields",
            f"set the delimiter, e.g. --set data.delimiter={_delimiter_setting(candidates[0])}",
            line=next((i for i, text in enumerate(lines, start=1) if text.strip()), 1),
            value=shorten(head[0]),
        )
    return sniffed


def load_delimited(p: Path, file: str, delimiter: str, fmt: str) -> Table:
    """Read a delimited file; `delimiter` is one character or "auto" (see `load_table`)."""
    text = read_text_file(p, file)
    # newline="" keeps line ends as they are, so csv sees quoted line breaks and line_num counts
    # physical lines; the list lets us recover each row's raw text for rejects.jsonl.
    lines = io.StringIO(text, newline="").readlines()
    if delimiter == "auto":
        delimiter = _sniff_delimiter(file, lines, "," if fmt == "csv" else "\t")
    header: list[str] | None = None
    header_line: int | None = None
    rows: list[TableRow] = []
    with _csv_field_limit():
        # strict: an unclosed or stray quote is an error instead of silently swallowing lines
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        prev = 0
        while True:
            try:
                cells = next(reader)
                error = None
            except StopIteration:
                break
            except csv.Error as e:
                cells, error = [], e
            start, end = prev + 1, reader.line_num
            prev = end
            raw = "".join(lines[start - 1 : end])
            if error is None and not raw.strip():
                continue  # blank line: not a row
            shown = shorten(raw.rstrip("\r\n"))
            if error is not None:
                if header is None:
                    _fail(
                        file,
                        f"the header is not valid {fmt.upper()}: {error}",
                        _QUOTE_FIX,
                        line=start,
                        value=shown,
                    )
                broken = (None, shown, f"malformed {fmt.upper()} quoting: {error}", _QUOTE_FIX)
                rows.append(TableRow(start, {}, raw, broken))
                continue
            if header is None:
                header = [c.strip() for c in cells]
                header_line = start
                dup = [c for c, n in Counter(header).items() if n > 1]
                if dup:
                    _fail(
                        file,
                        "column names in the header must be unique",
                        "rename the duplicate columns",
                        line=start,
                        value=shorten(", ".join(dup)),
                    )
                continue
            broken = None
            if len(cells) != len(header):
                sep = delimiter_name(delimiter)
                broken = (
                    None,
                    shown,
                    f"expected {len(header)} fields like the header (line {header_line}), found {len(cells)}",
                    f"make the row have exactly {len(header)} fields separated by {sep}; {_QUOTE_FIX}",
                )
            rows.append(TableRow(start, dict(zip(header, cells, strict=False)), raw, broken))
    if header is None:
        _fail(file, "the file is empty: no header line", "add a header line and data rows")
    table = Table(header, rows, header_line, _looks_numeric(header), delimiter)
    if not rows:
        raise DataError(
            [Problem(file, None, None, shorten(", ".join(header)), "no data rows after the header", "add rows")]
            + _header_problem(file, table),
            header=f"cannot read {file}",
        )
    return table


def load_jsonl(p: Path, file: str) -> Table:
    text = read_text_file(p, file)
    rows: list[TableRow] = []
    columns: dict[str, None] = {}  # ordered set: keys in order of first appearance
    for number, line in enumerate(text.split("\n"), start=1):
        raw = line.rstrip("\r")
        if not raw.strip():
            continue
        obj, error = _json_loads(raw)
        if error is not None:
            rows.append(
                TableRow(
                    number,
                    {},
                    raw,
                    (
                        None,
                        shorten(raw),
                        f"invalid JSON: {error}",
                        'each line must be one complete JSON object, e.g. {"text": "...", "label": "a"}',
                    ),
                )
            )
            continue
        if not isinstance(obj, dict):
            rule = f"expected a JSON object {{...}}, found {_json_type(obj)}"
            rows.append(TableRow(number, {}, raw, (None, shorten(raw), rule, "write one JSON object per line")))
            continue
        columns.update(dict.fromkeys(obj))
        rows.append(TableRow(number, obj, raw))
    if not rows:
        _fail(file, "the file is empty: no JSON lines", "add one JSON object per line")
    return Table(list(columns), rows)


def load_parquet(p: Path, file: str) -> Table:
    try:
        import pyarrow.parquet as pq  # lazy: pyarrow is an optional dependency
    except ImportError as e:
        raise DataError(
            [
                Problem(
                    file,
                    None,
                    None,
                    file,
                    "reading Parquet files needs the pyarrow package, which is not installed",
                    "pip install 'rnnkit[parquet]'",
                )
            ],
            header=f"cannot read {file}",
        ) from e
    try:
        table = pq.read_table(p)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        _fail(
            file,
            f"not a readable Parquet file: {shorten(e, 200)}",
            "check that the file is Parquet",
            value=file,
        )
    columns = list(table.column_names)
    rows = [
        TableRow(i, obj, json.dumps(obj, default=str, ensure_ascii=False))
        for i, obj in enumerate(table.to_pylist(), start=1)
    ]
    if not rows:
        _fail(file, "the file has no rows", "add data rows")
    return Table(columns, rows)


# --------------------------------------------------------------------------- cell parsing


def _json_loads(text: str) -> tuple[Any, str | None]:
    """``json.loads`` with every way it can fail turned into a message: (value, None) or (None, why).

    Besides syntax errors (JSONDecodeError), hostile input makes json raise RecursionError (lists
    nested a few thousand deep) and ValueError (an integer of more than 4300 digits).
    """
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"{e.msg} at character {e.colno}"
    except RecursionError:
        return None, "values nested too deeply"
    except ValueError as e:  # int digit limit (sys.get_int_max_str_digits)
        return None, shorten(str(e).split(";")[0], 120)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _absent(column: str, v: Any, what: str, fix: str) -> _Issue:
    if v is _MISSING:
        return (column, "", f"missing key {column!r}", f"add the key {column!r} to every JSON object")
    return (column, "" if v is None else shorten(v), f"missing {what}", fix)


def _positions(found: list[tuple[int, int, Any]], channels: int) -> str:
    def one(step: int, ch: int) -> str:
        return f"step {step}" if channels == 1 else f"step {step} channel {ch}"

    listed = ", ".join(one(s, c) for s, c, _ in found[:_POSITIONS_LISTED])
    more = f" and {len(found) - _POSITIONS_LISTED} more" if len(found) > _POSITIONS_LISTED else ""
    return f"at {listed}{more} (0-based)"


def _check_values(
    column: str,
    cells: list[list[Any]],
    channels: int,
    *,
    missing_marker: str | None = None,
    from_text: bool = False,
) -> tuple[np.ndarray | None, list[_Issue]]:
    """Check a (T, C) grid of raw values and convert it to float32.

    Each kind of bad value gives one issue naming how many there are and where.
    """
    out: np.ndarray | None = None
    # Fast path for the common all-numbers case: the type scan runs in C (map/set), and bools,
    # which numpy would silently turn into 0/1, are excluded by checking exact types.
    if not from_text and set(map(type, itertools.chain.from_iterable(cells))) <= {int, float}:
        with contextlib.suppress(OverflowError):  # an integer too large for a float: slow path
            out = np.array(cells, dtype=np.float64).reshape(len(cells), channels)
    elif from_text:
        # numpy parses numeric strings itself; anything else (text, "", "?") raises -> slow path
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            out = np.array(cells, dtype=np.float64).reshape(len(cells), channels)
    if out is None:
        out, issues = _scan_values(column, cells, channels, missing_marker=missing_marker, from_text=from_text)
        if issues:
            return None, issues
    return _range_check(column, out, channels)


def _scan_values(
    column: str,
    cells: list[list[Any]],
    channels: int,
    *,
    missing_marker: str | None,
    from_text: bool,
) -> tuple[np.ndarray, list[_Issue]]:
    """Convert value by value, collecting non-numeric and missing entries."""
    bad_type: list[tuple[int, int, Any]] = []
    missing: list[tuple[int, int, Any]] = []
    out = np.empty((len(cells), channels), dtype=np.float64)
    for t, step in enumerate(cells):
        for c, x in enumerate(step):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                try:
                    out[t, c] = x
                except OverflowError:  # an integer too large for a float
                    out[t, c] = math.inf
            elif from_text and isinstance(x, str):
                s = x.strip()
                if not s or s == missing_marker:
                    missing.append((t, c, x))
                    continue
                try:
                    out[t, c] = float(s)
                except ValueError:
                    bad_type.append((t, c, x))
            elif x is None:
                missing.append((t, c, x))
            else:
                bad_type.append((t, c, x))
    issues: list[_Issue] = []
    if bad_type:
        first = bad_type[0][2]
        issues.append(
            (
                column,
                shorten(json.dumps(first) if not isinstance(first, str) or not from_text else first),
                f"{len(bad_type)} non-numeric value(s) {_positions(bad_type, channels)}",
                _NUMBER_FIX,
            )
        )
    if missing:
        marker = f" ({missing_marker!r} marks a missing value)" if missing_marker else ""
        issues.append(
            (
                column,
                shorten(missing[0][2] if missing[0][2] is not None else "null"),
                f"{len(missing)} missing value(s){marker} {_positions(missing, channels)}",
                _FINITE_FIX,
            )
        )
    return out, issues


def _range_check(column: str, out: np.ndarray, channels: int) -> tuple[np.ndarray | None, list[_Issue]]:
    """Reject NaN/Inf and values float32 cannot hold; return the float32 array otherwise."""
    issues: list[_Issue] = []
    finite = np.isfinite(out)
    if not finite.all():
        where = [(int(t), int(c), out[t, c]) for t, c in np.argwhere(~finite)]
        rule = f"{len(where)} NaN/Inf value(s) {_positions(where, channels)}"
        issues.append((column, str(where[0][2]), rule, _FINITE_FIX))
        return None, issues
    big = np.abs(out) > _F32_MAX
    if big.any():
        where = [(int(t), int(c), out[t, c]) for t, c in np.argwhere(big)]
        issues.append(
            (
                column,
                str(where[0][2]),
                f"{len(where)} value(s) beyond float32 range (|x| > 3.4e38) {_positions(where, channels)}",
                "rescale the values (e.g. standardize them) before training",
            )
        )
        return None, issues
    return out.astype(np.float32), []


def _parse_steps(column: str, obj: Any) -> tuple[np.ndarray | None, list[_Issue]]:
    """Turn a JSON list of steps into a float32 (T, C) array, or issues."""
    if not isinstance(obj, list):
        return None, [
            (
                column,
                shorten(json.dumps(obj, default=str)),
                f"expected a JSON list of steps, found {_json_type(obj)}",
                "write [1, 2, 3] for one channel or [[1, 2], [3, 4]] for one list of channels per step",
            )
        ]
    if not obj:
        return None, [(column, "[]", "empty sequence: zero steps", "give the row at least one step, or remove it")]
    is_list = [isinstance(s, list) for s in obj]
    if all(is_list):
        steps = obj
    elif not any(is_list):
        steps = [[s] for s in obj]
    else:
        t = is_list.index(not is_list[0])
        return None, [
            (
                column,
                shorten(json.dumps(obj[t], default=str)),
                f"steps mix numbers and lists (step 0: {_json_type(obj[0])}, step {t}: {_json_type(obj[t])})",
                "use numbers for one channel, or a list of channels for every step",
            )
        ]
    widths = [len(s) for s in steps]
    if widths[0] == 0 or len(set(widths)) > 1:
        t = next(i for i, w in enumerate(widths) if w != widths[0] or w == 0)
        rule = (
            f"step {t} has no channels"
            if widths[t] == 0
            else f"ragged channels: step 0 has {widths[0]} channel(s), step {t} has {widths[t]}"
        )
        fix = "give every step the same number of channels"
        return None, [(column, shorten(json.dumps(steps[t], default=str)), rule, fix)]
    return _check_values(column, steps, widths[0])


def _label_of(fields: dict[str, Any], opts: _Opts) -> tuple[str | None, _Issue | None]:
    if not opts.has_label:
        return None, None
    col = opts.label_column
    v = fields.get(col, _MISSING)
    if v is _MISSING or _is_blank(v):
        if not opts.require_label:
            return None, None
        return None, _absent(col, v, "label", "give the row a label, or remove the row")
    if isinstance(v, (list, dict)):
        return None, (
            col,
            shorten(json.dumps(v, default=str)),
            f"a label must be a single value, found {_json_type(v)}",
            "write one label per row",
        )
    return str(v).strip(), None


def _tokens_of(fields: dict[str, Any], opts: _Opts) -> tuple[list[str] | None, _Issue | None]:
    col = opts.text_column
    v = fields.get(col, _MISSING)
    if v is _MISSING:
        return None, _absent(col, v, "text", "")
    if v is None:
        return None, (col, "null", "missing text", "give the row some text, or remove it")
    if not isinstance(v, str):
        return None, (
            col,
            shorten(json.dumps(v, default=str)),
            f"expected a text string, found {_json_type(v)}",
            "write the text as one string",
        )
    text = v.lower() if opts.lowercase else v
    tokens = text.split() if opts.tokenize == "whitespace" else list(text)
    if not tokens:
        return None, (
            col,
            shorten(v),
            "empty sequence: the text has zero tokens",
            "give the row text, or remove it",
        )
    return tokens, None


def _values_of(fields: dict[str, Any], opts: _Opts) -> tuple[np.ndarray | None, list[_Issue]]:
    col = opts.sequence_column
    v = fields.get(col, _MISSING)
    if v is _MISSING or _is_blank(v):
        fix = "write a JSON list of steps, e.g. [1, 2, 3], or remove the row"
        return None, [_absent(col, v, "sequence (empty cell)", fix)]
    if isinstance(v, str):
        text = v
        v, error = _json_loads(text)
        if error is not None:
            return None, [
                (
                    col,
                    shorten(text),
                    f"invalid JSON in the cell: {error}",
                    "write the sequence as a JSON list, e.g. [1, 2, 3] or [[1, 2], [3, 4]]",
                )
            ]
    return _parse_steps(col, v)


def _fix_channel_counts(parsed: list[ParsedRow], column: str) -> None:
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


def _interpret_rows(table: Table, opts: _Opts, mode: str) -> ReadResult:
    """One row -> one record (text or numeric input)."""
    parsed: list[ParsedRow] = []
    id_lines: dict[str, int] = {}
    for row in table.rows:
        rid = f"{opts.base}:{row.line}"
        if row.broken is not None:
            parsed.append(ParsedRow(row, None, rid, [(row.line, row.broken)]))
            continue
        issues: list[_Issue] = []
        if opts.id_column:
            v = row.fields.get(opts.id_column, _MISSING)
            if v is _MISSING or _is_blank(v):
                issues.append(_absent(opts.id_column, v, "id", "give every row a unique id"))
            else:
                sid = str(v).strip()
                if sid in id_lines:
                    # the duplicate keeps its line-based id so that it never shares an id with
                    # the first (good) row
                    issues.append(
                        (
                            opts.id_column,
                            shorten(sid),
                            f"duplicate id (first used on line {id_lines[sid]})",
                            "give every row a unique id",
                        )
                    )
                else:
                    id_lines[sid] = row.line
                    rid = f"{opts.base}:{sid}"
        tokens = values = None
        if mode == "text":
            tokens, issue = _tokens_of(row.fields, opts)
            issues += [issue] if issue else []
        else:
            values, value_issues = _values_of(row.fields, opts)
            issues += value_issues
        label, issue = _label_of(row.fields, opts)
        issues += [issue] if issue else []
        rec = None if issues else Record(rid, opts.file, row.line, tokens=tokens, values=values, label=label)
        if rec is not None and label is not None and str(row.fields[opts.label_column]) != label:
            rec.extra["raw_label"] = str(row.fields[opts.label_column])  # spaces stripped: the labels check names it
        parsed.append(ParsedRow(row, rec, rid, [(row.line, i) for i in issues]))
    if mode == "numeric":
        _fix_channel_counts(parsed, opts.sequence_column)
    return collect_rows(opts.file, parsed)


def parse_scalar(column: str, v: Any, from_text: bool) -> tuple[float | None, _Issue | None]:
    """One long-format cell -> a finite float32-representable number, or an issue."""
    if v is _MISSING or v is None or (isinstance(v, str) and not v.strip()):
        return None, _absent(column, v, "value", _FINITE_FIX)
    if isinstance(v, bool) or not (isinstance(v, (int, float)) or (from_text and isinstance(v, str))):
        return None, (
            column,
            shorten(json.dumps(v, default=str)),
            f"non-numeric value: expected a number, found {_json_type(v)}",
            _NUMBER_FIX,
        )
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except ValueError:
        return None, (column, shorten(v), "non-numeric value", _NUMBER_FIX)
    except OverflowError:  # an integer too large for a float
        x = math.inf
    if not math.isfinite(x):
        return None, (column, shorten(v), "NaN/Inf value", _FINITE_FIX)
    if abs(x) > _F32_MAX:
        return None, (
            column,
            shorten(v),
            "value beyond the float32 range (|x| > 3.4e38)",
            "rescale the values (e.g. standardize them) before training",
        )
    return x, None


def _plain_label(fields: dict[str, Any], opts: _Opts) -> str | None:
    v = fields.get(opts.label_column, _MISSING)
    return None if v is _MISSING or _is_blank(v) else str(v).strip()


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


def _interpret_long(table: Table, opts: _Opts) -> ReadResult:
    """Rows grouped by id and ordered by time -> one record per sequence."""
    assert opts.id_column and opts.time_column
    special = {opts.id_column, opts.time_column, opts.label_column}
    features = opts.feature_columns or [c for c in table.columns if c not in special]
    groups: dict[str, list[TableRow]] = {}
    parsed: list[ParsedRow] = []
    for row in table.rows:
        v = row.fields.get(opts.id_column, _MISSING)
        if v is _MISSING or _is_blank(v):
            # A row without an id cannot join a sequence; it is a bad row of its own.
            issue = row.broken or _absent(opts.id_column, v, "sequence id", "give the row its sequence id")
            parsed.append(ParsedRow(row, None, f"{opts.base}:{row.line}", [(row.line, issue)]))
            continue
        # Broken rows whose id field is readable join their sequence, so that the sequence is
        # rejected instead of being built with a step missing.
        groups.setdefault(str(v).strip(), []).append(row)

    for sid, rows in groups.items():
        rid = f"{opts.base}:{sid}"
        # A sequence is one unit: keyed by its first line, raw text = all of its rows.
        raw = "".join(r.raw if r.raw.endswith(("\n", "\r")) else r.raw + "\n" for r in rows)
        unit = TableRow(rows[0].line, {}, raw)
        issues = _long_sequence_issues(sid, rows, features, opts)
        if issues:
            parsed.append(ParsedRow(unit, None, rid, sorted(issues, key=lambda i: i[0])))
            continue
        keys = _time_key([r.fields[opts.time_column] for r in rows])
        order = sorted(range(len(rows)), key=lambda i: keys[i])
        values = np.asarray(
            [[float(parse_scalar(c, rows[i].fields[c], opts.from_text)[0]) for c in features] for i in order],  # type: ignore[arg-type]
            dtype=np.float32,
        ).reshape(len(rows), len(features))
        # constant within the sequence (checked above); None only when require_label is False
        label = _plain_label(rows[0].fields, opts)
        rec = Record(rid, opts.file, rows[0].line, values=values, label=label, extra={"sequence_id": sid})
        parsed.append(ParsedRow(unit, rec, rid, []))
    parsed.sort(key=lambda u: u.row.line)  # file order of each sequence's first row
    return collect_rows(opts.file, parsed)


def _long_sequence_issues(sid: str, rows: list[TableRow], features: list[str], opts: _Opts) -> list[tuple[int, _Issue]]:
    """Every problem of one long-format sequence, each with the line of the row it is on."""
    assert opts.time_column
    issues: list[tuple[int, _Issue]] = []
    good = [r for r in rows if r.broken is None]
    issues += [(r.line, r.broken) for r in rows if r.broken is not None]
    times_ok = True
    for row in good:
        t = row.fields.get(opts.time_column, _MISSING)
        if t is _MISSING or _is_blank(t):
            issues.append((row.line, _absent(opts.time_column, t, "time value", "give every row its time")))
            times_ok = False
        for col in features:
            _, issue = parse_scalar(col, row.fields.get(col, _MISSING), opts.from_text)
            if issue:
                issues.append((row.line, issue))
    if times_ok and good:
        times = [r.fields[opts.time_column] for r in good]
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
        labels = [(row.line, _plain_label(row.fields, opts)) for row in good]
        first_line, first = labels[0]
        differ = [(line, lab) for line, lab in labels if lab != first]
        if differ:
            listed = ", ".join(f"{lab!r} on line {line}" for line, lab in differ[:_POSITIONS_LISTED])
            more = f" and {len(differ) - _POSITIONS_LISTED} more" if len(differ) > _POSITIONS_LISTED else ""
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


# --------------------------------------------------------------------------- UEA/UCR .ts


@dataclass
class _TsHeader:
    data_line: int
    labeled: bool = False  # cases end with ":<label>"
    target: bool = False  # the label is a regression target (@targetLabel true)
    class_labels: list[str] | None = None  # labels declared by @classLabel true a b c
    dimensions: int | None = None
    series_length: int | None = None  # only enforced when @equalLength true


def _ts_bool(file: str, line: int, key: str, args: list[str]) -> bool:
    if args and args[0].lower() in ("true", "false"):
        return args[0].lower() == "true"
    _fail(
        file,
        f"@{key} must be followed by true or false",
        f"write `@{key} true` or `@{key} false`",
        line=line,
        value=" ".join(args),
    )


def _ts_int(file: str, line: int, key: str, args: list[str]) -> int:
    # isascii: str.isdigit() also accepts '²', which int() refuses; the length cap keeps int() within
    # Python's digit limit
    if args and args[0].isascii() and args[0].isdigit() and len(args[0]) < 19 and int(args[0]) > 0:
        return int(args[0])
    _fail(
        file,
        f"@{key} must be followed by a positive integer",
        f"write e.g. `@{key} 3`",
        line=line,
        value=" ".join(args),
    )


_TS_TIMESTAMP_FIX = "convert the file to a long-format CSV with id, time and value columns"


def _ts_header(file: str, lines: list[str]) -> _TsHeader:
    """Parse the header lines up to @data; keys are case-insensitive, unknown keys are ignored."""
    head = _TsHeader(data_line=0)
    equal_length = False
    for number, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not s.startswith("@"):
            _fail(
                file,
                "a line before @data must be a header line starting with @ or a # comment",
                "add the @data line before the first case",
                line=number,
                value=shorten(s),
            )
        key, *args = s[1:].split() or [""]
        low = key.lower()
        if low == "data":
            head.data_line = number
            break
        if low == "classlabel":
            head.labeled = _ts_bool(file, number, key, args) or head.labeled
            head.class_labels = args[1:] if head.labeled and len(args) > 1 else None
        elif low == "targetlabel":
            head.target = _ts_bool(file, number, key, args)
            head.labeled = head.labeled or head.target
        elif low == "timestamps" and _ts_bool(file, number, key, args):
            rule = "timestamped .ts data (@timeStamps true, values written as (t,v)) is not supported yet"
            _fail(file, rule, _TS_TIMESTAMP_FIX, line=number, value=s)
        elif low == "dimensions":
            head.dimensions = _ts_int(file, number, key, args)
        elif low == "univariate" and _ts_bool(file, number, key, args):
            head.dimensions = 1
        elif low == "equallength":
            equal_length = _ts_bool(file, number, key, args)
        elif low == "serieslength":
            head.series_length = _ts_int(file, number, key, args)
        # other keys (@problemName, @missing, ...) carry nothing the reader needs: "?" is
        # always treated as a missing value, which is a row problem
    if not head.data_line:
        _fail(file, "no @data line: this is not a UEA/UCR .ts file", "add the header and an @data line")
    if not equal_length:
        head.series_length = None
    return head


def _ts_case(s: str, head: _TsHeader) -> tuple[np.ndarray | None, str | None, list[_Issue]]:
    """One case line after @data -> (values (T, C), label, issues)."""
    parts = s.split(":")
    issues: list[_Issue] = []
    label = None
    if head.labeled:
        if len(parts) < 2:
            rule = "expected channels followed by a label, separated by ':'"
            return None, None, [("label", shorten(s), rule, "end the case with :<label>")]
        label = parts.pop().strip()
        if not label or label == "?":
            issues.append(("label", label, "missing label", "give the case a label"))
        elif head.class_labels is not None and label not in head.class_labels:
            declared = shorten(" ".join(head.class_labels), 200)
            fix = "correct the label, or add it to the @classLabel header line"
            issues.append(("label", shorten(label), f"label not declared in @classLabel (declared: {declared})", fix))
        elif head.target and not _is_finite_number(label):
            issues.append(("label", shorten(label), "a @targetLabel value must be a finite number", "write a number"))
    channels = [c.split(",") for c in parts]
    if head.dimensions is not None and len(channels) != head.dimensions:
        rule = f"expected {head.dimensions} channel(s) as declared in @dimensions, found {len(channels)}"
        issues.append((None, str(len(channels)), rule, "give every case all channels, separated by ':'"))
    lengths = [len(c) if "".join(c).strip() else 0 for c in channels]
    if 0 in lengths:
        j = lengths.index(0)
        fix = "give every channel its values"
        issues.append((f"channel {j}", "", "empty sequence: the channel has zero values", fix))
        return None, label, issues
    if len(set(lengths)) > 1:
        j = next(i for i, n in enumerate(lengths) if n != lengths[0])
        rule = f"ragged channels: channel 0 has {lengths[0]} values, channel {j} has {lengths[j]}"
        issues.append((f"channel {j}", str(lengths[j]), rule, "give every channel of a case the same number of values"))
        return None, label, issues
    if head.series_length is not None and lengths[0] != head.series_length:
        rule = f"expected {head.series_length} values per channel (@seriesLength), found {lengths[0]}"
        issues.append((None, str(lengths[0]), rule, "give every case the declared length, or set @equalLength false"))
    columns: list[np.ndarray] = []
    for j, chan in enumerate(channels):
        arr, chan_issues = _check_values(f"channel {j}", [[x] for x in chan], 1, missing_marker="?", from_text=True)
        issues += chan_issues
        if arr is not None:
            columns.append(arr[:, 0])
    if issues:
        return None, label, issues
    return np.stack(columns, axis=1), label, []  # .ts stores channel by channel; records are (T, C)


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _read_ts(p: Path, file: str, require_label: bool) -> ReadResult:
    """Read a UEA/UCR .ts file (header lines starting with @, one case per line after @data)."""
    lines = read_text_file(p, file).split("\n")
    head = _ts_header(file, lines)
    if require_label and not head.labeled:
        _fail(
            file,
            "the header declares no labels (@classLabel / @targetLabel is missing or false)",
            "use a labeled file (@classLabel true followed by the labels, each case ending in :<label>)",
        )
    base = os.path.basename(file)
    parsed: list[ParsedRow] = []
    for number in range(head.data_line + 1, len(lines) + 1):
        raw = lines[number - 1].rstrip("\r")
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if "(" in s.rsplit(":", 1)[0]:
            rule = "timestamped .ts data ((t,v) pairs) is not supported yet"
            _fail(file, rule, _TS_TIMESTAMP_FIX, line=number, value=shorten(s))
        values, label, issues = _ts_case(s, head)
        rec = None if issues else Record(f"{base}:{number}", file, number, values=values, label=label)
        parsed.append(ParsedRow(TableRow(number, {}, raw), rec, f"{base}:{number}", [(number, i) for i in issues]))
    if not parsed:
        _fail(file, "no cases after @data", "add one case per line after @data", line=head.data_line)
    if head.dimensions is None:
        _fix_channel_counts(parsed, "channels")
    return collect_rows(file, parsed)
