"""Columnar storage for encoded sequences: per column one flat value array, plus int64 offsets for ragged rows.

A split of a million short rows held as a million `Example`s costs about 2.6 KB a row (a dataclass, its dicts
and two small tensors, each with its own storage). Held here, a row costs its values (token ids as int32,
features as float32) plus 8 bytes of offset per ragged column and a few bytes of id; `SequenceDataset`
(`rnnkit.data.collate`) rebuilds an `Example` from the columns when it is indexed.

Invariants:
1. Row i of a ragged column is ``values[offsets[i]:offsets[i + 1]]`` (shape ``(n_i, *tail)``); offsets are
   int64, start at 0 and never decrease. A column whose rows all have the same shape is stacked instead
   (``values[i]``; scalars ``values`` of shape (rows,)), and has no offsets.
2. A column gives back what it was given: a tensor as a tensor of its dtype (int64 is stored as int32 when
   every value fits and widened again on read), an ndarray as an ndarray, a Python int or float as one.
   Anything else (a list, a string, rows of mixed kinds or shapes) is kept as the Python object itself.
3. A row reads back as absent (`ABSENT`) or None exactly when it was appended so (an `Example` without a
   target, an `extra` key a row lacks).
4. Tensors and arrays read from float columns are views of the column (no copy); widened int columns are
   copies. Nothing here writes into a value it gave out.
"""

from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.data.ids import Ids, IdsBuilder

ABSENT = object()  # a row that has no value in this column (Example.extra without the key)
_PRESENT, _MISSING, _NONE = 0, 1, 2
_TYPECODES = {np.dtype(np.float32): "f", np.dtype(np.float64): "d", np.dtype(np.int32): "i",
              np.dtype(np.int16): "h", np.dtype(np.int8): "b", np.dtype(np.uint8): "B", np.dtype(np.bool_): "B"}
_INT32 = np.iinfo(np.int32)


def _typecode(dtype: np.dtype) -> str | None:
    """The array.array typecode that stores `dtype` (int64 starts as int32, `ColumnBuilder` widens it)."""
    if dtype == np.int64:
        return "i"
    return _TYPECODES.get(dtype)


def _numpy_of(value) -> tuple[str, np.ndarray] | None:
    """(kind, the value as an ndarray) for the values a column stores as numbers; None for any other value."""
    if isinstance(value, torch.Tensor):
        return "tensor", value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return "ndarray", value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int", np.asarray(value, dtype=np.int64)
    if isinstance(value, float):
        return "float", np.asarray(value, dtype=np.float64)
    return None


class ColumnBuilder:
    """Appends rows into one growing flat buffer (array.array: no per-row Python object is kept)."""

    def __init__(self, *, lists_as_tensors: bool = False) -> None:
        self.lists_as_tensors = lists_as_tensors  # a flat list of ints is an int64 tensor row (token ids)
        self.rows = 0
        self.kind: str | None = None  # tensor | ndarray | int | float, fixed by the first value
        self.dtype: np.dtype | None = None  # the dtype the values had (and get back)
        self.scalar = False  # rows are 0-d
        self.tail: tuple[int, ...] = ()  # the shape after the first axis
        self.buf: array.array | None = None
        self.offsets = array.array("q", [0])  # in rows of `tail`; for scalars one step per row
        self.state: array.array | None = None  # _PRESENT / _MISSING / _NONE per row, once any row is not present
        self.objects: list | None = None  # the fallback: the values themselves

    # -- appending -------------------------------------------------------------------------------------------
    def append(self, value) -> None:
        """Add one row: a tensor, ndarray, int or float (stored flat), `ABSENT` or None, or any other object."""
        if self.objects is not None:
            self.objects.append(value)
        elif value is ABSENT or value is None:
            self._mark(_MISSING if value is ABSENT else _NONE)
        elif self.lists_as_tensors and type(value) is list and self._ints(value):
            pass  # token ids straight from a vocabulary: one extend, no tensor made
        else:
            found = _numpy_of(value)
            if found is None or not self._accepts(*found):
                self._to_objects()
                self.objects.append(value)
            else:
                self._push(found[1])
        self.rows += 1

    def _mark(self, how: int) -> None:
        if self.state is None:
            self.state = array.array("B", bytes(self.rows))
        self.state.append(how)
        if self.kind is None:
            return  # `_start` lays out the rows before the first value
        self.offsets.append(self.offsets[-1] + (1 if self.scalar else 0))
        if self.scalar:
            self.buf.append(0)

    def _mark_present(self) -> None:
        if self.state is not None:
            self.state.append(_PRESENT)

    def _ints(self, values: list) -> bool:
        """Append a flat list of Python ints as an int64 tensor row; False (nothing appended) for anything else."""
        if self.kind is None:
            if not values or type(values[0]) is not int:
                return False
            self._start("tensor", np.dtype(np.int64), scalar=False, tail=())
        elif self.kind != "tensor" or self.dtype != np.int64 or self.scalar or self.tail:
            return False
        start = len(self.buf)
        try:
            self.buf.extend(values)
        except OverflowError:
            del self.buf[start:]
            self._widen()
            self.buf.extend(values)
        except TypeError:  # not all ints
            del self.buf[start:]
            return False
        self.offsets.append(self.offsets[-1] + len(values))
        self._mark_present()
        return True

    def _start(self, kind: str, dtype: np.dtype, *, scalar: bool, tail: tuple) -> None:
        self.kind, self.dtype, self.scalar, self.tail = kind, dtype, scalar, tail
        self.buf = array.array(_typecode(dtype), [0] * self.rows if scalar else [])
        self.offsets = array.array("q", range(self.rows + 1)) if scalar else array.array("q", [0] * (self.rows + 1))

    def _accepts(self, kind: str, arr: np.ndarray) -> bool:
        if self.kind is None:
            if _typecode(arr.dtype) is None or arr.dtype.byteorder == ">":
                return False
            self._start(kind, arr.dtype, scalar=arr.ndim == 0, tail=tuple(arr.shape[1:]))
            return True
        return (kind == self.kind and arr.dtype == self.dtype and (arr.ndim == 0) == self.scalar
                and tuple(arr.shape[1:]) == self.tail)

    def _push(self, arr: np.ndarray) -> None:
        if self.buf.typecode == "i" and self.dtype == np.int64 and arr.size and (
                arr.max() > _INT32.max or arr.min() < _INT32.min):
            self._widen()
        flat = np.ascontiguousarray(arr, dtype=np.dtype(self.buf.typecode) if self.dtype != np.bool_ else np.uint8)
        self.buf.frombytes(flat.reshape(-1).view(np.uint8))
        self.offsets.append(self.offsets[-1] + (1 if self.scalar else int(arr.shape[0])))
        self._mark_present()

    def _widen(self) -> None:
        self.buf = array.array("q", self.buf)

    def _to_objects(self) -> None:
        """Turn the rows so far back into objects (rows of mixed kinds): every later row is kept as given."""
        done = self.finish()
        self.objects = [done.get(i) for i in range(self.rows)]
        self.buf = self.state = None

    # -- finishing -------------------------------------------------------------------------------------------
    def finish(self) -> Column:
        """The column, read-only from here on (the buffers are shared, not copied)."""
        if self.objects is not None:
            return Column(rows=self.rows, objects=self.objects)
        state = None if self.state is None else np.frombuffer(self.state, dtype=np.uint8)
        if self.kind is None:  # nothing but absent rows (or none at all)
            return Column(rows=self.rows, state=state if state is not None else np.zeros(0, np.uint8))
        stored = np.dtype(self.buf.typecode) if self.dtype != np.bool_ else np.dtype(np.uint8)
        values = np.frombuffer(self.buf, dtype=stored) if len(self.buf) else np.zeros(0, stored)
        if self.dtype == np.bool_:
            values = values.view(np.bool_)
        offsets = np.frombuffer(self.offsets, dtype=np.int64)
        if self.scalar:
            return Column(rows=self.rows, kind=self.kind, dtype=self.dtype, values=values, state=state)
        values = values.reshape(-1, *self.tail)
        steps = np.diff(offsets)
        if self.rows and state is None and (steps == steps[0]).all():  # every row the same shape: stacked
            return Column(rows=self.rows, kind=self.kind, dtype=self.dtype,
                          values=values.reshape(self.rows, int(steps[0]), *self.tail))
        return Column(rows=self.rows, kind=self.kind, dtype=self.dtype, values=values, offsets=offsets, state=state)


def int64_column(values: np.ndarray, offsets: np.ndarray | None = None) -> Column:
    """The column `ColumnBuilder` builds from int64 tensor rows appended one by one, built at once: `offsets` None,
    one 0-d row per value (class indices); else row i is values[offsets[i]:offsets[i + 1]] (token ids), at least
    one row and every row non-empty. Stored as int32 when every value fits, as the builder stores them."""
    fits = values.size == 0 or (int(values.max()) <= _INT32.max and int(values.min()) >= _INT32.min)
    stored = np.ascontiguousarray(values, dtype=np.int32 if fits else np.int64)
    int64 = np.dtype(np.int64)
    if offsets is None:
        return Column(rows=len(values), kind="tensor", dtype=int64, values=stored)
    rows, steps = len(offsets) - 1, np.diff(offsets)
    if rows < 1 or (steps < 1).any():
        raise ValueError("int64_column needs at least one row and no empty row (ColumnBuilder keeps those as objects)")
    if (steps == steps[0]).all():
        return Column(rows=rows, kind="tensor", dtype=int64, values=stored.reshape(rows, int(steps[0])))
    return Column(rows=rows, kind="tensor", dtype=int64, values=stored,
                  offsets=np.ascontiguousarray(offsets, dtype=np.int64))


@dataclass(frozen=True)
class Column:
    """One finished column (see the module's invariants). Exactly one of `objects` / `values` holds rows,
    unless every row is absent."""

    rows: int
    kind: str | None = None
    dtype: np.dtype | None = None
    values: np.ndarray | None = None  # scalar: (rows,); stacked: (rows, n, *tail); ragged: (sum n_i, *tail)
    offsets: np.ndarray | None = None  # ragged only: (rows + 1,) int64
    state: np.ndarray | None = None  # (rows,) uint8 _PRESENT / _MISSING / _NONE, or None: every row present
    objects: list | None = None

    @property
    def ragged(self) -> bool:
        return self.offsets is not None

    def get(self, i: int):
        """Row i as it was appended (`ABSENT` for a missing row)."""
        if self.objects is not None:
            return self.objects[i]
        if self.state is not None and self.state[i] != _PRESENT:
            return ABSENT if self.state[i] == _MISSING else None
        if self.offsets is not None:
            v = self.values[self.offsets[i]:self.offsets[i + 1]]
        elif self.values.ndim == 1:  # scalars: a 0-d view
            v = self.values[i:i + 1].reshape(())
        else:
            v = self.values[i]
        return self._present(v)

    def _present(self, v: np.ndarray):
        if self.kind == "int":
            return int(v)
        if self.kind == "float":
            return float(v)
        if v.dtype != self.dtype:
            v = v.astype(self.dtype)  # int32 storage of int64 values: widened (a copy)
        return torch.from_numpy(v) if self.kind == "tensor" else v

    def row_lengths(self) -> np.ndarray:
        """(rows,) int64: the first-axis length of every row (0 for absent rows and scalars)."""
        if self.objects is not None:
            return np.asarray([len(x) if hasattr(x, "__len__") else 0 for x in self.objects], dtype=np.int64)
        if self.offsets is not None:
            return np.diff(self.offsets)
        if self.values is None or self.values.ndim == 1:
            return np.zeros(self.rows, dtype=np.int64)
        return np.full(self.rows, self.values.shape[1], dtype=np.int64)

    def take(self, index: np.ndarray) -> Column:
        """A new column of rows `index` (int array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        if self.objects is not None:
            return Column(rows=len(index), objects=[self.objects[i] for i in index])
        state = None if self.state is None else self.state[index]
        if self.values is None:
            return Column(rows=len(index), state=state)
        if self.offsets is None:
            return Column(rows=len(index), kind=self.kind, dtype=self.dtype, values=self.values[index], state=state)
        starts, steps = self.offsets[index], np.diff(self.offsets)[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(steps, out=offsets[1:])
        # the position of every kept step: start of its row + its place in the row
        where = np.repeat(starts - offsets[:-1], steps) + np.arange(offsets[-1], dtype=np.int64)
        return Column(rows=len(index), kind=self.kind, dtype=self.dtype, values=self.values[where], offsets=offsets,
                      state=state)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (objects: counted as one pointer each; their own size is not known here)."""
        if self.objects is not None:
            return 8 * len(self.objects)
        return sum(a.nbytes for a in (self.values, self.offsets, self.state) if a is not None)

    def digest_parts(self) -> list[bytes | memoryview]:
        """Buffers that identify the column's content (for a data fingerprint); objects by their repr."""
        if self.objects is not None:
            return [repr(self.objects).encode()]
        parts = [f"{self.kind}|{self.dtype}|{self.rows}|".encode()]
        for a in (self.values, self.offsets, self.state):
            parts.append(b"-" if a is None else np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
        return parts


__all__ = ["ABSENT", "Column", "ColumnBuilder", "Ids", "IdsBuilder", "int64_column"]
