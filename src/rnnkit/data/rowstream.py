"""Training on a Parquet or Arrow IPC file read one row group at a time (`data.storage: stream`), so that memory
holds the shuffle buffer, not the file. The file is a `RowGroups` source (`groups_of`): a Parquet file's row groups
(`ParquetGroups`), or an Arrow IPC file's record batches (`ArrowBatches`; the IPC file format, which can read any
batch on its own, not the stream format), which play the row groups' part below.

Two passes over the file, each one row group at a time, through the text-row reader of every other mode
(`rnnkit.data.chunkscope.serving`, so the columns, tokenizer and checks are the same):

1. `scan` (before training): every row is validated as it is read; under ``data.bad_rows=skip`` the bad ones
   are appended to rejects.jsonl as they are found and the ``data.max_bad_fraction`` limit is enforced on the
   fly (against the file's row count, known from its metadata); under ``error`` the first bad row group stops
   the run. A row's split is a hash of its row number and ``data.split_seed`` (`holdout`): no list of rows is
   kept. For the training rows it counts tokens (the vocabulary), labels and lengths and keeps a seeded
   reservoir sample (`train.train_eval_rows`, at least 2,000 rows) that stands for the training split wherever
   random access is needed (the final scoring, the doctor's pre-flight); the held-out rows (validation, test)
   are kept, their share capped at ``data.stream_holdout_rows`` rows each.
2. Training (`RowStream` with `ShuffleBufferSampler`): each epoch visits the row groups in a seeded order
   (under torchrun, rank r takes every world-th group of that order: shards by row group), fills a buffer of at
   least ``data.shuffle_buffer`` training rows from consecutive groups, sorts the buffer by length inside a
   random permutation (length bucketing within the buffer), cuts it into batches and shuffles their order.

Invariants (tests/data/test_rowstream.py):

1. Every training row is in exactly one batch of every epoch (one process); no held-out row ever is.
2. The batches of an epoch depend only on (seed, epoch, the file, the settings); `set_epoch(epoch, start=k)`
   continues after k batches and reads only the row groups from the buffer holding batch k on (the batch
   counts of the buffers before it come from the scan's counts), so a resume mid-epoch trains on the same
   batches as an uninterrupted run.
3. At most one buffer (plus the row group that completes it) is held at a time, encoded column by column; a
   row group is decoded to Python objects `SLICE_ROWS` rows at a time.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.data.bulk import gc_paused
from rnnkit.data.chunkscope import ChunkState, serving
from rnnkit.data.readers import read_records
from rnnkit.data.records import Record
from rnnkit.data.tables import (
    ARROW_FIX,
    EXTENSIONS,
    PARQUET_FIX,
    Table,
    arrow_batch_rows,
    columnar_rows,
    fail,
    open_arrow,
    open_parquet,
    unique_columns,
    unreadable,
)
from rnnkit.errors import ConfigError, DataError, Problem

SAMPLE_ROWS = 2000  # training rows kept in memory for random access, at the least (train.train_eval_rows if more)
UNMIXED = 0.10  # a buffer label distance this far above chance is said at start and by the doctor (data.unshuffled);
# SpamAssassin in file order through 1,000-row buffers, 0.13 above chance, trained to 0.936 against 0.978 (BENCHMARKS)
SLICE_ROWS = 10_000  # rows of a row group decoded to Python objects at a time (a row group may be far larger)


def holdout(rows: np.ndarray, seed: int) -> np.ndarray:
    """A number in [0, 1) per row number, from (row, seed) alone (splitmix64): a row's split never depends on
    any other row, so neither pass keeps a list of rows."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


class RowGroups:
    """A columnar file as its groups of rows, the unit `scan` and `RowStream` read: `sizes[g]` rows each, starting
    at row `starts[g]` (0-based) of the file's `rows`; `tables(g)` one group as `Table`s whose rows keep their row
    number in the whole file (1-based, as `rnnkit.data.tables` numbers a columnar file's rows). A file that changed
    since it was opened is a DataError (`_changed`). Subclasses open the file (`columns`, `sizes`, then `_index`)
    and read one group (`_read`); `unit` (`units`) names a group (groups) in messages."""

    unit, units = "row group", "row groups"

    def __init__(self, path: Path, file: str) -> None:
        self.path, self.file = path, file
        if not Path(path).is_file():
            fail(file, "the training file does not exist (or is not a file)", "check the path", value=file)
        st = os.stat(path)
        self._stat = (st.st_size, st.st_mtime_ns)  # a file changed after the scan is an error, not other data
        self.columns: list[str] = []
        self.sizes = np.zeros(0, dtype=np.int64)

    def _index(self) -> None:
        """`starts` and `rows` from `sizes`; a file of no rows, or a column name given twice, is a DataError."""
        unique_columns(self.file, self.columns)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.rows = int(self.sizes.sum())
        if self.rows == 0:
            fail(self.file, "the file has no rows", "add data rows")

    def _read(self, g: int):
        """Group `g` as a pyarrow Table or RecordBatch."""
        raise NotImplementedError

    def _changed(self, why: str) -> DataError:
        return DataError([Problem(self.file, None, None, self.file, why, "do not change the training file while a "
                                  "run reads it (data.storage=stream reads it again every epoch); start a new run "
                                  "on the new file")], header=f"{self.file} changed while training read it")

    def tables(self, g: int, rows: int = SLICE_ROWS):
        """Group `g` as `Table`s of at most `rows` rows (decoded to Python objects one slice at a time)."""
        st = os.stat(self.path)
        if (st.st_size, st.st_mtime_ns) != self._stat:
            raise self._changed(f"its size or modification time differs from the scan's ({self._stat[0]} bytes)")
        try:
            group = self._read(g)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
            raise self._changed(f"{self.unit} {g} cannot be read: {str(e)[:200]}") from None
        first = int(self.starts[g])
        for at in range(0, group.num_rows, rows):
            out = columnar_rows(group.slice(at, rows).to_pylist(), first + at)
            yield Table(self.columns, out, position=first + at + len(out), size=self.rows)


class ParquetGroups(RowGroups):
    """A Parquet file as its row groups."""

    def __init__(self, path: Path, file: str) -> None:
        super().__init__(path, file)
        self._parquet = open_parquet(path, file)
        try:
            meta = self._parquet.metadata
            self.sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
            self.columns = list(self._parquet.schema_arrow.names)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
            unreadable(file, "Parquet", e, PARQUET_FIX)
        self._index()

    def _read(self, g: int):
        return self._parquet.read_row_group(g)


class ArrowBatches(RowGroups):
    """An Arrow IPC file (the file format, random access) as its record batches. The file's footer does not hold
    the batches' row counts: opening it reads them from each batch's header, through a memory map (no values
    read), and the epochs read the batches from the file (`open_arrow`: not mapped, so not kept resident)."""

    unit, units = "record batch", "record batches"

    def __init__(self, path: Path, file: str) -> None:
        super().__init__(path, file)
        arrow = open_arrow(path, file)
        if not arrow.random_access:
            fail(file, "the file is in the Arrow IPC stream format, which data.storage=stream cannot read: it reads "
                 "the record batches in a shuffled order every epoch, and a stream has no index of them",
                 f"{ARROW_FIX} (the IPC file format), or train with data.storage memory or disk", value=file)
        self._reader = arrow.reader
        self.columns = arrow.columns
        self.sizes = np.array(arrow_batch_rows(path, file), dtype=np.int64)
        self._index()

    def _read(self, g: int):
        return self._reader.get_batch(g)


STREAMED = {"parquet": ParquetGroups, "arrow": ArrowBatches}  # data.format -> how data.storage=stream reads it


def groups_of(path: Path, file: str, fmt: str) -> RowGroups:
    """The `RowGroups` of a training file of format `fmt` ("auto": by its extension); any other format is a
    ConfigError saying how to convert it."""
    if fmt == "auto":
        fmt = EXTENSIONS.get(Path(path).suffix.lower(), "")
    if fmt not in STREAMED:
        raise ConfigError(f"config key 'data.storage': stream reads a Parquet or Arrow IPC training file by row groups "
                          f"(record batches); {file} is neither (data.format {fmt or 'unknown'}). Convert it (e.g. "
                          "pandas.read_csv(...).to_parquet('x.parquet') or pyarrow.feather.write_feather("
                          "pyarrow.csv.read_csv(...), 'x.arrow')), or use data.storage memory or disk")
    return STREAMED[fmt](path, file)


@dataclass
class Shares:
    """The held-out shares of a streamed file: a row whose `holdout` number u is below `val` is validation, below
    `val + test` test, else training (a share is 0 where a file gives that split)."""

    seed: int
    val: float = 0.0
    test: float = 0.0

    def split_of(self, rows: np.ndarray) -> np.ndarray:
        """0 train, 1 val, 2 test per (0-based) row number."""
        u = holdout(rows, self.seed)
        return np.where(u < self.val, 1, np.where(u < self.val + self.test, 2, 0))


def read_table(source: RowGroups, table: Table, options: dict, state: ChunkState):
    """One slice of a row group through the text-row reader (its ReadResult)."""
    with serving(source.path, table, state) as served, gc_paused():
        result = read_records(source.path, **options)
    if not served.used or any(r.tokens is None for r in result.records):
        raise ConfigError(f"config key 'data.storage': stream trains on text rows (data.text_column) of a Parquet "
                          f"or Arrow file; {source.file} is read as numeric sequences. Use data.storage memory or disk")
    return result


@dataclass
class Scan:
    """What the first pass found (see the module docstring)."""

    rows: int  # data rows in the file
    rejected: int
    group_train: np.ndarray  # training rows per row group
    label_counts: Counter
    token_counts: Counter
    length_counts: np.ndarray  # training rows per kept length (after truncation), index = length
    truncated: int  # training rows longer than the limit
    positions: int  # steps of the training rows before truncation
    dropped: int  # steps truncation drops from them
    sample: list[Record]  # the reservoir sample of training rows, in file order
    held: dict[str, list[Record]] = field(default_factory=dict)  # carved validation / test rows
    rejects_file: str | None = None
    group_labels: list[Counter] = field(default_factory=list)  # training rows per label, per row group
    rejected_lines: set[int] = field(default_factory=set)  # rows the scan rejected (a duplicate id, say, that a
    # row group read alone would not see as one): training never reads them

    @property
    def train_rows(self) -> int:
        return int(self.group_train.sum())

    def cut_counts(self) -> dict:
        """`rnnkit.data.longseq.cut_counts` of the training rows."""
        n = self.train_rows
        return {"rows": n, "cut_rows": self.truncated, "cut_rows_share": self.truncated / n if n else 0.0,
                "positions": self.positions, "dropped_positions": self.dropped,
                "dropped_share": self.dropped / self.positions if self.positions else 0.0}


def scan(source: RowGroups, options: dict, shares: Shares, *, truncation, policy: str, max_bad_fraction: float,
         rejects_path: Path | None, sample_rows: int, seed: int) -> Scan:
    """The first pass (module docstring, 1)."""
    from rnnkit.data.validate import validate_splits

    state, rng = ChunkState(), np.random.default_rng([seed, 20261202])
    group_train = np.zeros(len(source.sizes), dtype=np.int64)
    group_labels = [Counter() for _ in range(len(source.sizes))]
    labels, tokens = Counter(), Counter()
    lengths = np.zeros(truncation.limit + 1, dtype=np.int64)
    truncated, seen, rejected, positions, dropped = 0, 0, 0, 0, 0
    sample: list[Record] = []
    held: dict[str, list[Record]] = {"val": [], "test": []}
    rejects, rejected_lines = None, set()
    try:
        for g, table in ((group, t) for group in range(len(source.sizes)) for t in source.tables(group)):
            result = read_table(source, table, options, state)
            with serving(source.path, table, state):  # bad rows: counted for this file (chunkscope.BadRowTally)
                validated = validate_splits({"train": result}, policy=policy, max_bad_fraction=1.0,
                                            rejects_path=None, check_labels=False)
            if validated.rejects:
                if rejects is None and rejects_path is not None:
                    rejects_path.parent.mkdir(parents=True, exist_ok=True)
                    rejects = rejects_path.open("a", encoding="utf-8")  # after the held-out files' rejects
                for entry in validated.rejects:
                    if entry.get("line") is not None:
                        rejected_lines.add(int(entry["line"]))
                    if rejects is not None:
                        rejects.write(json.dumps(entry, ensure_ascii=False) + "\n")
                rejected += len(validated.rejects)
                if rejected > max_bad_fraction * source.rows:
                    raise DataError([p for e in validated.rejects for p in _problems(e)][:20], header=(
                        f"{rejected} bad rows in the first {table.position} of {source.rows} "
                        f"rows of {source.file}, more than the limit data.max_bad_fraction={max_bad_fraction:g} of "
                        f"the file ({max_bad_fraction * source.rows:.0f} rows); the bad rows so far were written to "
                        f"{rejects_path}. Repair the file, or raise the limit with "
                        "`--set data.max_bad_fraction=0.05`"))
            records = validated.splits["train"]
            if not len(records):
                continue
            splits = shares.split_of(np.array([r.line - 1 for r in records], dtype=np.int64))
            for r, s in zip(records, splits.tolist(), strict=True):
                if s:
                    held["val" if s == 1 else "test"].append(r)
                    continue
                kept = truncation.cut(r.tokens)
                tokens.update(kept)
                labels[r.label] += 1
                group_labels[g][r.label] += 1
                lengths[len(kept)] += 1
                truncated += len(r.tokens) > truncation.limit
                positions += len(r.tokens)
                dropped += len(r.tokens) - len(kept)
                if len(sample) < sample_rows:  # reservoir sampling (Algorithm R), seeded
                    sample.append(r)
                else:
                    j = int(rng.integers(0, seen + 1))
                    if j < sample_rows:
                        sample[j] = r
                seen += 1
                group_train[g] += 1
    finally:
        if rejects is not None:
            rejects.close()
    sample.sort(key=lambda r: r.line)
    return Scan(rows=source.rows, rejected=rejected, group_train=group_train, label_counts=labels,
                token_counts=tokens, length_counts=lengths, truncated=truncated, positions=positions, dropped=dropped,
                sample=sample, held=held,
                rejects_file=str(rejects_path) if rejected and rejects_path is not None else None,
                rejected_lines=rejected_lines, group_labels=group_labels)


def _problems(entry: dict) -> list[Problem]:
    return [Problem(p["file"], p.get("line"), p.get("column"), p.get("value", ""), p.get("rule", ""),
                    p.get("fix", ""), p.get("record_id")) for p in entry.get("problems", [])]


class RowStream:
    """The training split of a streamed file, one buffer at a time: `load(groups)` reads those row groups, encodes
    their training rows and holds them (and nothing else) in columnar datasets; `dataset[row]` is the Example of
    row number `row`. `len` is the training rows of the whole file."""

    def __init__(self, source: RowGroups, options: dict, shares: Shares, encode, scan_result: Scan) -> None:
        self.source, self.options, self.shares, self._encode = source, options, shares, encode
        self.group_train = scan_result.group_train
        self.rejected_lines = scan_result.rejected_lines
        self.length_counts = scan_result.length_counts
        self._rows = scan_result.train_rows
        self._parts: list = []  # the buffer's encoded slices (SequenceDataset each)
        self._where: dict[int, tuple[int, int]] = {}  # row number -> (part, index)
        self.groups_read = 0  # row groups decoded since the start (a test's evidence for invariant 2)

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, row: int):
        part, i = self._where[int(row)]
        return self._parts[part][i]

    @property
    def held(self) -> int:
        """Rows the buffer holds now."""
        return len(self._where)

    def load(self, groups: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Read `groups` (dropping what was held before): (row numbers, lengths) of their training rows, in file
        order."""
        self._parts, self._where = [], {}
        rows, lengths = [], []
        for g in groups:
            self.groups_read += 1
            found = 0
            for table in self.source.tables(g):
                result = read_table(self.source, table, self.options, ChunkState())
                records = [r for r in result.records if r.line not in self.rejected_lines]
                numbers = np.array([r.line - 1 for r in records], dtype=np.int64)
                keep = self.shares.split_of(numbers) == 0
                records = [r for r, k in zip(records, keep.tolist(), strict=True) if k]
                found += len(records)
                if not records:
                    continue
                part = self._encode(records)
                k = len(self._parts)
                self._parts.append(part)
                for i, number in enumerate(numbers[keep].tolist()):
                    self._where[number] = (k, i)
                rows.append(numbers[keep])
                lengths.append(np.asarray(part.length_array))
            if found != self.group_train[g]:
                raise self.source._changed(f"{self.source.unit} {g} holds {found} training rows where the scan found "
                                           f"{self.group_train[g]}")
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(lengths)


class ShuffleBufferSampler:
    """Batches of row numbers of a `RowStream` (module docstring, 2); the loop's sampler interface
    (`set_epoch(epoch, start)`, iteration, `len`, `first_batch`, `state_dict`, `batch_size`).

    `len` is this epoch's batch count: each buffer ends in one short batch at most, and buffers fall differently
    every epoch, so the count may differ by a few batches from one epoch to the next. Under torchrun every rank
    gets the largest rank's count (a rank with fewer rows starts its list of buffers again, as
    `torch.utils.data.DistributedSampler` repeats indices)."""

    def __init__(self, stream: RowStream, batch_size: int, buffer_rows: int, *, seed: int, bucketing: bool = True,
                 num_replicas: int = 1, rank: int = 0) -> None:
        self.stream, self.batch_size, self.buffer_rows = stream, int(batch_size), max(int(buffer_rows), 1)
        self.seed, self.bucketing, self.num_replicas, self.rank = int(seed), bucketing, int(num_replicas), int(rank)
        self.epoch, self.start = 0, 0
        self.real, self.padded = 0, 0  # token positions of the batches formed so far (the summary's padding share)

    def _buffers(self, epoch: int, rank: int) -> list[tuple[list[int], int]]:
        """(row groups, training rows) of each buffer of `rank` in `epoch`."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.stream.group_train))
        out, groups, n = [], [], 0
        for g in order[rank::self.num_replicas].tolist():
            rows = int(self.stream.group_train[g])
            if not rows:
                continue
            groups.append(g)
            n += rows
            if n >= self.buffer_rows:
                out.append((groups, n))
                groups, n = [], 0
        if groups:
            out.append((groups, n))
        return out

    def _count(self, buffers) -> int:
        return sum(-(-n // self.batch_size) for _, n in buffers)

    def __len__(self) -> int:
        return max(self._count(self._buffers(self.epoch, r)) for r in range(self.num_replicas))

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    @property
    def remaining(self) -> int:
        return len(self) - self.start

    def _cut(self, epoch: int, b: int, rows: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch, b])
        order = rng.permutation(len(rows))
        if self.bucketing:
            order = order[np.argsort(lengths[order], kind="stable")]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        out = []
        for k in rng.permutation(len(batches)).tolist():
            picked = batches[k]
            self.real += int(lengths[picked].sum())
            self.padded += int(lengths[picked].max()) * len(picked)
            out.append(rows[picked].tolist())
        return out

    def __iter__(self) -> Iterator[list[int]]:
        epoch, total = self.epoch, len(self)
        buffers = self._buffers(epoch, self.rank)
        at, b, skip = 0, 0, self.start  # batches yielded; buffer index (cycling for the padding ranks)
        while at < total and buffers:
            groups, n = buffers[b % len(buffers)]
            count = -(-n // self.batch_size)
            if skip >= count:  # a buffer before the resume point: counted from the scan, not read
                skip -= count
                at += count
                b += 1
                continue
            rows, lengths = self.stream.load(groups)
            at += skip  # the batches of this buffer before the resume point
            for batch in self._cut(epoch, b, rows, lengths)[skip:]:
                if at >= total:
                    return
                at += 1
                yield batch
            skip = 0
            b += 1

    def label_distance(self, group_labels: list[Counter], epoch: int = 0) -> tuple[float, float]:
        """How far a buffer's label mix is from the whole training split's, on average over this rank's buffers
        of `epoch` (weighted by rows): the total variation distance, 0 (every buffer mixed like the file) to 1 (no
        label in common), and what chance alone gives a buffer of that many rows drawn at random (the normal
        approximation of E|share - p| per label). A file written in label order, read through a buffer of a few
        row groups, is far above chance."""
        total = sum(group_labels, Counter())
        n = sum(total.values())
        if not n:
            return 0.0, 0.0
        p = {k: total[k] / n for k in total}
        far = chance = 0.0
        rows = 0
        for groups, size in self._buffers(epoch, self.rank):
            mix = sum((group_labels[g] for g in groups), Counter())
            far += size * 0.5 * sum(abs(mix[k] / size - p[k]) for k in p)
            chance += size * 0.5 * sum(math.sqrt(2 * q * (1 - q) / (math.pi * size)) for q in p.values())
            rows += size
        return (far / rows, min(chance / rows, 1.0)) if rows else (0.0, 0.0)

    def first_batch(self) -> list[int]:
        """Step 1's batch (the pre-flight's), leaving the position as it was."""
        epoch, start, real, padded = self.epoch, self.start, self.real, self.padded
        self.set_epoch(0)
        try:
            return next(iter(self))
        finally:
            self.set_epoch(epoch, start)
            self.real, self.padded = real, padded  # the tally counts what the loop trains on

    def padding_share(self) -> float:
        """Padded positions' share of the batches formed so far (NaN before any)."""
        return 1.0 - self.real / self.padded if self.padded else float("nan")

    def state_dict(self) -> dict:
        return {"kind": "shuffle_buffer", "seed": self.seed, "batch_size": self.batch_size,
                "buffer_rows": self.buffer_rows, "bucketing": self.bucketing, "num_replicas": self.num_replicas,
                "rank": self.rank, "epoch": self.epoch, "start": self.start}


@dataclass
class TrainStream:
    """What `rnnkit.training.setup` trains on instead of datasets["train"] (which then holds the scan's sample):
    the stream, its sampler's settings, and the scan's figures for the summary."""

    dataset: RowStream
    batch_size: int
    buffer_rows: int
    seed: int
    bucketing: bool
    info: dict

    _formed: list = field(default_factory=list)  # the samplers made (the summary's padding share is theirs)

    def sampler(self, num_replicas: int = 1, rank: int = 0) -> ShuffleBufferSampler:
        made = ShuffleBufferSampler(self.dataset, self.batch_size, self.buffer_rows, seed=self.seed,
                                    bucketing=self.bucketing, num_replicas=num_replicas, rank=rank)
        self._formed.append(made)
        return made

    @property
    def padding_share(self) -> float:
        """Padded positions' share of every batch the samplers formed in this process (NaN before any)."""
        real, padded = sum(s.real for s in self._formed), sum(s.padded for s in self._formed)
        return 1.0 - real / padded if padded else float("nan")

    def lengths_summary(self) -> dict:
        """min, median, p90 and max of the training lengths (after truncation), from the scan's counts."""
        counts = self.dataset.length_counts
        if not counts.sum():
            return {}
        cum = np.cumsum(counts)
        n = int(cum[-1])

        def quantile(q: float) -> float:
            return float(np.searchsorted(cum, q * (n - 1), side="right"))

        present = np.flatnonzero(counts)
        return {"min": int(present[0]), "median": quantile(0.5), "p90": quantile(0.9), "max": int(present[-1])}


def check_labels_alike(counts: Counter, file: str, column: str) -> None:
    """Labels of one number spelled two ways ("1", "1.0"), or that differ only by surrounding spaces, are one
    class in the other modes (`reconcile_labels` renames rows); a stream re-reads its rows, so it asks for them
    to be written alike (DataError) instead."""
    from rnnkit.data.validate import label_number

    by_key: dict = {}
    for label in counts:
        if label is None:
            continue
        key = label_number(label)
        by_key.setdefault(("n", key) if key is not None else ("s", label.strip()), []).append(label)
    clashes = [sorted(v) for v in by_key.values() if len(v) > 1]
    if clashes:
        problems = [Problem(file, None, column, " / ".join(repr(x) for x in group), "these labels are one class "
                            f"written {len(group)} ways ({', '.join(f'{x!r}: {counts[x]} rows' for x in group)})",
                            "write them alike (data.storage=stream reads labels as written), or train with "
                            "data.storage memory or disk, which read them as one class") for group in clashes]
        raise DataError(problems, header=f"{len(clashes)} label(s) of {file} are spelled more than one way")


def check_settings(cfg) -> None:
    """Settings that data.storage=stream cannot honour: a ConfigError naming the key and the fix."""
    if cfg.data.long_sequences not in ("auto", "truncate"):
        raise ConfigError(f"config key 'data.long_sequences': {cfg.data.long_sequences} reads each document in "
                          "windows, which data.storage=stream does not do; use data.long_sequences truncate (or "
                          "auto), or data.storage memory or disk")


__all__ = ["SAMPLE_ROWS", "STREAMED", "UNMIXED", "ArrowBatches", "ParquetGroups", "RowGroups", "RowStream", "Scan",
           "Shares", "ShuffleBufferSampler", "TrainStream", "check_labels_alike", "check_settings", "groups_of",
           "holdout", "read_table", "scan"]
