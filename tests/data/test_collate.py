"""collate / Batch / SequenceDataset / truncate_examples / make_loader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.data.collate import Batch, Example, SequenceDataset, collate, make_loader, truncate_examples
from rnnkit.data.sampler import BucketBatchSampler


def _token_examples(lengths, with_target=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Example(
            id=f"train.csv:{i + 2}",
            inputs=torch.randint(1, 100, (n,), generator=g),
            target=torch.tensor(i % 3) if with_target else None,
        )
        for i, n in enumerate(lengths)
    ]


def _float_examples(lengths, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Example(id=f"s{i}", inputs=torch.randn(n, channels, generator=g), target=torch.tensor(i % 2))
        for i, n in enumerate(lengths)
    ]


def test_token_batch_shapes_padding_mask_and_lengths():
    examples = _token_examples([3, 5, 1])
    batch = collate(examples)
    assert batch.inputs.shape == (3, 5) and batch.inputs.dtype == torch.int64
    assert batch.lengths.tolist() == [3, 5, 1] and batch.lengths.dtype == torch.int64
    assert batch.mask.dtype == torch.bool
    assert batch.mask.tolist() == [
        [True, True, True, False, False],
        [True] * 5,
        [True, False, False, False, False],
    ]
    for row, e in enumerate(examples):
        n = len(e.inputs)
        assert torch.equal(batch.inputs[row, :n], e.inputs)
        assert (batch.inputs[row, n:] == 0).all()  # token pad id is 0 whatever pad_value is
    assert batch.ids == [e.id for e in examples]
    assert batch.targets.tolist() == [0, 1, 2] and batch.targets.shape == (3,)
    assert batch.real_tokens == 9
    assert batch.padded_positions == 15
    assert len(batch) == 3
    assert torch.equal(collate(examples, pad_value=7.0).inputs, batch.inputs)


def test_float_batch_pads_with_pad_value_and_keeps_real_values():
    examples = _float_examples([4, 2], channels=3)
    batch = collate(examples, pad_value=-5.0)
    assert batch.inputs.shape == (2, 4, 3) and batch.inputs.dtype == torch.float32
    assert torch.equal(batch.inputs[0], examples[0].inputs)
    assert torch.equal(batch.inputs[1, :2], examples[1].inputs)
    assert (batch.inputs[1, 2:] == -5.0).all()
    assert batch.mask.sum(dim=1).tolist() == [4, 2]
    assert torch.equal(batch.mask.sum(dim=1), batch.lengths)


def test_no_targets_gives_none():
    batch = collate(_token_examples([2, 3], with_target=False))
    assert batch.targets is None


def test_to_moves_tensors_but_keeps_lengths_on_cpu():
    batch = collate(_float_examples([3, 1]))
    # the meta device stands in for an accelerator: it is a different device on any machine
    moved = batch.to("meta")
    assert moved.inputs.device.type == "meta"
    assert moved.mask.device.type == "meta"
    assert moved.targets.device.type == "meta"
    assert moved.lengths.device.type == "cpu"
    assert moved.ids == batch.ids
    assert batch.inputs.device.type == "cpu"  # the original is untouched
    assert batch.to("cpu", non_blocking=True).lengths.device.type == "cpu"
    assert collate(_token_examples([2], with_target=False)).to("meta").targets is None


@pytest.mark.parametrize(
    ("examples", "match"),
    [
        ([], "empty"),
        ([Example("a", torch.zeros(0, dtype=torch.int64), None)], "length 0"),
        ([Example("a", torch.ones(2, dtype=torch.int64), None), Example("b", torch.ones(2, 3), None)], "'b'"),
        ([Example("a", torch.ones(2, 3), None), Example("b", torch.ones(2, 4), None)], "channel count"),
        ([Example("a", torch.ones(2, 3, 1), None)], "shape"),
        ([Example("a", torch.ones(2, dtype=torch.int64), torch.tensor(1)),
          Example("b", torch.ones(2, dtype=torch.int64), None)], "'b' has no target"),
        ([Example("a", torch.ones(2, dtype=torch.int64), torch.zeros(2)),
          Example("b", torch.ones(2, dtype=torch.int64), torch.zeros(3))], "same shape"),
    ],
)
def test_collate_rejects_unbatchable_examples(examples, match):
    with pytest.raises(ValueError, match=match):
        collate(examples)


def test_truncate_head_and_tail_and_count():
    examples = _token_examples([2, 10, 6, 4])
    head, n_head = truncate_examples(examples, 4)
    tail, n_tail = truncate_examples(examples, 4, keep="tail")
    assert n_head == n_tail == 2
    assert [len(e) for e in head] == [2, 4, 4, 4]
    assert torch.equal(head[1].inputs, examples[1].inputs[:4])
    assert torch.equal(tail[1].inputs, examples[1].inputs[-4:])
    assert torch.equal(tail[2].inputs, examples[2].inputs[2:])
    assert head[0] is examples[0] and head[3] is examples[3]  # short ones are not copied
    assert head[1].id == examples[1].id and torch.equal(head[1].target, examples[1].target)
    assert len(examples[1]) == 10  # originals untouched
    head[1].inputs[0] = -1
    assert examples[1].inputs[0] != -1  # truncated inputs are copies, not views


def test_truncate_feature_inputs_and_noop():
    examples = _float_examples([8, 3], channels=2)
    out, n = truncate_examples(examples, 5, keep="tail")
    assert n == 1 and out[0].inputs.shape == (5, 2)
    assert torch.equal(out[0].inputs, examples[0].inputs[3:])
    same, n0 = truncate_examples(examples, 100)
    assert n0 == 0 and all(a is b for a, b in zip(same, examples, strict=True))


@pytest.mark.parametrize(("max_length", "keep", "match"), [(0, "head", "max_length"), (3, "middle", "keep")])
def test_truncate_rejects_bad_arguments(max_length, keep, match):
    with pytest.raises(ValueError, match=match):
        truncate_examples(_token_examples([5]), max_length, keep=keep)


def test_sequence_dataset_lengths():
    examples = _float_examples([4, 1, 7])
    ds = SequenceDataset(examples)
    assert len(ds) == 3
    got = ds[2]  # rebuilt from the columns: equal to what was packed, not the same object
    assert got.id == "s2" and torch.equal(got.inputs, examples[2].inputs)
    assert torch.equal(got.target, examples[2].target)
    assert got.inputs.dtype == torch.float32 and got.target.dtype == torch.int64
    assert ds.lengths == [4, 1, 7]
    assert ds.lengths() == [4, 1, 7]  # both spellings are accepted
    ds.lengths.append(99)  # a fresh list each time: callers cannot corrupt the dataset
    assert ds.lengths == [4, 1, 7]


def test_make_loader_yields_every_example_once_in_sampler_order():
    lengths = np.random.default_rng(0).integers(1, 50, size=101).tolist()
    ds = SequenceDataset(_token_examples(lengths))
    sampler = BucketBatchSampler(ds.lengths, 8, seed=4)
    sampler.set_epoch(1)
    loader = make_loader(ds, sampler)
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches)
    expected = [[ds[i].id for i in idx] for idx in sampler.epoch_batches(1)]
    assert [b.ids for b in batches] == expected
    assert sorted(i for b in batches for i in b.ids) == sorted(e.id for e in ds.examples)
    # each batch is padded to its own longest example only
    assert all(b.inputs.shape[1] == int(b.lengths.max()) for b in batches)
    sampler.set_epoch(1, start=3)
    assert [b.ids for b in make_loader(ds, sampler)] == expected[3:]


def test_make_loader_collate_is_picklable_for_workers():
    ds = SequenceDataset(_float_examples([2, 3]))
    loader = make_loader(ds, BucketBatchSampler(ds.lengths, 2), pad_value=1.5)
    fn = pickle.loads(pickle.dumps(loader.collate_fn))
    assert (fn(ds.examples).inputs[0, 2] == 1.5).all()


def test_make_loader_rejects_size_mismatch():
    ds = SequenceDataset(_float_examples([2, 3]))
    with pytest.raises(ValueError, match="3 examples but the dataset has 2"):
        make_loader(ds, BucketBatchSampler([2, 3, 4], 2))


def test_masked_lstm_output_does_not_depend_on_pad_value():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, batch_first=True)
    examples = _float_examples([6, 2, 4], channels=3)

    def pooled(pad_value):
        b = collate(examples, pad_value=pad_value)
        packed = pack_padded_sequence(b.inputs, b.lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True)  # (B, T, H)
        m = b.mask.unsqueeze(-1)  # (B, T, 1)
        return (out * m).sum(1) / m.sum(1)

    assert torch.allclose(pooled(0.0), pooled(1e6), atol=0, rtol=0)
