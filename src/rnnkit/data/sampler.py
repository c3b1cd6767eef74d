"""Length-bucketed, resumable, DDP-aware batch sampler.

Why: an RNN runs one step per time position of the *padded* batch, so a batch that mixes a
10-step and a 300-step sequence pays for 300 steps on every row. Sorting by length inside
large random chunks keeps batches tight while the chunk shuffle and the batch-order shuffle
keep the training order random enough for SGD.

The sampler is deliberately stateless about progress: the batch list of an epoch is a pure
function of (seed, epoch, lengths, settings), and the *training loop* tells the sampler where
to start (`set_epoch(epoch, start=k)`) when it resumes after k batches. A DataLoader prefetches,
so the sampler itself cannot know how many batches were really consumed.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

# Settings that decide the global batch order. A state saved under other values would make
# `start` point into a different batch list, so load_state_dict refuses a mismatch.
_ORDER_KEYS = ("bucketing", "chunk_batches", "shuffle", "drop_last", "passes")


def _lengths_crc(lengths: np.ndarray) -> int:
    """Cheap fingerprint of the length list: same n but different data must not resume silently."""
    return zlib.crc32(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields lists of dataset indices, one list per batch.

    Ordering (per epoch, `rng = numpy.random.default_rng([seed, epoch])`):

    * ``shuffle=True, bucketing=True`` (default, training): permute all indices with `rng`;
      cut the permutation into chunks of ``chunk_batches * batch_size`` indices (a trailing
      remainder shorter than a chunk joins the chunk before it, so no chunk but a lone one is
      smaller than ``chunk_batches`` batches); sort each chunk by length (stable, so equal
      lengths keep their random order); cut each chunk into batches of ``batch_size``;
      shuffle the order of all batches with `rng`.
    * ``shuffle=True, bucketing=False``: permute all indices and cut into batches (plain
      random batches).
    * ``shuffle=False, bucketing=True`` (evaluation): sort *all* indices by length
      (stable, ascending; equal lengths by ``tiebreak`` when given) and cut into batches - tightest
      possible batches, no randomness.
    * ``shuffle=False, bucketing=False``: file order cut into batches.

    Invariants (checked by tests/data/test_sampler.py):

    1. With ``num_replicas=1`` and ``drop_last=False`` every index in ``range(len(lengths))``
       appears in exactly one batch of every epoch.
    2. Every batch has ``batch_size`` indices except at most one shorter batch per epoch
       (all chunks but the last hold a whole number of batches, so only the last chunk can
       end short). With ``drop_last=True`` that short batch is dropped, so each epoch misses
       ``len(lengths) % batch_size`` indices.
    3. ``epoch_batches(e)`` depends only on (seed, e, lengths, settings); it never reads or
       changes ``self.epoch`` / ``self.start``. Different epochs give different orders
       (when shuffling).
    4. ``list(iter(self)) == epoch_batches(self.epoch)[self.start:]``; iterating again
       without ``set_epoch`` repeats the same batches (the position is the loop's business).
    5. ``len(self)`` is the number of batches this rank gets in a full epoch, whatever
       ``start`` is; ``self.remaining`` is ``len(self) - start``.

    Distributed (``num_replicas > 1``): the global batch list of the epoch (identical on all
    ranks, because it depends only on the seed) is padded by repeating batches from its start
    until its length is a multiple of ``num_replicas`` - like
    ``torch.utils.data.DistributedSampler`` - and rank ``r`` takes batches ``r, r + R, ...``.
    All ranks thus get the same number of batches (DDP needs that: an uneven count deadlocks
    the all-reduce), the real batches are split disjointly, and the only duplicates are the
    < ``num_replicas`` padding batches, which are repeats of the first batches of the epoch.
    With ``drop_last=True`` the trailing batches that do not fill a round are dropped instead
    of padding.

    Several passes per epoch (``passes=k > 1``, a training set too small to make an epoch of a
    useful number of steps): the epoch's batch list is the k pass lists one after another, pass 0
    ordered as above and pass p > 0 with ``default_rng([seed, epoch, p])``; every index then appears
    in exactly k batches of the epoch (invariant 1 per pass), and ``passes=1`` is the order above
    bit for bit.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        bucketing: bool = True,
        chunk_batches: int = 100,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        passes: int = 1,
        tiebreak: np.ndarray | None = None,
    ) -> None:
        """Args:
            lengths: length (number of steps) of every example, in dataset order.
            batch_size: examples per batch (per rank), >= 1.
            bucketing: sort by length inside chunks (shuffle=True) or globally (shuffle=False).
            chunk_batches: chunk size in batches; larger = tighter batches, less randomness.
            shuffle: randomise the order; False gives a deterministic evaluation order.
            seed: non-negative base seed; the epoch's generator is seeded with (seed, epoch).
            drop_last: drop the short batch (and, with DDP, the batches of an incomplete round).
            num_replicas: number of DDP ranks.
            rank: this process's rank in ``[0, num_replicas)``.
            passes: passes over the data per epoch (>= 1; see the class docstring).
            tiebreak: (N,) keys that order examples of equal length in the evaluation order (shuffle=False,
                bucketing=True), e.g. `collate.content_keys`: the same rows then form the same batches whatever
                their order in the dataset (BLAS kernels may round a row differently beside other rows).

        Raises:
            ValueError: empty or negative lengths, or an out-of-range setting.
        """
        lens = np.asarray(lengths)
        if lens.ndim != 1 or lens.size == 0:
            raise ValueError(
                f"lengths must be a non-empty 1-D sequence of ints, got shape {lens.shape}; "
                "a sampler needs at least one example"
            )
        if not np.issubdtype(lens.dtype, np.integer):
            raise ValueError(f"lengths must be integers, got dtype {lens.dtype}")
        if (lens < 0).any():
            bad = int(np.flatnonzero(lens < 0)[0])
            raise ValueError(f"lengths must be >= 0, found {int(lens[bad])} at index {bad}")
        for name, value, low in (("batch_size", batch_size, 1), ("chunk_batches", chunk_batches, 1),
                                 ("num_replicas", num_replicas, 1), ("seed", seed, 0), ("passes", passes, 1)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")

        self.lengths = lens.astype(np.int64)
        self.batch_size = int(batch_size)
        self.bucketing = bool(bucketing)
        self.chunk_batches = int(chunk_batches)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.passes = int(passes)
        if tiebreak is not None and np.shape(tiebreak) != lens.shape:
            raise ValueError(f"tiebreak must hold one key per example ({lens.size}), got shape {np.shape(tiebreak)}")
        self.tiebreak = tiebreak
        self.epoch = 0
        self.start = 0

    # ------------------------------------------------------------------ ordering
    def _global_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of the epoch before the DDP split (same list on every rank): its passes in turn."""
        if not self.shuffle:
            return self._pass_batches(None)
        # SeedSequence over (seed, epoch[, pass]): independent streams per epoch and pass, reproducible.
        return [b for p in range(self.passes)
                for b in self._pass_batches(np.random.default_rng([self.seed, epoch] + ([p] if p else [])))]

    def _pass_batches(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        """One pass over the data: shuffled with `rng`, or the fixed evaluation order when None."""
        n, bs = len(self.lengths), self.batch_size
        if rng is not None:
            order = rng.permutation(n)
            if self.bucketing:
                chunk = self.chunk_batches * bs  # a whole number of batches per chunk
                bounds = list(range(0, n, chunk)) + [n]
                if len(bounds) > 2 and n % chunk:
                    # Merge a short trailing remainder into the previous chunk: a small chunk
                    # spans the whole length range with few sequences, so its batches are loose
                    # (a 1/8-size chunk pads ~8x as much per batch).
                    del bounds[-2]
                parts = []
                for lo, hi in itertools.pairwise(bounds):
                    idx = order[lo:hi]
                    parts.append(idx[np.argsort(self.lengths[idx], kind="stable")])
                order = np.concatenate(parts)
        elif self.bucketing:
            order = (np.argsort(self.lengths, kind="stable") if self.tiebreak is None
                     else np.lexsort((self.tiebreak, self.lengths)))  # lexsort is stable too
        else:
            order = np.arange(n)

        batches = [order[lo : lo + bs] for lo in range(0, n, bs)]
        if self.drop_last and len(batches[-1]) < bs:
            batches.pop()  # the only short batch is the last one (invariant 2)
        if rng is not None and self.bucketing and len(batches) > 1:
            # Without this the epoch would walk chunk by chunk from short to long sequences.
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _split(self, batches: list) -> list:
        """This rank's share of the global batch list (see class docstring, Distributed)."""
        r = self.num_replicas
        if r == 1:
            return batches
        if self.drop_last:
            batches = batches[: len(batches) - len(batches) % r]
        elif batches and len(batches) % r:
            missing = r - len(batches) % r
            # Cycle in case there are fewer batches than ranks.
            batches = batches + [batches[i % len(batches)] for i in range(missing)]
        return batches[self.rank :: r]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches for `epoch`, as lists of dataset indices.

        Pure: depends only on (seed, epoch, lengths, settings); ignores `self.epoch`/`self.start`.

        Raises:
            ValueError: negative epoch.
        """
        return [b.tolist() for b in self.batch_arrays(epoch)]

    def batch_arrays(self, epoch: int) -> list[np.ndarray]:
        """`epoch_batches(epoch)` as int64 arrays, one per batch (no Python int per row: ~8 bytes a row, not ~36).

        Raises:
            ValueError: negative epoch.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        return self._split(self._global_batches(int(epoch)))

    # ------------------------------------------------------------------ position
    def first_batch(self) -> list[int]:
        """Step 1's batch (the first of epoch 0)."""
        return self.batch_arrays(0)[0].tolist()

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch to iterate and how many of its batches were already consumed.

        Args:
            epoch: epoch number (>= 0); the training loop calls this before every epoch.
            start: batches of this epoch (on this rank) already trained on, in ``[0, len(self)]``;
                the next iteration skips them. ``start == len(self)`` gives an empty iteration.

        Raises:
            ValueError: negative epoch or start out of range.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if not 0 <= start <= len(self):
            raise ValueError(
                f"start must be in [0, {len(self)}] (batches per epoch on this rank), got {start}"
            )
        self.epoch = int(epoch)
        self.start = int(start)

    @property
    def remaining(self) -> int:
        """Batches the next iteration will yield (``len(self) - start``)."""
        return len(self) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        # = epoch_batches(epoch)[start:], each batch made a list only when it is reached (an epoch of 10M rows as
        # Python lists at once would hold ~36 bytes a row)
        for b in itertools.islice(self.batch_arrays(self.epoch), self.start, None):
            yield b.tolist()

    def __len__(self) -> int:
        n, bs, r = len(self.lengths), self.batch_size, self.num_replicas
        total = (n // bs if self.drop_last else -(-n // bs)) * (self.passes if self.shuffle else 1)
        if r == 1:
            return total
        return total // r if self.drop_last else -(-total // r)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """Plain-JSON-able state: position plus the settings that define the batch order."""
        return {
            "epoch": self.epoch,
            "start": self.start,
            "seed": self.seed,
            "n": len(self.lengths),
            "batch_size": self.batch_size,
            "bucketing": self.bucketing,
            "chunk_batches": self.chunk_batches,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "passes": self.passes,
            "lengths_crc32": _lengths_crc(self.lengths),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the position (epoch, start) from `state_dict()` output.

        Resuming is only exact when the batch list is the same, so the state is refused when
        the dataset (size or lengths), batch_size, seed, or an ordering setting differs, or when
        the number of DDP ranks differs in the middle of an epoch. `rank` may differ (every rank
        can load rank 0's state: position is counted in per-rank batches, identical on all ranks).
        Keys other than n/batch_size/seed/epoch/start may be missing (they are then not checked).

        Raises:
            ValueError: a required key is missing or the state does not match this sampler;
                the message lists every mismatch.
        """
        missing = [k for k in ("epoch", "start", "seed", "n", "batch_size") if k not in state]
        if missing:
            raise ValueError(f"sampler state is missing keys {missing}; it is not a BucketBatchSampler state")
        mine = self.state_dict()
        problems = []
        labels = {"n": "n (dataset size)", "lengths_crc32": "lengths fingerprint (crc32)"}
        checked = ["n", "batch_size", "seed", *_ORDER_KEYS, "lengths_crc32"]
        if state["start"] != 0:
            checked.append("num_replicas")
        for key in checked:
            if key in state and state[key] != mine[key]:
                name = labels.get(key, key)
                problems.append(f"{name} is {state[key]!r} in the saved state but {mine[key]!r} now")
        if problems:
            raise ValueError(
                "cannot resume the batch sampler: "
                + "; ".join(problems)
                + ". The saved position would point into a different batch order. Resume with the "
                "same data, batch_size, seed and sampler settings, or start a fresh run."
            )
        epoch, start = int(state["epoch"]), int(state["start"])
        self.set_epoch(epoch, start)


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Fraction of padded positions when each batch is padded to its own longest sequence.

    Args:
        lengths: length of every example, indexed by dataset index.
        batches: lists of dataset indices (e.g. ``sampler.epoch_batches(0)``).

    Returns:
        pad positions / all positions (``sum(B_i * max_i)``), in [0, 1]; 0.0 when there are
        no positions at all.
    """
    lens = np.asarray(lengths, dtype=np.int64)
    real = 0
    total = 0
    for batch in batches:
        if len(batch) == 0:
            continue
        bl = lens[np.asarray(batch, dtype=np.int64)]
        real += int(bl.sum())
        total += len(bl) * int(bl.max())
    return 0.0 if total == 0 else (total - real) / total
