"""Predicting a file one chunk at a time (streaming `rnnkit predict`, torch or ONNX).

`chunks_of` cuts a CSV, TSV, JSONL, Parquet or Arrow IPC file into consecutive `Table`s of at most N rows
(`rnnkit.data.tables.iter_tables`; each row keeps its line in the whole file). `stream_predictions` reads one
chunk through the family's own reader (under `rnnkit.data.chunkscope.serving`), predicts it and appends its
predictions to the output, so memory holds one chunk; OUTPUT appears only when every row was predicted (written
beside it and renamed). A file that cannot be cut (long format, CoNLL, .ts, a word list; a family whose
predictions need the whole file) is read and predicted whole, as before.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnkit.data.bulk import gc_paused
from rnnkit.data.chunkscope import ChunkState, NotRowLocal, serving
from rnnkit.data.tables import COLUMNAR, EXTENSIONS, TABLE_FORMATS, Table, iter_tables
from rnnkit.errors import ConfigError

CHUNK_ROWS = 10_000  # rows read, predicted and written at a time by `rnnkit predict`


def chunks_of(path: str | Path, fmt: str = "auto", *, delimiter: str = "auto", rows: int = CHUNK_ROWS,
              chars: int | None = None) -> Iterator[Table] | None:
    """`iter_tables` of a CSV, TSV, JSONL, Parquet or Arrow IPC file (`fmt` "auto": by its extension); None for any
    other format, or a path that is not a file (its reader then reports it as it does)."""
    p = Path(path)
    if fmt == "auto":
        fmt = EXTENSIONS.get(p.suffix.lower(), "")
    if fmt not in TABLE_FORMATS or not p.is_file():
        return None
    return iter_tables(p, str(path), fmt, delimiter=delimiter, rows=rows, chars=chars)


def stream_predictions(path: str | os.PathLike, output: str | os.PathLike, *,
                       predict: Callable[[], tuple[list, list]], write: Callable[[Path, list, list], int],
                       max_bad_fraction: float, fmt: str = "auto", delimiter: str = "auto", in_chunks: bool = True,
                       chunk_rows: int = CHUNK_ROWS, progress: bool | None = None) -> int:
    """Predict PATH into OUTPUT one chunk at a time; returns the number of predictions written.

    Args:
        predict: () -> (records, predictions) of the file as the family's reader reads it: under `serving`
            that is one chunk.
        write: (path, records, predictions) -> rows written, in OUTPUT's format (by its extension). What it
            writes for no rows (a header, or nothing) is written once, at the top.
        max_bad_fraction: the bad-row limit, applied to the whole file.
        fmt, delimiter: the reader's `data.format` and `data.delimiter` ("auto": by the extension).
        in_chunks: False reads the file whole (a family whose predictions need the whole file).
        chunk_rows: rows per chunk, >= 1.
        progress: a progress bar on stderr (None: when stderr is a terminal).
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows={chunk_rows!r} must be a whole number >= 1 (rows predicted at a time, e.g. "
                          f"{CHUNK_ROWS})")
    tables = chunks_of(path, fmt, delimiter=delimiter, rows=chunk_rows) if in_chunks else None
    columnar = (fmt if fmt != "auto" else EXTENSIONS.get(Path(path).suffix.lower(), "")) in COLUMNAR
    unit = "rows" if columnar else "B"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.rnnkit-tmp{output.suffix}")
    part = output.with_name(f".{output.stem}.rnnkit-chunk{output.suffix}")
    state = ChunkState()
    written = 0
    try:
        write(part, [], [])
        header = part.read_bytes()
        with open(tmp, "wb") as out:
            out.write(header)
            whole = tables is None
            chunks = _progress(tables if tables is not None else iter(()), progress, unit)
            for table in chunks:
                try:
                    with serving(path, table, state) as served, gc_paused():
                        records, preds = predict()
                except NotRowLocal:
                    whole = True
                    break
                written += _append(out, part, header, write, records, preds)
                if not served.used:  # the reader read the file its own way: that was the whole file's result
                    break
            chunks.close()
            if whole:
                with gc_paused():
                    written = _append(out, part, header, write, *predict())
        state.bad.finish(max_bad_fraction)
        os.replace(tmp, output)
    finally:
        for p in (tmp, part):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    return written


def _append(out, part: Path, header: bytes, write, records: list, preds: list) -> int:
    n = write(part, records, preds)
    data = part.read_bytes()
    out.write(data[len(header):] if data.startswith(header) else data)
    return n


def _progress(tables: Iterator, enabled: bool | None, unit: str):
    """`tables`, with a progress bar on stderr over the file's bytes (Parquet, Arrow: rows)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        try:
            yield from tables
        finally:
            if hasattr(tables, "close"):
                tables.close()
        return
    from tqdm import tqdm

    bar = None
    try:
        for table in tables:
            if bar is None:
                bar = tqdm(total=table.size or None, unit=unit, unit_scale=True, desc="predict", leave=False,
                           file=sys.stderr)
            bar.update(table.position - bar.n)
            yield table
    finally:
        if bar is not None:
            bar.close()
        if hasattr(tables, "close"):
            tables.close()
