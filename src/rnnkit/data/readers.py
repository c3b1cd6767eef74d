"""Read sequence records from CSV, TSV, JSONL, Parquet, Arrow IPC and UEA/UCR ``.ts`` files.

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

This module is the entry point: `read_records` checks the options, resolves the format and the
input layout, and checks that the required columns exist. The rest is done by
`rnnkit.data.tables` (files -> raw rows), `rnnkit.data.text_numeric` (one row per sequence),
`rnnkit.data.longformat` (one row per step), `rnnkit.data.ts_format` (.ts files) and
`rnnkit.data.cells` (cell values); `rnnkit.data.records` holds what they return.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
from pathlib import Path

from rnnkit.data import chunkscope
from rnnkit.data.longformat import interpret_long
from rnnkit.data.records import ReadOptions, ReadResult
from rnnkit.data.tables import (
    EXTENSIONS,
    FORMATS,
    Table,
    delimiter_problem,
    header_problem,
    iter_tables,
    load_table,
    resolve_delimiter,
)
from rnnkit.data.text_numeric import interpret_rows
from rnnkit.data.ts_format import read_ts
from rnnkit.errors import ConfigError, DataError, Problem, shorten

INPUTS = ("auto", "text", "numeric", "long")
# Long format is read in chunks of this many rows from these formats (a fixed header: every chunk has the file's
# columns; a JSONL chunk has the keys seen so far, so JSONL is read whole)
LONG_CHUNK_ROWS = 10_000
LONG_CHUNKED = ("csv", "tsv", "parquet", "arrow")
TOKENIZERS = ("whitespace", "char")
_UNLABELED = " (unlabeled data can only be read where labels are optional, e.g. for predict)"


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
    table=None,
) -> ReadResult:
    """Read one data file into records, collecting a problem for every bad row.

    Args:
        path: the file. `Record.file` and `Problem.file` are ``str(path)`` as given.
        format: "auto" (by extension: .csv, .tsv, .jsonl/.ndjson, .parquet, .arrow/.feather/.ipc,
            .ts) or one of "csv", "tsv", "jsonl", "parquet", "arrow", "ts".
        input: "text", "numeric", "long" or "auto". Auto picks: .ts -> numeric; else
            `text_column` present -> text; else `sequence_column` present -> numeric; else
            `id_column` and `time_column` given -> long.
        text_column: column holding the text (input "text").
        sequence_column: column holding a JSON list of steps (input "numeric"). JSONL and
            Parquet/Arrow cells may also hold the list itself instead of a JSON string.
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
        table: the file's table when the caller has read it already (`rnnkit.data.tables.load_table` of `path`
            with the same format and delimiter): a pipe or FIFO can be read only once. Not for .ts files.

    Returns:
        A `ReadResult` with the good records, the problems of the bad rows, the number of rows
        seen and the raw text of each bad row. Record ids are ``"<file name>:<line>"`` (long
        format and id column: ``"<file name>:<id>"``); values are float32 arrays (T, C).
        Blank lines (and ``#`` comments in .ts files) are not rows.

    Raises:
        DataError: the file as a whole is unusable: not found, unknown extension, not UTF-8,
            empty / no header / no data rows, a required column missing (with the columns found
            and the nearest match), duplicate header names, a malformed .ts header, timestamped
            .ts data, or pyarrow missing for Parquet or Arrow.
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
                    "jsonl, parquet, arrow, ts)",
                )
            )
    if problems:
        raise DataError(problems, header=f"cannot read {file}")

    if fmt == "ts":
        if input not in ("auto", "numeric"):
            raise ConfigError(f"data.input={input!r} is not possible for {file}: .ts files hold numeric series")
        return read_ts(p, file, require_label)

    opts = ReadOptions(
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
    tables = None  # long format: the file's chunks, each row put in flat columns once read (`interpret_long`)

    def chunks_again():
        return iter_tables(p, file, fmt, delimiter=delimiter, rows=LONG_CHUNK_ROWS)

    # in chunks only from a regular file: the rejected sequences' raw text is read from it again (a pipe or a FIFO
    # can be read once, so it is read whole); a table the caller already holds is used as it is
    if table is None:
        if (input == "long" or (input == "auto" and id_column and time_column)) and fmt in LONG_CHUNKED \
                and chunkscope.active() is None and p.is_file():
            tables = chunks_again()
            table = next(tables)
        else:
            table = load_table(p, file, fmt, delimiter=delimiter)

    mode = _resolve_input(input, table, opts)
    _check_columns(mode, table, opts)
    opts.has_label = label_column in table.columns
    if mode == "long":
        chunkscope.require_row_local()  # a sequence's rows may lie in different chunks
        if tables is None:
            return interpret_long(table, opts, table.columns)
        chunks, columns = itertools.chain([table], tables), table.columns
        del table  # the first chunk is freed once read, like the others
        return interpret_long(chunks, opts, columns, reread=chunks_again)
    if tables is not None:  # not long format after all: the whole table
        table = load_table(p, file, fmt, delimiter=delimiter)
    return interpret_rows(table, opts, mode)


# --------------------------------------------------------------------------- options & columns


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


def _missing_column(opts: ReadOptions, table: Table, name: str, key: str, extra_fix: str = "") -> Problem:
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


def _resolve_input(input: str, table: Table, opts: ReadOptions) -> str:
    if input != "auto":
        return input
    if opts.text_column in table.columns:
        return "text"
    if opts.sequence_column in table.columns:
        return "numeric"
    if opts.id_column and opts.time_column:
        return "long"
    if delimiter_problem(opts.file, table):  # every other complaint would follow from it
        raise DataError(delimiter_problem(opts.file, table), header=f"cannot read {opts.file}")
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
    problems += header_problem(opts.file, table)
    raise DataError(problems, header=f"cannot read {opts.file}")


def _check_columns(mode: str, table: Table, opts: ReadOptions) -> None:
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
        wrong_delimiter = delimiter_problem(opts.file, table)  # the missing columns follow from it
        problems = wrong_delimiter or missing + header_problem(opts.file, table)
        raise DataError(problems, header=f"cannot read {opts.file}")
