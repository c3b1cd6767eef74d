"""Examples, batches, dynamic padding and the DataLoader factory.

Padding contract: a batch is padded to *its own* longest example (dynamic padding; the
bucketing sampler keeps that short). Pad positions hold `pad_value` (float features) or token
id 0 (token inputs) and are marked False in `Batch.mask`; nothing downstream may let a pad
position influence a real one, so model outputs are independent of `pad_value`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.columns import ABSENT, Column, ColumnBuilder, Ids, IdsBuilder
from rnnkit.data.longseq import Truncation
from rnnkit.data.sampler import BucketBatchSampler

TOKEN_PAD_ID = 0  # token id 0 is reserved for padding by the vocabulary


@dataclass
class Example:
    """One encoded sequence.

    Attributes:
        id: record id, e.g. "train.csv:17".
        inputs: (T,) int64 token ids, or (T, C) float32 features; T >= 1.
        target: () int64 class index for classification (later tasks: any tensor), or None.
        extra: task-specific tensors (e.g. character ids per token); a task's own collate pads them.
    """

    id: str
    inputs: torch.Tensor
    target: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass
class Batch:
    """A padded batch.

    Attributes:
        inputs: (B, T) int64 (pad 0) or (B, T, C) float32 (pad `pad_value`); T = max length.
        lengths: (B,) int64, ALWAYS on CPU (pack_padded_sequence requires CPU lengths).
        mask: (B, T) bool, True on real positions.
        targets: stacked targets (B, ...) or None when the examples have none.
        ids: record ids in batch order.
        extra: task-specific tensors (moved by `to` like inputs), e.g. target lengths, char ids.
    """

    inputs: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor | None
    ids: list[str]
    extra: dict = field(default_factory=dict)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Copy of the batch with inputs/mask/targets on `device`; `lengths` stays on CPU."""
        return replace(
            self,
            inputs=self.inputs.to(device, non_blocking=non_blocking),
            mask=self.mask.to(device, non_blocking=non_blocking),
            targets=None if self.targets is None else self.targets.to(device, non_blocking=non_blocking),
            extra={k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) and not
                   k.endswith("lengths") else v for k, v in self.extra.items()},
        )

    def pin_memory(self) -> Batch:
        """Pinned copy; DataLoader(pin_memory=True) calls this on custom batch types."""
        return replace(
            self,
            inputs=self.inputs.pin_memory(),
            mask=self.mask.pin_memory(),
            targets=None if self.targets is None else self.targets.pin_memory(),
        )

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def real_tokens(self) -> int:
        """Number of real (non-pad) time steps in the batch."""
        return int(self.lengths.sum())

    @property
    def padded_positions(self) -> int:
        """All time positions the model processes, B * T (real + pad)."""
        return int(self.mask.shape[0] * self.mask.shape[1])


class _LengthList(list):
    """A list of ints that can also be called: `ds.lengths` and `ds.lengths()` both work.

    The API description leaves open whether `lengths` is an attribute or a method; several
    modules are written against it at the same time, so both spellings are accepted.
    """

    def __call__(self) -> list[int]:
        return list(self)


class DatasetBuilder:
    """Builds a `SequenceDataset` row by row straight into its columns (`rnnkit.data.columns`), so that an
    encoder never holds a list of per-row tensors: `add` copies the row's values into flat buffers.

    `inputs` may be a flat list of token ids (stored as int32, read back as an int64 tensor), a tensor or an
    ndarray; `target` and the values of `extra` anything an `Example` holds (see `ColumnBuilder.append`).
    """

    def __init__(self) -> None:
        self._ids = IdsBuilder()
        self._inputs = ColumnBuilder(lists_as_tensors=True)
        self._target = ColumnBuilder()
        self._extra: dict[str, ColumnBuilder] = {}
        self._rows = 0

    def add(self, id: str, inputs, target=None, extra: dict | None = None) -> None:  # noqa: A002 - Example's name
        self._ids.append(id)
        self._inputs.append(inputs)
        self._target.append(target)
        extra = extra or {}
        for key in extra.keys() - self._extra.keys():  # a key first seen now: earlier rows lack it
            column = self._extra[key] = ColumnBuilder()
            for _ in range(self._rows):
                column.append(ABSENT)
        for key, column in self._extra.items():
            column.append(extra.get(key, ABSENT))
        self._rows += 1

    def add_example(self, example: Example) -> None:
        self.add(example.id, example.inputs, example.target, example.extra)

    def build(self) -> SequenceDataset:
        """The dataset; the builder must not be used afterwards (the dataset shares its buffers)."""
        return SequenceDataset.from_columns(self._ids.finish(), self._inputs.finish(), self._target.finish(),
                                            {k: c.finish() for k, c in self._extra.items()})


def length_array(dataset) -> np.ndarray:
    """Every example's length as an (N,) int64 array: `SequenceDataset.length_array` (no copy), else the dataset's
    `lengths` converted."""
    found = getattr(dataset, "length_array", None)
    return found if found is not None else np.asarray(dataset.lengths, dtype=np.int64)


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def content_keys(dataset, *, block_values: int = 1 << 20) -> np.ndarray | None:
    """(N,) uint64: a hash of each example's input values and their positions (equal inputs, equal keys), for
    `BucketBatchSampler(tiebreak=...)`; None when the inputs are not a numeric column (objects, another dataset
    type). Vectorised over the column's flat values, about `block_values` values at a time (a memory-mapped
    column is read a block at a time too): no Example is rebuilt."""
    column = getattr(dataset, "_inputs", None)
    values = getattr(column, "values", None)
    if values is None or column.objects is not None or values.dtype.itemsize not in (1, 2, 4, 8) \
            or values.dtype.kind not in "biuf":
        return None
    n = len(dataset)
    per_row = int(np.prod(values.shape[1:], dtype=np.int64))  # ragged: values per step; stacked: per row
    rows = np.asarray(column.offsets, dtype=np.int64) if column.offsets is not None else np.arange(n + 1)
    flat = values.reshape(-1) if values.flags.c_contiguous else np.ascontiguousarray(values).reshape(-1)
    starts = rows * per_row
    keys = np.zeros(n, dtype=np.uint64)
    lo = 0
    while lo < n:
        hi = max(lo + 1, min(n, int(np.searchsorted(starts, starts[lo] + block_values, side="right")) - 1))
        part = starts[lo:hi + 1] - starts[lo]
        bits = np.asarray(flat[starts[lo]:starts[hi]]).view(f"u{values.dtype.itemsize}").astype(np.uint64)
        position = np.arange(bits.size, dtype=np.int64) - np.repeat(part[:-1], np.diff(part))
        mixed = bits + (position.astype(np.uint64) + np.uint64(1)) * _MIX[0]  # splitmix64's finaliser per value
        for shift, factor in ((30, _MIX[1]), (27, _MIX[2])):  # uint64 arithmetic wraps modulo 2**64, as meant
            mixed = (mixed ^ (mixed >> np.uint64(shift))) * factor
        mixed ^= mixed >> np.uint64(31)
        sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(mixed, dtype=np.uint64)])
        keys[lo:hi] = sums[part[1:]] - sums[part[:-1]]
        lo = hi
    return keys


def stacked_targets(examples: Sequence[Example]) -> torch.Tensor:
    """(N,) the 0-d targets of `examples` (class indices) as one tensor; for a dataset's `.examples` read from its
    target column, without rebuilding an Example (and a 0-d tensor) per row."""
    if isinstance(examples, _Examples):
        targets = examples._dataset.scalar_targets()
        if targets is not None:
            return torch.from_numpy(np.array(targets, dtype=np.int64))
    return torch.stack([ex.target for ex in examples])


class _Examples(Sequence):
    """`SequenceDataset.examples`: a read-only sequence of Examples rebuilt on access (a slice gives a list)."""

    def __init__(self, dataset: SequenceDataset) -> None:
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._dataset[i] for i in range(*index.indices(len(self._dataset)))]
        return self._dataset[index]

    def __iter__(self):
        for i in range(len(self._dataset)):
            yield self._dataset[i]


class SequenceDataset(torch.utils.data.Dataset):
    """Encoded sequences held column by column (`rnnkit.data.columns`: one flat value array plus offsets per
    column, ids compact), with their lengths for the bucketing sampler. `dataset[i]` rebuilds the `Example`
    (float inputs are views of the column; int64 token ids are widened from their int32 storage).

    `SequenceDataset(examples)` packs a list of Examples; `DatasetBuilder` builds one without the list.
    An `Example` read from the dataset is a fresh object each time: changing it does not change the dataset.
    """

    def __init__(self, examples: Iterable[Example] = ()) -> None:
        if isinstance(examples, SequenceDataset):
            self._adopt(examples)
            return
        builder = DatasetBuilder()
        for e in examples:
            builder.add_example(e)
        self._adopt(builder.build())

    def _adopt(self, other: SequenceDataset) -> None:
        self._ids, self._inputs, self._target, self._extra = other._ids, other._inputs, other._target, other._extra
        self._lengths = other._lengths

    @classmethod
    def from_columns(cls, ids: Ids, inputs: Column, target: Column, extra: dict[str, Column]) -> SequenceDataset:
        """A dataset over finished columns of equal row counts (not copied)."""
        rows = {len(ids), inputs.rows, target.rows, *(c.rows for c in extra.values())}
        if len(rows) > 1:
            raise ValueError(f"columns of different row counts {sorted(rows)}")
        ds = cls.__new__(cls)
        ds._ids, ds._inputs, ds._target, ds._extra = ids, inputs, target, dict(extra)
        ds._lengths = inputs.row_lengths()  # (N,) int64
        return ds

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> Example:
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} examples")
        target = self._target.get(i)
        extra = {}
        for key, column in self._extra.items():
            value = column.get(i)
            if value is not ABSENT:
                extra[key] = value
        return Example(id=self._ids.get(i), inputs=self._inputs.get(i), target=None if target is ABSENT else target,
                       extra=extra)

    @property
    def examples(self) -> Sequence[Example]:
        """Every example, rebuilt on access (len, index, slice, iterate; not a list: nothing is stored twice)."""
        return _Examples(self)

    @property
    def lengths(self) -> list[int]:
        """Length T of every example, in dataset order (a fresh list each time)."""
        return _LengthList(self._lengths.tolist())

    @property
    def length_array(self) -> np.ndarray:
        """`lengths` as a read-only (N,) int64 array, not copied (a Python list costs ~36 bytes a row)."""
        view = self._lengths.view()
        view.flags.writeable = False
        return view

    def scalar_targets(self) -> np.ndarray | None:
        """(N,) the targets as one array when every example has a 0-d target (e.g. class indices), else None
        (sequence targets, no targets, or some missing). A view of the column: do not write into it."""
        t = self._target
        if t.values is None or t.offsets is not None or t.values.ndim != 1 or t.state is not None or t.kind != "tensor":
            return None
        return t.values

    def subset(self, indices: Sequence[int]) -> SequenceDataset:
        """The examples at `indices`, in that order, as a new dataset (the columns' rows are copied)."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"subset indices out of range for a dataset of {len(self)} examples")
        index = index % max(len(self), 1)
        return SequenceDataset.from_columns(self._ids.take(index), self._inputs.take(index), self._target.take(index),
                                            {k: c.take(index) for k, c in self._extra.items()})

    @property
    def nbytes(self) -> int:
        """Bytes the columns hold (ids, inputs, targets, extras; Python objects of an object column not counted)."""
        return (self._ids.nbytes + self._inputs.nbytes + self._target.nbytes
                + sum(c.nbytes for c in self._extra.values()))

    def digest_parts(self, values: bool = False) -> list:
        """Buffers that identify the ids, lengths and targets (`values`: also the inputs and every extra), for a
        data fingerprint (`rnnkit.data.fingerprint`)."""
        parts = [*self._ids.digest_parts(), np.ascontiguousarray(self._lengths).data, *self._target.digest_parts()]
        if values:
            parts += self._inputs.digest_parts()
            for key in sorted(self._extra):
                parts += [key.encode(), *self._extra[key].digest_parts()]
        return parts


def _check_batch(examples: Sequence[Example]) -> None:
    """Raise ValueError naming the first example that cannot be batched with the first one."""
    if len(examples) == 0:
        raise ValueError("collate got an empty list of examples")
    first = examples[0].inputs
    for e in examples:
        x = e.inputs
        if x.ndim not in (1, 2):
            raise ValueError(
                f"example {e.id!r}: inputs must be (T,) token ids or (T, C) features, "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"example {e.id!r} has length 0; every sequence needs at least one step")
        if x.ndim != first.ndim or x.shape[1:] != first.shape[1:] or x.dtype != first.dtype:
            raise ValueError(
                f"example {e.id!r} has inputs {tuple(x.shape)} {x.dtype}, which cannot be batched with "
                f"example {examples[0].id!r} ({tuple(first.shape)} {first.dtype}): all examples of a batch "
                "need the same kind of input and channel count"
            )
    has_target = [e.target is not None for e in examples]
    if any(has_target) and not all(has_target):
        missing = examples[has_target.index(False)].id
        raise ValueError(f"example {missing!r} has no target while others in the batch do")


def collate(examples: list[Example], pad_value: float = 0.0) -> Batch:
    """Pad a list of examples to the longest one in the list.

    Args:
        examples: non-empty list; all token inputs (T,) or all feature inputs (T, C) with the
            same C and dtype; all with targets or all without.
        pad_value: value written into pad positions of float feature inputs. Token inputs are
            always padded with id 0 (`TOKEN_PAD_ID`).

    Returns:
        A `Batch` on CPU; `inputs` keep the examples' dtype.

    Raises:
        ValueError: empty list, zero-length example, mixed input kinds/channel counts, some
            targets missing, or targets of different shapes.
    """
    _check_batch(examples)
    lengths = torch.tensor([e.inputs.shape[0] for e in examples], dtype=torch.int64)
    is_tokens = examples[0].inputs.ndim == 1
    fill = TOKEN_PAD_ID if is_tokens else pad_value
    inputs = pad_sequence([e.inputs for e in examples], batch_first=True, padding_value=fill)  # (B, T[, C])
    steps = inputs.shape[1]
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)  # (1, T) < (B, 1) -> (B, T)

    targets = None
    if examples[0].target is not None:
        shapes = {tuple(e.target.shape) for e in examples}
        if len(shapes) > 1:
            raise ValueError(f"targets in one batch must have the same shape, found {sorted(shapes)}")
        targets = torch.stack([e.target for e in examples])  # (B, *target_shape)
    return Batch(inputs=inputs, lengths=lengths, mask=mask, targets=targets, ids=[e.id for e in examples])


def truncate_examples(
    examples: Sequence[Example], max_length: int, *, keep: str = "head", head: float = 0.25
) -> tuple[list[Example], int]:
    """Cut every example longer than `max_length` steps.

    Args:
        examples: examples to cut (not modified).
        max_length: maximum number of steps to keep, >= 1.
        keep: "head" keeps the first `max_length` steps, "tail" keeps the last ones
            (e.g. when the recent end of a series predicts the label), "head_tail" keeps the first k and
            the last max_length - k (`rnnkit.data.longseq.kept_slices`).
        head: for "head_tail", k as a share of `max_length` (< 1) or a count of steps (>= 1).

    Returns:
        (new list of examples, number of examples that were truncated). Truncated examples are
        new objects whose inputs are copies (so the long original can be freed); the others are
        the same objects as in `examples`. Targets are kept unchanged.

    Raises:
        ValueError: max_length < 1, keep not in {"head", "tail", "head_tail"}, or a head that leaves
            no tail.
    """
    cut_to = Truncation(max_length, keep, head)
    cut_to.slices(max_length + 1)  # the arguments' errors, before any example
    out: list[Example] = []
    cut = 0
    for e in examples:
        if e.inputs.shape[0] <= max_length:
            out.append(e)
            continue
        out.append(replace(e, inputs=cut_to.cut(e.inputs)))
        cut += 1
    return out, cut


def make_loader(
    dataset: SequenceDataset,
    sampler: BucketBatchSampler,
    *,
    pad_value: float = 0.0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """DataLoader that draws index batches from `sampler` and pads them with `collate`.

    Args:
        dataset: the examples; must have as many items as the sampler has lengths.
        sampler: decides batch composition and order (and the resume position).
        pad_value: pad value for float feature inputs (see `collate`).
        num_workers: DataLoader worker processes (0 = collate in the main process).
        pin_memory: pin batches for faster host-to-GPU copies.

    Raises:
        ValueError: dataset and sampler sizes differ.
    """
    if len(dataset) != len(sampler.lengths):
        raise ValueError(
            f"sampler was built for {len(sampler.lengths)} examples but the dataset has {len(dataset)}"
        )
    # functools.partial of a module-level function stays picklable for worker processes.
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=functools.partial(collate, pad_value=pad_value),
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
