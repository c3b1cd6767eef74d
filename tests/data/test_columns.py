"""The columnar SequenceDataset (`rnnkit.data.columns`): what goes in comes back out, with its kind and dtype,
in less memory than one object per row."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rnnkit.data.collate import DatasetBuilder, Example, SequenceDataset, collate
from rnnkit.data.columns import Column, ColumnBuilder, IdsBuilder


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _assert_examples_equal(got: Example, want: Example) -> None:
    assert got.id == want.id
    assert _same(got.inputs, want.inputs)
    assert (got.target is None) == (want.target is None)
    if want.target is not None:
        assert _same(got.target, want.target)
    assert got.extra.keys() == want.extra.keys()
    for k in want.extra:
        assert _same(got.extra[k], want.extra[k]), k


def _mixed_examples() -> list[Example]:
    """Rows with every kind of value a family puts in an Example."""
    out = []
    for i in range(7):
        n = 1 + i % 4
        extra = {"origin": 10 * i, "scale": np.arange(3, dtype=np.float64) + i, "series": f"s{i % 2}",
                 "chars": torch.arange(n * 2, dtype=torch.long).reshape(n, 2), "references": [(1, 2), (i,)]}
        if i % 3 == 0:
            del extra["origin"]  # a key some rows lack
        if i == 5:
            extra["late"] = torch.tensor([1.5])  # a key first seen late
        out.append(Example(id=f"train.csv:{i + 2}", inputs=torch.arange(n, dtype=torch.long) + i,
                           target=torch.arange(n, dtype=torch.long) % 2, extra=extra))
    return out


def test_every_kind_of_value_comes_back_as_it_went_in():
    examples = _mixed_examples()
    ds = SequenceDataset(examples)
    assert len(ds) == len(examples) and ds.lengths == [len(e) for e in examples]
    for i, want in enumerate(examples):
        _assert_examples_equal(ds[i], want)
    _assert_examples_equal(ds[-1], examples[-1])
    with pytest.raises(IndexError):
        ds[len(examples)]


def test_examples_is_a_lazy_sequence_that_indexes_slices_and_iterates():
    examples = _mixed_examples()
    ds = SequenceDataset(examples)
    view = ds.examples
    assert len(view) == len(examples)
    assert [e.id for e in view] == [e.id for e in examples]
    assert [e.id for e in view[2:5]] == [e.id for e in examples[2:5]] and isinstance(view[2:5], list)
    assert view[-2].id == examples[-2].id
    plain = SequenceDataset([Example(e.id, e.inputs, torch.tensor(len(e) % 2)) for e in examples])
    batch = collate(plain.examples[:3])
    assert batch.inputs.shape == (3, 3) and batch.targets.tolist() == [1, 0, 1]


def test_token_ids_are_stored_as_int32_and_read_back_as_int64():
    b = DatasetBuilder()
    b.add("a.csv:2", [5, 6, 7], torch.tensor(1))
    b.add("a.csv:3", [8], torch.tensor(0))
    ds = b.build()
    assert ds._inputs.values.dtype == np.int32  # the storage
    x = ds[0].inputs
    assert x.dtype == torch.int64 and x.tolist() == [5, 6, 7]
    assert ds[1].target.dtype == torch.int64 and ds[1].target.dim() == 0 and int(ds[1].target) == 0
    assert ds.scalar_targets().tolist() == [1, 0]


def test_int64_values_beyond_int32_are_kept_exactly():
    big = 2**40
    ds = SequenceDataset([Example("a:1", torch.tensor([1, big])), Example("a:2", torch.tensor([-big]))])
    assert ds[0].inputs.tolist() == [1, big] and ds[1].inputs.tolist() == [-big]
    b = DatasetBuilder()
    b.add("x:1", [1, 2])
    b.add("x:2", [big])  # a list past int32 widens the column
    ds = b.build()
    assert ds[0].inputs.tolist() == [1, 2] and ds[1].inputs.tolist() == [big]


def test_float_inputs_are_views_of_one_flat_column():
    examples = [Example(f"s{i}", torch.randn(3 + i, 2)) for i in range(4)]
    ds = SequenceDataset(examples)
    a, b = ds[1].inputs, ds[1].inputs
    assert a.dtype == torch.float32 and a.data_ptr() == b.data_ptr()  # no copy per access
    assert ds._inputs.values.shape == (sum(len(e) for e in examples), 2) and ds._inputs.ragged


def test_rows_of_one_shape_are_stacked_without_offsets():
    ds = SequenceDataset([Example(f"w:{i}", torch.randn(5, 3), torch.randn(2, 3)) for i in range(6)])
    assert ds._inputs.offsets is None and ds._inputs.values.shape == (6, 5, 3)
    assert ds._target.offsets is None and ds._target.values.shape == (6, 2, 3)


def test_missing_targets_and_none_values_are_kept_apart():
    ds = SequenceDataset([Example("a:1", torch.tensor([1]), torch.tensor(1), {"k": None}),
                          Example("a:2", torch.tensor([2]), None, {}),
                          Example("a:3", torch.tensor([3]), torch.tensor(0), {"k": np.ones(2)})])
    assert int(ds[0].target) == 1 and ds[1].target is None and int(ds[2].target) == 0
    assert ds[0].extra == {"k": None} and ds[1].extra == {} and np.array_equal(ds[2].extra["k"], np.ones(2))
    assert ds.scalar_targets() is None  # one is missing: no single array


def test_mixed_kinds_fall_back_to_the_objects_themselves():
    col = ColumnBuilder()
    for v in (torch.tensor([1.0]), torch.tensor([2.0]), "three", torch.tensor([4])):
        col.append(v)
    done = col.finish()
    assert done.objects is not None
    assert torch.equal(done.get(0), torch.tensor([1.0])) and done.get(2) == "three" and done.get(3).dtype == torch.int64


def test_ids_of_file_and_line_are_two_numbers_and_other_ids_a_blob():
    b = IdsBuilder()
    for rid in ("train.csv:2", "train.csv:3", "val.csv:10"):
        b.append(rid)
    ids = b.finish()
    assert ids.blob is None and ids.prefixes == ("train.csv", "val.csv")
    assert [ids.get(i) for i in range(3)] == ["train.csv:2", "train.csv:3", "val.csv:10"]
    b = IdsBuilder()
    odd = ["f.csv:1", "f.csv:007", "user-id-ü", "x:", "f.jsonl:stream 0:steps 0-5"]
    for rid in odd:
        b.append(rid)
    ids = b.finish()
    assert ids.blob is not None and [ids.get(i) for i in range(len(odd))] == odd  # "007" keeps its zeros


def test_subset_takes_rows_in_the_given_order():
    examples = _mixed_examples()
    ds = SequenceDataset(examples)
    picked = [5, 0, 3, 3]
    sub = ds.subset(picked)
    assert len(sub) == 4 and sub.lengths == [len(examples[i]) for i in picked]
    for got, i in zip(sub.examples, picked, strict=True):
        _assert_examples_equal(got, examples[i])
    assert len(ds.subset([])) == 0


def test_pickles_for_loader_workers_and_packs_empty():
    ds = SequenceDataset(_mixed_examples())
    back = pickle.loads(pickle.dumps(ds))
    for i in range(len(ds)):
        _assert_examples_equal(back[i], ds[i])
    empty = SequenceDataset([])
    assert len(empty) == 0 and empty.lengths == [] and list(empty.examples) == []


def test_a_short_token_row_costs_its_values_and_a_few_bytes():
    b = DatasetBuilder()
    rows = 10_000
    for i in range(rows):
        b.add(f"train.csv:{i + 2}", [1 + (i + j) % 50 for j in range(9)], torch.tensor(i % 2))
    ds = b.build()
    # 9 int32 ids (36 B) + an int64 offset + an int32 target + id (int32 file index + int64 line)
    assert ds.nbytes / rows <= 36 + 8 + 4 + 12 + 1
    assert isinstance(ds._target, Column) and ds._target.values.dtype == np.int32
