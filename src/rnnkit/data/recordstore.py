"""A training file's text records held column by column, read one chunk at a time (issue 14: peak memory).

`read_records` returns a list of `Record`s, and a short text row costs about 1.7 KB of Python objects (the record,
its list of token strings, its id string) beside the table rows it came from; a training file of 1M rows peaked at
45x its own payload. `read_file` reads a CSV, TSV, JSONL, Parquet or Arrow file of text rows through the same
`read_records`, one chunk of `CHUNK_ROWS` rows at a time (`rnnkit.data.chunkscope.serving`, as streaming
`predict` does), and keeps each chunk's records in a `RecordStore`: the lines (int64), the ids (`Ids`: a prefix
index and a number, 12 bytes a row), the labels (an int32 code into the distinct labels), and the tokens as int32
ids into the table of distinct token strings seen (each string kept once) plus an int64 end offset a row. That is
the tokens at 4 bytes each plus 32 bytes a row. Bad rows, their problems and raw text are kept as a whole-file
read keeps them, and the ids of an id column are unique across chunks.

What the store gives back is `Records`, a read-only `Sequence[Record]`: indexing or iterating rebuilds a `Record`
(its token strings shared with the table), and `take(index)` is a view of some rows (the seeded split makes
its splits that way). Code written for a list of records works on it unchanged, as long as it does not keep
every record it is given (then it holds what the list held) or set a record's fields (they are rebuilt on each
access): the pipeline's few such places use `labels_of`, `lengths_of`, `relabel`, `without_ids` and `as_split`,
which take a list as before.

Numeric rows (a JSON list of steps a cell) are kept the same way: their values as one float32 array of (steps,
channels), a row's end offset counted in steps, 4 bytes a value plus 32 a row. A whole-file read rejects a row whose
channel count differs from the file's most common one; each chunk is checked against its own most common count,
and when every chunk's is the same count W, the file's is W too (a count at least as large as any other in every
chunk is so in their sum, and a tie in the sum is a tie in every chunk, won by W's earlier row), so the chunks
reject exactly the rows the whole read rejects. A chunk whose most common count differs from the earlier chunks'
makes the file be read whole, as before. Numeric rows are not disk-backed (`data.storage: disk` keeps them in
memory, as its warning says).

A family that parses more of a row after the read keeps it in `RecordStore.columns` (`Records.set_column`: one
array a key, given back in `Record.extra`), as regression does with its targets.

Not kept in a store (read by the reader, as before): long format (a sequence spans rows; the reader reads it in
chunks of its own and keeps its steps in flat columns, `rnnkit.data.longformat`), .ts files and every format
`chunks_of` does not cut.
"""

from __future__ import annotations

import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from rnnkit.data.bulk import gc_paused
from rnnkit.data.chunked import chunks_of
from rnnkit.data.chunkscope import ChunkState, NotRowLocal, serving
from rnnkit.data.ids import Ids, IdsBuilder
from rnnkit.data.readers import read_records
from rnnkit.data.records import ReadResult, Record
from rnnkit.data.spill import Spill

CHUNK_ROWS = 10_000  # rows of a training file read at a time ...
CHUNK_CHARS = 4_000_000  # ... or fewer, once they hold this many characters (long documents)
ENCODE_TOKENS = 1 << 20  # tokens encoded at a time (bounds the index arrays of `Records.kept_tokens`)


class RecordStore:
    """The records of one file, column by column (see the module docstring); `extend` appends a chunk's."""

    def __init__(self, file: str, spill: Spill | None = None) -> None:
        self.file = file
        self.spill = spill  # data.storage=disk: the tokens, lines and ends go to disk-backed arrays (`flush`)
        self._spilled = None if spill is None else {
            "flat": spill.appender(np.int32), "ends": spill.appender(np.int64), "lines": spill.appender(np.int64)}
        self._base = self._rows = 0  # tokens and rows flushed to disk so far
        self._ids = IdsBuilder()
        self._lines = array.array("q")
        self._label_code: dict[str | None, int] = {}
        self.label_names: list[str | None] = []
        self._labels = array.array("i")
        self._token_id: dict[str, int] = {}
        self.token_names: list[str] = []
        self._flat = array.array("i")
        self._ends = array.array("q")
        self.extras: dict[int, dict] = {}  # row -> Record.extra, for the rows that have one (raw_label)
        self.kind: str | None = None  # "text" or "numeric": the first record's input
        self.width: int | None = None  # numeric rows: their channel count (every row's)
        self._values = array.array("f")  # numeric rows: every step's channels, row after row
        # Record.extra keys held as one array each (row i: `columns[key][i]`, given back as a copy), set by a family
        # after the read (e.g. regression's parsed targets) instead of a dict a row
        self.columns: dict[str, np.ndarray] = {}
        self.ids: Ids | None = None
        self.lines = self.labels = self.flat = self.ends = self.values = None

    def accepts(self, records: Sequence[Record]) -> bool:
        """Whether `extend` can take these records: text after text, numeric rows of the channel count seen so
        far (a chunk's numeric rows all have its most common count: the reader rejected the others)."""
        if not records:
            return True
        kind = "text" if records[0].tokens is not None else "numeric"
        if any((r.tokens is not None) != (kind == "text") for r in records) or self.kind not in (None, kind):
            return False
        return kind == "text" or len({r.values.shape[1] for r in records} | ({self.width} - {None})) == 1

    def extend(self, records: Sequence[Record]) -> None:
        """Append records of text input (`tokens` set) or numeric input (`values` set), as `accepts` allows."""
        if not records:
            return
        assert self.accepts(records)
        if self.kind is None:
            self.kind = "text" if records[0].tokens is not None else "numeric"
            if self.kind == "numeric":
                self.width = records[0].values.shape[1]
                self.discard()  # numeric rows stay in memory (module docstring)
                self.spill = None
        label_code, done = self._label_code, self._rows
        for r in records:
            n = done + len(self._lines)
            self._ids.append(r.id)
            self._lines.append(r.line)
            code = label_code.get(r.label)
            if code is None:
                code = label_code[r.label] = len(self.label_names)
                self.label_names.append(r.label)
            self._labels.append(code)
            if r.extra:
                self.extras[n] = dict(r.extra)
        if self.kind == "text":
            self._extend_tokens(records)
        else:
            values, ends, width = self._values, self._ends, self.width
            for r in records:
                values.frombytes(np.ascontiguousarray(r.values, dtype=np.float32).tobytes())
                ends.append(len(values) // width)
        self._flush()

    def _extend_tokens(self, records: Iterable[Record]) -> None:
        token_id, names, flat, ends, base = self._token_id, self.token_names, self._flat, self._ends, self._base
        for r in records:
            for t in r.tokens:
                j = token_id.get(t)
                if j is None:
                    j = token_id[t] = len(names)
                    names.append(t)
                flat.append(j)
            ends.append(base + len(flat))

    def _flush(self) -> None:
        """With a `Spill`, move the rows read so far to its files (so the heap holds one chunk's tokens at most)."""
        if self._spilled is None:
            return
        self._base += len(self._flat)
        for name, buf in (("flat", self._flat), ("ends", self._ends), ("lines", self._lines)):
            self._spilled[name].write(buf)
        self._rows += len(self._lines)
        self._flat, self._ends, self._lines = array.array("i"), array.array("q"), array.array("q")

    def discard(self) -> None:
        """Give up the rows read (a read that failed or fell back to a whole read): closes the spill's files."""
        for appender in (self._spilled or {}).values():
            appender.close()
        self._spilled = None

    def finish(self) -> Records:
        """All rows, as `Records`; the store takes no more rows."""
        self.ids = self._ids.finish()
        self.labels = np.frombuffer(self._labels, dtype=np.int32)
        if self._spilled is not None:
            self._flush()
            self.flat, self.ends, self.lines = (self._spilled[k].finish() for k in ("flat", "ends", "lines"))
        else:
            self.lines = np.frombuffer(self._lines, dtype=np.int64)
            self.flat = np.frombuffer(self._flat, dtype=np.int32)
            self.ends = np.frombuffer(self._ends, dtype=np.int64)
        if self.kind == "numeric":
            self.values = np.frombuffer(self._values, dtype=np.float32).reshape(-1, self.width)
        self._token_id = {}  # the reading index; token_names stays
        self._extras_rows = None
        return Records(self, np.arange(len(self.lines), dtype=np.int64))

    def starts(self) -> np.ndarray:
        return np.concatenate([np.zeros(1, dtype=np.int64), self.ends[:-1]])

    def record(self, i: int, payload: bool = True) -> Record:
        """Row i as a `Record`; without `payload`, its id, line, label and extra only (no tokens or values)."""
        if not payload:
            extra = self.extras.get(i)
            return Record(self.ids.get(i), self.file, int(self.lines[i]), label=self.label_names[self.labels[i]],
                          extra=dict(extra) if extra else {})
        start = int(self.ends[i - 1]) if i > 0 else 0
        names = self.token_names
        extra = self.extras.get(i)
        if self.columns:
            extra = {**(extra or {}), **{key: column[i].copy() for key, column in self.columns.items()}}
        if self.kind == "numeric":  # a copy: the caller may change it
            return Record(self.ids.get(i), self.file, int(self.lines[i]),
                          values=self.values[start:int(self.ends[i])].copy(),
                          label=self.label_names[self.labels[i]], extra=dict(extra) if extra else {})
        return Record(self.ids.get(i), self.file, int(self.lines[i]),
                      tokens=[names[j] for j in self.flat[start:int(self.ends[i])].tolist()],
                      label=self.label_names[self.labels[i]], extra=dict(extra) if extra else {})


class Records(Sequence):
    """Some rows of a `RecordStore`, in order: a read-only sequence of `Record`s rebuilt on access."""

    def __init__(self, store: RecordStore, index: np.ndarray) -> None:
        self.store = store
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Records(self.store, self.index[i])
        return self.store.record(int(self.index[i]))

    def __iter__(self) -> Iterator[Record]:
        record = self.store.record
        for i in self.index.tolist():
            yield record(i)

    def headers(self) -> Iterator[Record]:
        """Each row's id, line, label and extra (the read's `raw_label`), as `Record`s without tokens or values:
        for a pass that reads no payload."""
        record = self.store.record
        for i in self.index.tolist():
            yield record(i, payload=False)

    def column(self, key: str) -> np.ndarray:
        """These rows of a column `set_column` set, as one array (a copy)."""
        return self.store.columns[key][self.index]

    def take(self, positions: Sequence[int] | np.ndarray) -> Records:
        """The rows at these positions of this view, in the order given."""
        return Records(self.store, self.index[np.asarray(positions, dtype=np.int64)])

    def set_column(self, key: str, values: np.ndarray) -> None:
        """Give these rows `extra[key]` = `values[k]` (row k of this view), held as one array in the store (rows of
        the store outside this view read as NaN or zero)."""
        store = self.store
        column = store.columns.get(key)
        if column is None:
            fill = np.nan if np.issubdtype(values.dtype, np.floating) else 0
            column = store.columns[key] = np.full((len(store.lines), *values.shape[1:]), fill, dtype=values.dtype)
        column[self.index] = values

    def labels(self) -> list[str | None]:
        names = self.store.label_names
        return [names[c] for c in self.store.labels[self.index].tolist()]

    def lengths(self) -> np.ndarray:
        return (self.store.ends - self.store.starts())[self.index]

    def token_counts(self, limit: int, slices: Callable[[int], list[slice]]) -> Counter[str]:
        """How often each token occurs in these rows, counting of a row longer than `limit` only the parts
        `slices(length)` keep (the vocabulary counts what the model sees); block by block (`kept_tokens`), so that
        no array of the size of the whole split is made."""
        names = self.store.token_names
        counts = np.zeros(len(names), dtype=np.int64)
        for tokens in self.kept_tokens(limit, slices):
            counts += np.bincount(tokens, minlength=len(names))
        return Counter({names[j]: int(counts[j]) for j in np.flatnonzero(counts).tolist()})

    def kept_tokens(self, limit: int, slices: Callable[[int], list[slice]], block: int | None = None
                    ) -> Iterator[np.ndarray]:
        """The tokens each row keeps after truncation to `limit` (`slices(length)`: the kept parts of a longer row,
        min(length, limit) steps), as the token numbers in `store.token_names` of a block of rows, concatenated, for
        blocks of rows in order that keep about `block` tokens each (default `ENCODE_TOKENS`; at least one row)."""
        store = self.store
        starts_all, ends = store.starts(), store.ends
        total = np.cumsum(np.minimum(ends[self.index] - starts_all[self.index], limit))
        budget, b0 = block or ENCODE_TOKENS, 0
        while b0 < len(self.index):
            done = int(total[b0 - 1]) if b0 else 0
            b1 = max(b0 + 1, int(np.searchsorted(total, done + budget, side="right")))
            idx, b0 = self.index[b0:b1], b1
            starts, lengths = starts_all[idx], ends[idx] - starts_all[idx]
            if (lengths > limit).any():
                parts: list[tuple[int, int]] = []
                for s0, n in zip(starts.tolist(), lengths.tolist(), strict=True):
                    parts += [(s0 + sl.start, sl.stop - sl.start) for sl in slices(n)] if n > limit else [(s0, n)]
                p_start, p_len = (np.array(v, dtype=np.int64) for v in zip(*parts, strict=True))
            else:
                p_start, p_len = starts, lengths
            first = np.cumsum(p_len) - p_len  # where each part starts in the block's output
            pos = np.arange(int(p_len.sum()), dtype=np.int64) + np.repeat(p_start - first, p_len)
            yield store.flat[pos]

    def label_sightings(self, first: dict, raw: dict, raw_first: dict) -> None:
        """`reconcile_labels`' per-label first record and per-spelling counts, added to the dicts given (what a
        loop over the records would add, without building every Record)."""
        store = self.store
        codes = store.labels[self.index]
        uniq, first_pos, counts = np.unique(codes, return_index=True, return_counts=True)
        spelled_rows = [k for k, i in enumerate(self.index.tolist()) if "raw_label" in store.extras.get(i, ())]
        respelled: dict[int, Counter] = {}
        for k in spelled_rows:
            respelled.setdefault(int(codes[k]), Counter())[store.extras[int(self.index[k])]["raw_label"]] += 1
        for pos in sorted(range(len(uniq)), key=lambda u: first_pos[u]):  # labels in order of first sighting
            label = store.label_names[int(uniq[pos])]
            if label is None:
                continue
            first.setdefault(label, self[int(first_pos[pos])])
            spellings = raw.setdefault(label, Counter())
            extra = respelled.get(int(uniq[pos]), Counter())
            spellings[label] += int(counts[pos]) - sum(extra.values())
            if spellings[label] <= 0:
                del spellings[label]
            spellings.update(extra)
        # the first record of each spelling, in file order: among the first row of each label, the rows spelled
        # otherwise, and the first row of a respelled label that is spelled as the label itself
        candidates = {int(p) for p in first_pos.tolist()} | set(spelled_rows)
        spelled = np.zeros(len(codes), dtype=bool)
        spelled[spelled_rows] = True
        for code in respelled:
            candidates.update(np.flatnonzero((codes == code) & ~spelled)[:1].tolist())
        for k in sorted(candidates):
            r = self[k]
            if r.label is not None:
                raw_first.setdefault(r.extra.get("raw_label", r.label), r)

    def ids(self) -> list[str]:
        get = self.store.ids.get
        return [get(i) for i in self.index.tolist()]

    def __repr__(self) -> str:
        return f"Records({len(self)} of {self.store.file})"


# --------------------------------------------------------------------------- list-or-Records helpers


def labels_of(records: Sequence[Record]) -> list[str | None]:
    """Each record's label, in order (without rebuilding `Records`' rows)."""
    if isinstance(records, Chained):
        return [label for part in records.parts for label in labels_of(part)]
    return records.labels() if isinstance(records, Records) else [r.label for r in records]


def label_sightings(records: Sequence[Record]) -> tuple[dict, dict, dict]:
    """For `reconcile_labels`: (label -> its first record, label -> Counter of the spellings read for it (the raw
    label before spaces were stripped), spelling -> its first record), over labeled records in order."""
    first: dict[str, Record] = {}
    raw: dict[str, Counter] = {}
    raw_first: dict[str, Record] = {}
    for part in (records.parts if isinstance(records, Chained) else [records]):
        if isinstance(part, Records):
            part.label_sightings(first, raw, raw_first)
            continue
        for r in part:
            if r.label is None:
                continue
            first.setdefault(r.label, r)
            spelled = r.extra.get("raw_label", r.label)
            raw.setdefault(r.label, Counter())[spelled] += 1
            raw_first.setdefault(spelled, r)
    return first, raw, raw_first


def lengths_of(records: Sequence[Record]) -> list[int]:
    """Each record's length (tokens or steps), in order."""
    return records.lengths().tolist() if isinstance(records, Records) else [len(r) for r in records]


def length_array_of(records: Sequence[Record]) -> np.ndarray:
    """Each record's length as an int64 array (`Records`: from the store's ends, no Python int per row)."""
    if isinstance(records, Records):
        return records.lengths()
    return np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records))


def label_counts(records: Sequence[Record]) -> Counter:
    """How many records carry each label (None: unlabeled), as `Counter(labels_of(records))` (`Records` and
    `Chained` of them: counted on the store's label codes, no list of every row's label)."""
    if isinstance(records, Chained):
        total: Counter = Counter()
        for part in records.parts:
            total.update(label_counts(part))
        return total
    if isinstance(records, Records):
        store = records.store
        counts = np.bincount(store.labels[records.index], minlength=len(store.label_names))
        out: Counter = Counter()
        for code in np.flatnonzero(counts).tolist():  # a renamed label's codes add up under its one name
            out[store.label_names[code]] += int(counts[code])
        return out
    return Counter(r.label for r in records)


def ids_of(records: Sequence[Record]) -> list[str]:
    return records.ids() if isinstance(records, Records) else [r.id for r in records]


def relabel(records: Sequence[Record], rename: dict[str, str]) -> None:
    """Rewrite the labels named in `rename` (old -> new), in place; `records` a list or `Records`."""
    if not rename:
        return
    if isinstance(records, Records):
        store = records.store
        codes = {store.label_names[c]: c for c in np.unique(store.labels[records.index]).tolist()}
        for old, new in rename.items():
            if old in codes:
                new_code = store.label_names.index(new) if new in store.label_names else None
                if new_code is None:
                    store.label_names.append(new)
                    new_code = len(store.label_names) - 1
                rows = records.index[store.labels[records.index] == codes[old]]
                store.labels[rows] = new_code
        return
    for r in records:
        if r.label in rename:
            r.label = rename[r.label]


def without_ids(records: Sequence[Record], dropped: set[str]) -> Sequence[Record]:
    """The records whose id is not in `dropped`, in order (a list for a list, `Records` for `Records`)."""
    if isinstance(records, Records):
        if not dropped:
            return records
        keep = [k for k, rid in enumerate(records.ids()) if rid not in dropped]
        return records.take(keep)
    return [r for r in records if r.id not in dropped]


def as_split(records: Sequence[Record]) -> Sequence[Record]:
    """A split's records as the pipeline passes them on: a list stays a (new) list, `Records` stays itself."""
    return records if isinstance(records, Records) else list(records)


class Chained(Sequence):
    """Several record sequences read as one (for the labels check across splits), without copying them."""

    def __init__(self, parts: list[Sequence[Record]]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, i: int) -> Record:
        for p in self.parts:
            if i < len(p):
                return p[i]
            i -= len(p)
        raise IndexError(i)

    def __iter__(self) -> Iterator[Record]:
        for p in self.parts:
            yield from p


def chained(parts: list[Sequence[Record]]) -> Sequence[Record]:
    """The records of `parts` as one sequence: a list when they are all lists (as before), else `Chained`."""
    if all(isinstance(p, list) for p in parts):
        return [r for p in parts for r in p]
    return Chained(parts)


def relabel_all(records: Sequence[Record], rename: dict[str, str]) -> None:
    """`relabel` for a list, `Records` or `Chained`."""
    if isinstance(records, Chained):
        for p in records.parts:
            relabel(p, rename)
    else:
        relabel(records, rename)


# --------------------------------------------------------------------------- reading


def read_file(path, *, chunk_rows: int | None = None, spill: Spill | None = None, **options) -> ReadResult:
    """`read_records(path, **options)`, read one chunk at a time into a `RecordStore` where the file allows it
    (see the module docstring); the result's `records` is then `Records`, else the reader's list. Problems, bad
    rows and row counts are the whole file's, in file order, as a whole-file read gives them. With `spill`
    (data.storage=disk) the store's tokens, lines and ends are disk-backed (`rnnkit.data.spill`)."""
    tables = chunks_of(path, options.get("format", "auto"), delimiter=options.get("delimiter", "auto"),
                       rows=chunk_rows or CHUNK_ROWS, chars=CHUNK_CHARS)
    if tables is None:
        return read_records(path, **options)
    store, result = RecordStore(str(path), spill), None
    try:
        result = _read_chunks(path, tables, store, options)
    finally:
        if result is None or not isinstance(result.records, Records):
            store.discard()
    return result


def _read_chunks(path, tables, store: RecordStore, options: dict) -> ReadResult:
    """`read_file`'s loop over the chunks `tables` into `store`; a whole read's result where the file needs one."""
    state = ChunkState()
    problems, bad_rows, record_ids, rows, chunks = [], {}, {}, 0, 0
    for table in tables:
        try:
            with serving(path, table, state) as served, gc_paused():
                result = read_records(path, **options)
        except NotRowLocal:
            return read_records(path, **options)
        if not served.used:  # the reader read the file another way: its result is the whole file's
            return result
        if not store.accepts(result.records):  # another most common channel count: read whole (module docstring)
            return read_records(path, **options)
        chunks += 1
        store.extend(result.records)
        problems += result.problems
        bad_rows.update(result.bad_rows)
        record_ids.update(result.record_ids)
        rows += result.rows
    if not chunks:  # no data rows: the whole-file read says so
        return read_records(path, **options)
    return ReadResult(store.finish(), problems, rows, bad_rows, record_ids)


__all__ = ["CHUNK_ROWS", "Chained", "RecordStore", "Records", "as_split", "chained", "ids_of", "label_counts",
           "label_sightings", "labels_of", "length_array_of", "lengths_of", "read_file", "relabel", "relabel_all",
           "without_ids"]
