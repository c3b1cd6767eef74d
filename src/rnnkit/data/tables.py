"""Tables: CSV, TSV, JSONL, Parquet and Arrow IPC files -> raw rows that remember where they came from.

Contract: `load_table` returns a `Table` whose rows are the file's data rows in file order, each a
`TableRow` with its 1-based line (Parquet, Arrow: row number), its fields (column -> cell, not yet
interpreted: strings for CSV/TSV, JSON values for JSONL, Python values for Parquet and Arrow) and
its raw text (Parquet, Arrow: the row as JSON). A row that cannot be split into fields (bad
quoting, a wrong field count, invalid JSON, not an object) is kept with `broken` set, for the
caller to reject; blank lines are not rows. Problems that make the whole file unusable
(unreadable, not UTF-8, no header, duplicate column names, no data rows, pyarrow missing) raise
`DataError` at once (`fail`). The columnar formats (Parquet, Arrow IPC) share the pyarrow import,
the unreadable-file error and the rows built from record batches (`columnar_rows`).

Also here: the CSV/TSV delimiter (`resolve_delimiter`, sniffing when the header reads as one
column), the messages for a header split on the wrong delimiter or one that looks like data, and
`json_loads` / `json_type`, which every reader of JSON cells shares.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rnnkit.data import chunkscope
from rnnkit.errors import ConfigError, DataError, Problem, shorten

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet", "arrow")  # the formats `load_table` and `iter_tables` read
COLUMNAR = ("parquet", "arrow")  # of those, the ones pyarrow reads (rows numbered, not lines; Python values)
FORMATS = (*TABLE_FORMATS, "ts")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",  # Arrow IPC (the file format; the stream format is read too)
    ".feather": "arrow",  # Feather v2 is the Arrow IPC file format
    ".ipc": "arrow",
    ".ts": "ts",
}


def format_of(path: Path, fmt: str = "auto") -> str:
    """The format a file is read in: `fmt`, or with "auto" the one its extension names ("" when none does)."""
    return EXTENSIONS.get(Path(path).suffix.lower(), "") if fmt == "auto" else fmt

_QUOTE_FIX = (
    "enclose fields that contain the delimiter, quotes or line breaks in double quotes, "
    'and double every quote inside such a field ("")'
)


# An issue found in a row: (column, value, rule, fix); turned into a Problem once the row's
# line and record id are known.
Issue = tuple[str | None, str, str, str]


# --------------------------------------------------------------------------- raw rows


@dataclass
class TableRow:
    """One data row of a table-like file, before interpretation."""

    line: int
    fields: dict[str, Any]
    raw: str
    # A structural problem (wrong field count, invalid JSON, ...) as (column, value, rule, fix).
    # When set, `fields` may be partial and the row is rejected.
    broken: Issue | None = None


@dataclass
class Table:
    columns: list[str]
    rows: list[TableRow]
    header_line: int | None = None  # CSV/TSV only
    header_looks_like_data: bool = False
    delimiter: str | None = None  # CSV/TSV only: the delimiter the fields were split on
    # How far into the file this table reaches, and the file's whole extent, in the same unit: bytes for
    # CSV/TSV/JSONL, rows for Parquet and Arrow (a progress bar's position and total, 0: unknown; `iter_tables`).
    position: int = 0
    size: int = 0


def fail(file: str, rule: str, fix: str, *, line: int | None = None, value: str = "") -> NoReturn:
    """Raise a DataError for one problem that makes the whole file unusable."""
    raise DataError([Problem(file, line, None, value, rule, fix)], header=f"cannot read {file}")


# --------------------------------------------------------------------------- loading files


def read_text_file(p: Path, file: str) -> str:
    try:
        data = p.read_bytes()
    except OSError as e:
        fail(file, f"cannot read the file: {e.strerror or e}", "check the file's permissions", value=file)
    try:
        # utf-8-sig: a byte-order mark written by some editors is not part of the first column name
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        _not_utf8(file, data, e)


def _not_utf8(file: str, data: bytes, e: UnicodeDecodeError) -> NoReturn:
    line = data[: e.start].count(b"\n") + 1
    bad = data[e.start : e.start + 1]
    fail(
        file,
        f"the file must be UTF-8; byte 0x{bad.hex()} at byte offset {e.start} is not valid UTF-8",
        "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
        line=line,
        value=repr(data[max(0, e.start - 20) : e.start + 20]),
    )


class _Lines:
    """A text file's lines, decoded as it is read (UTF-8; a byte-order mark is dropped), remembering how many
    bytes have been read (`position`) and the lines handed out since `take` was last called.

    `newline` is `open`'s: "" splits on \\n, \\r and \\r\\n and keeps the line ends (CSV: quoted line breaks stay
    inside their field); "\\n" splits on \\n only (JSONL). A byte that is not UTF-8 fails with its line and offset.
    """

    def __init__(self, p: Path, file: str, newline: str) -> None:
        self.p, self.file, self.newline = p, file, newline
        self.pending: list[str] = []
        self.size = 0
        self._raw = None

    def __iter__(self) -> Iterator[str]:
        try:
            raw = open(self.p, "rb")  # noqa: SIM115 - closed below, when the generator ends or is closed
            self.size = os.fstat(raw.fileno()).st_size
        except OSError as e:
            fail(self.file, f"cannot read the file: {e.strerror or e}", "check the file's permissions",
                 value=self.file)
        self._raw = raw
        try:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline=self.newline)
            try:
                for line in text:
                    self.pending.append(line)
                    yield line
            except UnicodeDecodeError:
                data = self.p.read_bytes()  # the error path only: find the byte's offset and line in the file
                try:
                    data.decode("utf-8-sig")
                except UnicodeDecodeError as e:
                    _not_utf8(self.file, data, e)
                raise
        finally:
            raw.close()

    @property
    def position(self) -> int:
        return self.size if self._raw is None or self._raw.closed else self._raw.tell()

    def take(self) -> str:
        """The text of the lines handed out since the last call (one row's raw text)."""
        text = "".join(self.pending)
        self.pending.clear()
        return text


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


# --------------------------------------------------------------------------- delimiters


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
        fail(
            file,
            f"the header reads as one column when split on {delimiter_name(default)}, and it holds {named}; "
            "cannot tell which one separates the fields",
            f"set the delimiter, e.g. --set data.delimiter={_delimiter_setting(candidates[0])}",
            line=next((i for i, text in enumerate(lines, start=1) if text.strip()), 1),
            value=shorten(head[0]),
        )
    return sniffed


def delimiter_problem(file: str, table: Table) -> list[Problem]:
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


def header_problem(file: str, table: Table) -> list[Problem]:
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


# --------------------------------------------------------------------------- the formats


def load_table(p: Path, file: str, fmt: str, *, delimiter: str = "auto") -> Table:
    """Load a CSV, TSV, JSONL, Parquet or Arrow IPC file (`fmt` already resolved) into a `Table` of raw rows.

    `delimiter` (CSV/TSV only): "auto" uses ``,`` for csv and tab for tsv, and when the header then
    reads as one column that holds one of ``, ; tab |``, the delimiter `csv.Sniffer` finds among them.

    While a chunk of this file is being served (`rnnkit.data.chunkscope.serving`), that chunk is returned
    instead: how a reader written for a whole file reads one chunk of it without knowing.
    """
    served = chunkscope.served_table(p)
    if served is not None:
        return served
    return next(iter_tables(p, file, fmt, delimiter=delimiter, rows=None))


def iter_tables(p: Path, file: str, fmt: str, *, delimiter: str = "auto", rows: int | None = 10_000,
                chars: int | None = None) -> Iterator[Table]:
    """The file as consecutive `Table`s of at most `rows` rows each (None: one table of every row), read as
    they are asked for, so that memory holds one chunk; with `chars`, a CSV/TSV/JSONL chunk also ends once its
    rows' raw text reaches that many characters (long documents: a chunk of 10,000 rows could be the file).
    Rows keep their lines in the whole file; every chunk has the columns (JSONL: the keys seen so far). The
    whole-file problems are raised as `load_table` raises them: unreadable, not UTF-8 (when the reading reaches
    the byte), no header, no data rows."""
    if fmt in ("csv", "tsv"):
        return _delimited_tables(p, file, resolve_delimiter(delimiter), fmt, rows, chars)
    if fmt == "jsonl":
        return _jsonl_tables(p, file, rows, chars)
    if fmt == "arrow":
        return _arrow_tables(p, file, rows)
    return _parquet_tables(p, file, rows)


def _full(rows: list, limit: int | None, chars: int = 0, max_chars: int | None = None) -> bool:
    return (limit is not None and len(rows) >= limit) or (max_chars is not None and chars >= max_chars)


def _delimited_tables(p: Path, file: str, delimiter: str, fmt: str, limit: int | None,
                      max_chars: int | None = None) -> Iterator[Table]:
    source = _Lines(p, file, newline="")
    stream = iter(source)
    # the first lines, for sniffing the delimiter; newline="" keeps line ends as they are, so csv sees quoted
    # line breaks and line_num counts physical lines
    peeked = list(itertools.islice(stream, 50))
    source.take()

    def replay() -> Iterator[str]:  # the peeked lines again, counted as handed out when csv reads them
        for line in peeked:
            source.pending.append(line)
            yield line

    if delimiter == "auto":
        delimiter = _sniff_delimiter(file, peeked, "," if fmt == "csv" else "\t")
    header: list[str] | None = None
    header_line: int | None = None
    rows: list[TableRow] = []
    yielded, chars = False, 0
    with _csv_field_limit():
        # strict: an unclosed or stray quote is an error instead of silently swallowing lines
        reader = csv.reader(itertools.chain(replay(), stream), delimiter=delimiter, strict=True)
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
            raw = source.take()
            if error is None and not raw.strip():
                continue  # blank line: not a row
            shown = shorten(raw.rstrip("\r\n"))
            if error is not None:
                if header is None:
                    fail(
                        file,
                        f"the header is not valid {fmt.upper()}: {error}",
                        _QUOTE_FIX,
                        line=start,
                        value=shown,
                    )
                broken = (None, shown, f"malformed {fmt.upper()} quoting: {error}", _QUOTE_FIX)
                rows.append(TableRow(start, {}, raw, broken))
            elif header is None:
                header = [c.strip() for c in cells]
                header_line = start
                dup = [c for c, n in Counter(header).items() if n > 1]
                if dup:
                    fail(
                        file,
                        "column names in the header must be unique",
                        "rename the duplicate columns",
                        line=start,
                        value=shorten(", ".join(dup)),
                    )
                continue
            else:
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
            chars += len(raw)
            if _full(rows, limit, chars, max_chars):
                yield Table(header, rows, header_line, _looks_numeric(header), delimiter, source.position,
                            source.size)
                rows, yielded, chars = [], True, 0
    if header is None:
        fail(file, "the file is empty: no header line", "add a header line and data rows")
    table = Table(header, rows, header_line, _looks_numeric(header), delimiter, source.size, source.size)
    if rows or not yielded:
        if not rows:
            raise DataError(
                [Problem(file, None, None, shorten(", ".join(header)), "no data rows after the header", "add rows")]
                + header_problem(file, table),
                header=f"cannot read {file}",
            )
        yield table


def _jsonl_tables(p: Path, file: str, limit: int | None, max_chars: int | None = None) -> Iterator[Table]:
    source = _Lines(p, file, newline="\n")
    rows: list[TableRow] = []
    columns: dict[str, None] = {}  # ordered set: keys in order of first appearance
    yielded, chars = False, 0
    for number, line in enumerate(source, start=1):
        source.take()
        raw = line.removesuffix("\n").rstrip("\r")
        if not raw.strip():
            continue
        obj, error = json_loads(raw)
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
        elif not isinstance(obj, dict):
            rule = f"expected a JSON object {{...}}, found {json_type(obj)}"
            rows.append(TableRow(number, {}, raw, (None, shorten(raw), rule, "write one JSON object per line")))
        else:
            columns.update(dict.fromkeys(obj))
            rows.append(TableRow(number, obj, raw))
        chars += len(raw)
        if _full(rows, limit, chars, max_chars):
            yield Table(list(columns), rows, position=source.position, size=source.size)
            rows, yielded, chars = [], True, 0
    if not rows and not yielded:
        fail(file, "the file is empty: no JSON lines", "add one JSON object per line")
    if rows:
        yield Table(list(columns), rows, position=source.size, size=source.size)


def _pyarrow(file: str, what: str):
    """The pyarrow package (an optional dependency, imported when a columnar file is read); missing: a DataError
    naming `file` and how to install it."""
    try:
        import pyarrow  # lazy: pyarrow is an optional dependency
    except ImportError as e:
        raise DataError(
            [
                Problem(
                    file,
                    None,
                    None,
                    file,
                    f"reading {what} files needs the pyarrow package, which is not installed",
                    "pip install 'rnnkit[parquet]'",
                )
            ],
            header=f"cannot read {file}",
        ) from e
    return pyarrow


def unreadable(file: str, what: str, e: object, fix: str) -> NoReturn:
    """A columnar file pyarrow cannot read: a DataError naming `file`, pyarrow's reason and `fix`."""
    fail(file, f"not a readable {what} file: {shorten(e, 200)}", fix, value=file)


PARQUET_FIX = "check that the file is Parquet"


def open_parquet(p: Path, file: str):
    """`pyarrow.parquet.ParquetFile(p)`; a missing pyarrow or an unreadable file is a DataError naming `file`."""
    _pyarrow(file, "Parquet")
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(p)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        unreadable(file, "Parquet", e, PARQUET_FIX)


def columnar_rows(objs: list[dict], first: int) -> list[TableRow]:
    """Rows of a columnar file (Parquet, Arrow; as `to_pylist` gives them) as `TableRow`s numbered from `first` + 1, the
    raw text their JSON."""
    return [TableRow(first + k + 1, obj, json.dumps(obj, default=str, ensure_ascii=False))
            for k, obj in enumerate(objs)]


def unique_columns(file: str, columns: list[str]) -> list[str]:
    """`columns`; a name given twice is a DataError (a columnar row read as a dict would keep only the last)."""
    dup = [c for c, n in Counter(columns).items() if n > 1]
    if dup:
        fail(file, "column names must be unique", "rename the duplicate columns", value=shorten(", ".join(dup)))
    return columns


def _columnar_tables(columns: list[str], batches: Iterator, total: int, limit: int | None, file: str
                     ) -> Iterator[Table]:
    """Record batches (pyarrow) -> `Table`s of at most `limit` rows (None: one of every row), numbered in file
    order; `total` is the file's row count (each table's `size`)."""
    unique_columns(file, columns)
    rows: list[TableRow] = []
    seen = 0
    for batch in batches:
        for row in columnar_rows(batch.to_pylist(), seen):
            seen += 1
            rows.append(row)
            if _full(rows, limit):
                yield Table(columns, rows, position=seen, size=total)
                rows = []
    if rows:
        yield Table(columns, rows, position=seen, size=total)


def _parquet_tables(p: Path, file: str, limit: int | None) -> Iterator[Table]:
    parquet = open_parquet(p, file)
    try:
        columns = list(parquet.schema_arrow.names)
        total = parquet.metadata.num_rows
        # one batch of every row when the whole file is asked for (a row group may be smaller)
        batches = parquet.iter_batches(batch_size=limit or max(total, 1))
        first = next(batches, None)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        unreadable(file, "Parquet", e, PARQUET_FIX)
    if first is None or total == 0:
        fail(file, "the file has no rows", "add data rows")
    yield from _columnar_tables(columns, itertools.chain([first], batches), total, limit, file)


ARROW_MAGIC = b"ARROW1"  # how an Arrow IPC file (format, not stream) begins
ARROW_FIX = ("write it as an Arrow IPC file, e.g. pyarrow.feather.write_feather(table, path) or "
             "pyarrow.ipc.new_file(path, table.schema)")


@dataclass
class ArrowFile:
    """An Arrow IPC file opened for reading (`open_arrow`): `reader` is a `pyarrow.ipc.RecordBatchFileReader` on a
    `pyarrow.OSFile` (random access: a record batch is read from the file when asked for, not memory-mapped) or,
    for the IPC stream format, a `RecordBatchStreamReader` (sequential only)."""

    reader: Any
    random_access: bool
    file: str

    @property
    def columns(self) -> list[str]:
        return list(self.reader.schema.names)

    def batches(self) -> Iterator:
        """Every record batch in file order, read one at a time; a batch that cannot be read is a DataError."""
        count = self.reader.num_record_batches if self.random_access else None
        i = 0
        while count is None or i < count:
            try:
                batch = self.reader.get_batch(i) if self.random_access else self.reader.read_next_batch()
            except StopIteration:
                return
            except Exception as e:  # pyarrow raises several unrelated types for a bad file
                unreadable(self.file, "Arrow IPC", e, f"record batch {i + 1} is damaged; {ARROW_FIX}")
            yield batch
            i += 1


def open_arrow(p: Path, file: str) -> ArrowFile:
    """An Arrow IPC file (`.arrow`, `.feather` v2, `.ipc`) in the file format (it begins with ``ARROW1``) or the
    stream format; a missing pyarrow, an empty, unreadable or Feather v1 file is a DataError naming `file`."""
    pa = _pyarrow(file, "Arrow IPC")
    import pyarrow.ipc

    try:
        source = pa.OSFile(str(p))
        head = source.read(len(ARROW_MAGIC))
        source.seek(0)
    except OSError as e:
        fail(file, f"cannot read the file: {e}", "check the file's permissions", value=file)
    if not head:
        source.close()
        fail(file, "the file is empty (0 bytes)", ARROW_FIX, value=file)
    if head.startswith(b"FEA1"):
        source.close()
        fail(file, "a Feather v1 file, which rnnkit does not read", "rewrite it as Feather v2 (the Arrow IPC file "
             "format): pyarrow.feather.write_feather(pyarrow.feather.read_table(path), new_path)", value=file)
    random_access = head == ARROW_MAGIC
    try:
        reader = pyarrow.ipc.open_file(source) if random_access else pyarrow.ipc.open_stream(source)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        source.close()
        why = (f"it begins as an IPC file ({ARROW_MAGIC.decode()}) but its footer, at the end, cannot be read: a "
               f"file cut short? ({shorten(e, 120)})" if random_access else f"neither the IPC file format (no "
               f"{ARROW_MAGIC.decode()} at the start) nor the stream format ({shorten(e, 120)})")
        unreadable(file, "Arrow IPC", why, ARROW_FIX)
    return ArrowFile(reader, random_access, file)


def arrow_batch_rows(p: Path, file: str) -> list[int]:
    """The row count of every record batch of an Arrow IPC file (the file format), from a memory map: a batch's
    header is read, its values are not (a DataError naming `file` when the file cannot be read so)."""
    pa = _pyarrow(file, "Arrow IPC")
    import pyarrow.ipc

    try:
        with pa.memory_map(str(p)) as source:
            reader = pyarrow.ipc.open_file(source)
            return [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        unreadable(file, "Arrow IPC", e, ARROW_FIX)


def _arrow_tables(p: Path, file: str, limit: int | None) -> Iterator[Table]:
    arrow = open_arrow(p, file)
    batches = (b for b in arrow.batches() if b.num_rows)
    first = next(batches, None)
    if first is None:
        fail(file, "the file has no rows", "add data rows")
    # the row count is known only once every batch was read: `size` 0 (a progress bar of rows without a total)
    yield from _columnar_tables(arrow.columns, itertools.chain([first], batches), 0, limit, file)


# --------------------------------------------------------------------------- JSON cells


def json_loads(text: str) -> tuple[Any, str | None]:
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


def json_type(v: Any) -> str:
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
