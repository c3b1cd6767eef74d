"""BucketBatchSampler: coverage, tightness, determinism, resume, checkpoint state and DDP split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnkit.data.sampler import BucketBatchSampler, padding_share


def _random_configs(count: int, seed: int = 1234):
    """Random (lengths, batch_size, chunk_batches, bucketing, shuffle) settings, small enough to be fast."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 400))
        lengths = rng.integers(1, 300, size=n).tolist()
        yield (
            lengths,
            int(rng.integers(1, 70)),
            int(rng.integers(1, 6)),
            bool(rng.integers(0, 2)),
            bool(rng.integers(0, 2)),
        )


def _lognormal_lengths(n: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.lognormal(np.log(40), 0.8, size=n)), 1, 400).astype(int).tolist()


def test_every_index_exactly_once_per_epoch():
    for lengths, bs, chunk, bucketing, shuffle in _random_configs(150):
        s = BucketBatchSampler(lengths, bs, chunk_batches=chunk, bucketing=bucketing, shuffle=shuffle, seed=7)
        for epoch in (0, 1, 5):
            batches = s.epoch_batches(epoch)
            flat = [i for b in batches for i in b]
            assert sorted(flat) == list(range(len(lengths))), (len(lengths), bs, chunk, bucketing, shuffle)
            sizes = [len(b) for b in batches]
            # all batches full except at most one short one
            assert sum(size != bs for size in sizes) <= 1
            assert all(1 <= size <= bs for size in sizes)
            assert len(batches) == len(s) == -(-len(lengths) // bs)


def test_drop_last_drops_only_the_short_batch():
    for lengths, bs, chunk, bucketing, shuffle in _random_configs(60, seed=99):
        s = BucketBatchSampler(lengths, bs, chunk_batches=chunk, bucketing=bucketing, shuffle=shuffle,
                               drop_last=True)
        batches = s.epoch_batches(2)
        assert all(len(b) == bs for b in batches)
        flat = [i for b in batches for i in b]
        assert len(set(flat)) == len(flat) == len(lengths) - len(lengths) % bs
        assert len(batches) == len(s)


def test_bucketing_padding_far_below_random_batches():
    lengths = _lognormal_lengths(20_000)
    bucketed = BucketBatchSampler(lengths, 64, seed=3)
    plain = BucketBatchSampler(lengths, 64, bucketing=False, seed=3)
    share_bucketed = padding_share(lengths, bucketed.epoch_batches(0))
    share_plain = padding_share(lengths, plain.epoch_batches(0))
    assert share_bucketed < 0.05
    assert share_plain > 0.6
    assert share_plain / share_bucketed > 10


def test_bucketed_batch_order_is_shuffled_not_sorted():
    # Sorting happens inside chunks; the batch order must still be random, or every epoch
    # would sweep from short to long sequences.
    lengths = _lognormal_lengths(5_000, seed=1)
    bucketed = BucketBatchSampler(lengths, 32, chunk_batches=10).epoch_batches(0)
    maxes = [max(lengths[i] for i in b) for b in bucketed]
    assert maxes != sorted(maxes)
    assert maxes != sorted(maxes, reverse=True)

    # and each batch is tight (cut from a length-sorted chunk), unlike a random mix
    def median_spread(batches):
        return np.median([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])

    random_batches = BucketBatchSampler(lengths, 32, bucketing=False).epoch_batches(0)
    assert median_spread(bucketed) * 5 < median_spread(random_batches)


def test_deterministic_per_seed_and_epoch_and_different_across_epochs():
    lengths = _lognormal_lengths(1_000)
    for bucketing in (True, False):
        a = BucketBatchSampler(lengths, 16, bucketing=bucketing, seed=11)
        b = BucketBatchSampler(lengths, 16, bucketing=bucketing, seed=11)
        other_seed = BucketBatchSampler(lengths, 16, bucketing=bucketing, seed=12)
        assert a.epoch_batches(4) == b.epoch_batches(4)
        assert a.epoch_batches(0) != a.epoch_batches(1)
        assert a.epoch_batches(0) != other_seed.epoch_batches(0)


def test_epoch_batches_is_pure():
    lengths = _lognormal_lengths(300)
    s = BucketBatchSampler(lengths, 8, seed=5)
    reference = s.epoch_batches(2)
    s.set_epoch(7, start=3)
    assert s.epoch_batches(2) == reference  # position state does not leak into the order
    assert (s.epoch, s.start) == (7, 3)
    list(s)
    assert s.epoch_batches(2) == reference


def test_iter_follows_set_epoch():
    lengths = _lognormal_lengths(300)
    s = BucketBatchSampler(lengths, 8, seed=5)
    assert list(s) == s.epoch_batches(0)
    s.set_epoch(3)
    assert list(s) == s.epoch_batches(3)
    assert list(s) == s.epoch_batches(3)  # iterating again repeats the epoch


@pytest.mark.parametrize("num_replicas", [1, 3])
def test_resume_mid_epoch_yields_exactly_the_remaining_batches(num_replicas):
    lengths = _lognormal_lengths(500, seed=2)
    for rank in range(num_replicas):
        s = BucketBatchSampler(lengths, 10, seed=9, num_replicas=num_replicas, rank=rank)
        s.set_epoch(4)
        full = list(s)
        for k in (0, 1, 7, len(full) - 1, len(full)):
            # interrupted run: consumed k batches, then a new process resumes
            resumed = BucketBatchSampler(lengths, 10, seed=9, num_replicas=num_replicas, rank=rank)
            resumed.set_epoch(4, start=k)
            rest = list(resumed)
            assert rest == full[k:]
            assert full[:k] + rest == full
            assert resumed.remaining == len(rest)


def test_resume_through_a_dataloader():
    lengths = _lognormal_lengths(200, seed=4)
    s = BucketBatchSampler(lengths, 8, seed=1)
    s.set_epoch(2)
    loader = torch.utils.data.DataLoader(range(len(lengths)), batch_sampler=s, collate_fn=list)
    full = list(loader)
    s.set_epoch(2, start=5)
    assert list(loader) == full[5:]


def test_state_dict_round_trip():
    lengths = _lognormal_lengths(400, seed=6)
    s = BucketBatchSampler(lengths, 12, seed=21, chunk_batches=4)
    s.set_epoch(6, start=9)
    state = s.state_dict()
    assert {"epoch", "start", "seed", "n", "batch_size"} <= state.keys()
    picked = (state["epoch"], state["start"], state["seed"], state["n"], state["batch_size"])
    assert picked == (6, 9, 21, 400, 12)

    fresh = BucketBatchSampler(lengths, 12, seed=21, chunk_batches=4)
    fresh.load_state_dict(state)
    assert (fresh.epoch, fresh.start) == (6, 9)
    assert list(fresh) == s.epoch_batches(6)[9:]
    assert fresh.state_dict() == state


def test_state_dict_is_json_serialisable():
    import json

    s = BucketBatchSampler([3, 1, 2], 2)
    assert json.loads(json.dumps(s.state_dict())) == s.state_dict()


@pytest.mark.parametrize(
    ("kwargs", "lengths", "word"),
    [
        ({}, list(range(1, 100)), "n (dataset size)"),
        ({"batch_size": 13}, list(range(1, 101)), "batch_size"),
        ({"seed": 22}, list(range(1, 101)), "seed"),
        ({"bucketing": False}, list(range(1, 101)), "bucketing"),
        ({}, list(range(2, 102)), "lengths fingerprint"),
    ],
)
def test_load_state_dict_refuses_a_different_setup(kwargs, lengths, word):
    saved = BucketBatchSampler(list(range(1, 101)), 12, seed=21)
    saved.set_epoch(1, start=2)
    args = {"batch_size": 12, "seed": 21} | kwargs
    other = BucketBatchSampler(lengths, args.pop("batch_size"), **args)
    with pytest.raises(ValueError, match="cannot resume") as info:
        other.load_state_dict(saved.state_dict())
    assert word in str(info.value)
    assert (other.epoch, other.start) == (0, 0)  # nothing half-loaded


def test_load_state_dict_refuses_different_size_with_numbers_in_message():
    saved = BucketBatchSampler([5] * 100, 8).state_dict()
    with pytest.raises(ValueError, match=r"n \(dataset size\) is 100 in the saved state but 99 now"):
        BucketBatchSampler([5] * 99, 8).load_state_dict(saved)


def test_load_state_dict_missing_keys():
    with pytest.raises(ValueError, match="missing keys"):
        BucketBatchSampler([1, 2], 1).load_state_dict({"epoch": 0})


def test_load_state_dict_across_ranks_and_world_sizes():
    lengths = _lognormal_lengths(300)
    rank0 = BucketBatchSampler(lengths, 8, num_replicas=2, rank=0)
    rank0.set_epoch(3, start=4)
    rank1 = BucketBatchSampler(lengths, 8, num_replicas=2, rank=1)
    rank1.load_state_dict(rank0.state_dict())  # every rank may load rank 0's state
    assert (rank1.epoch, rank1.start) == (3, 4)

    # a different world size is fine at an epoch boundary, not mid-epoch
    single = BucketBatchSampler(lengths, 8)
    with pytest.raises(ValueError, match="num_replicas"):
        single.load_state_dict(rank0.state_dict())
    rank0.set_epoch(4)
    single.load_state_dict(rank0.state_dict())
    assert (single.epoch, single.start) == (4, 0)


@pytest.mark.parametrize("num_replicas", [2, 3, 4, 7])
def test_ddp_ranks_disjoint_equal_count_and_covering(num_replicas):
    for lengths, bs, chunk, bucketing, shuffle in _random_configs(40, seed=num_replicas):
        common = {"chunk_batches": chunk, "bucketing": bucketing, "shuffle": shuffle, "seed": 3}
        global_batches = BucketBatchSampler(lengths, bs, **common).epoch_batches(1)
        per_rank = [
            BucketBatchSampler(lengths, bs, num_replicas=num_replicas, rank=r, **common)
            for r in range(num_replicas)
        ]
        shares = [s.epoch_batches(1) for s in per_rank]
        assert len({len(x) for x in shares}) == 1  # same count on every rank (DDP would hang otherwise)
        assert all(len(x) == len(s) for x, s in zip(shares, per_rank, strict=True))
        flat = [tuple(b) for x in shares for b in x]
        assert set(flat) == {tuple(b) for b in global_batches}  # covering
        padding = len(flat) - len(global_batches)
        assert 0 <= padding < num_replicas
        # the only duplicates are the padding batches, repeated from the start of the epoch
        expected_pad = [tuple(global_batches[i % len(global_batches)]) for i in range(padding)]
        counts = {b: flat.count(b) for b in set(flat)}
        extra = [b for b, c in counts.items() for _ in range(c - 1)]
        assert sorted(extra) == sorted(expected_pad)
        if len(global_batches) % num_replicas == 0:
            assert len(set(flat)) == len(flat)  # strictly disjoint


def test_ddp_drop_last_gives_disjoint_full_rounds():
    lengths = _lognormal_lengths(1_003)
    shares = [BucketBatchSampler(lengths, 10, num_replicas=3, rank=r, drop_last=True).epoch_batches(0)
              for r in range(3)]
    assert [len(x) for x in shares] == [33, 33, 33]  # 100 full batches -> 99 in complete rounds
    flat = [i for x in shares for b in x for i in b]
    assert len(flat) == len(set(flat)) == 990


def test_eval_order_is_globally_sorted_and_fixed():
    lengths = _lognormal_lengths(333, seed=8)
    s = BucketBatchSampler(lengths, 16, shuffle=False)
    batches = s.epoch_batches(0)
    flat_lengths = [lengths[i] for b in batches for i in b]
    assert flat_lengths == sorted(lengths)
    assert s.epoch_batches(5) == batches
    plain = BucketBatchSampler(lengths, 16, shuffle=False, bucketing=False).epoch_batches(3)
    assert [i for b in plain for i in b] == list(range(len(lengths)))


def test_padding_share_hand_computed():
    lengths = [1, 2, 3, 4]
    # positions: 2*2 + 2*4 = 12, real: 10
    assert padding_share(lengths, [[0, 1], [2, 3]]) == pytest.approx(2 / 12)
    assert padding_share(lengths, [[0, 3], [1, 2]]) == pytest.approx((3 + 1) / 14)
    assert padding_share(lengths, []) == 0.0


def test_len_matches_epoch_batches_for_all_settings():
    for n, bs, r, drop in itertools.product([1, 5, 64, 65, 129], [1, 4, 64], [1, 2, 5], [False, True]):
        for rank in range(r):
            s = BucketBatchSampler([3] * n, bs, num_replicas=r, rank=rank, drop_last=drop)
            assert len(s) == len(s.epoch_batches(0)), (n, bs, r, drop)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([], 4), {}, "non-empty"),
        (([1, 2], 0), {}, "batch_size"),
        (([1, 2], 2), {"chunk_batches": 0}, "chunk_batches"),
        (([1, 2], 2), {"num_replicas": 2, "rank": 2}, "rank"),
        (([1, 2], 2), {"seed": -1}, "seed"),
        (([1, -2], 2), {}, ">= 0"),
        (([1.5, 2.0], 2), {}, "integers"),
    ],
)
def test_invalid_settings_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BucketBatchSampler(*args, **kwargs)


def test_set_epoch_validates_start():
    s = BucketBatchSampler([1] * 10, 3)  # 4 batches
    s.set_epoch(0, start=4)
    assert list(s) == []
    with pytest.raises(ValueError, match=r"start must be in \[0, 4\]"):
        s.set_epoch(0, start=5)
    with pytest.raises(ValueError, match="epoch"):
        s.set_epoch(-1)


def test_evaluation_batches_hold_the_same_rows_whatever_their_order():
    """Equal lengths are ordered by the rows' content (`collate.content_keys`), not their position: a permuted
    dataset is cut into the same batches of the same rows (BLAS may round a row differently beside other rows)."""
    from rnnkit.data.collate import Example, SequenceDataset, content_keys

    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 50, size=int(rng.integers(3, 7))).tolist() for _ in range(60)]
    numeric = [rng.normal(size=(int(rng.integers(3, 6)), 2)).astype(np.float32) for _ in range(60)]
    perm = rng.permutation(60)
    for inputs in (rows, numeric):
        def batches(order, inputs=inputs):
            ds = SequenceDataset([Example(id=str(i), inputs=torch.as_tensor(inputs[i])) for i in order])
            keys = content_keys(ds)
            assert keys is not None and keys.dtype == np.uint64
            sampler = BucketBatchSampler(ds.length_array, 8, shuffle=False, tiebreak=keys)
            return [sorted(int(order[j]) for j in b) for b in sampler]
        assert batches(perm) == batches(np.arange(60))
    same = SequenceDataset([Example(id=k, inputs=torch.tensor(v)) for k, v in
                            (("a", [3, 4, 5]), ("b", [3, 4, 5]), ("c", [5, 4, 3]))])
    keys = content_keys(same)
    assert keys[0] == keys[1] != keys[2]  # equal content, equal key; the order of the values counts
