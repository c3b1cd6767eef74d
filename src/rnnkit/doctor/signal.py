"""Do the inputs predict the labels at all? A label-permutation test on a nearest-neighbour model.

A model that learned nothing looks the same from its curves whether it was too weak for the data or was
given labels that the inputs cannot predict (shuffled, misaligned, from another column). This check tells
the two apart before training, for sequence-level class labels (and numeric targets: below), at the cost of one
distance matrix:

1. each labelled sequence (training and validation splits, never test) becomes a fixed-size vector: numeric
   sequences resampled to `POINTS` steps per channel (after the family's scaling); token sequences a hashed
   bag of words, L2-normalised;
2. leave-one-out 1-nearest-neighbour accuracy on those vectors, with the true labels;
3. the same accuracy under `PERMUTATIONS` random permutations of the labels (the neighbours stay fixed, so a
   permutation costs one gather): the p-value is the share of permutations that do as well.

For numeric targets (a regression's) the statistic is the leave-one-out squared error of predicting each target
by the mean of its `K_NEIGHBOURS` nearest sequences' targets, against the same under permuted targets.

A small p-value says the inputs carry signal about the labels (a model that fails to learn it is too weak or
badly set up); a large one with enough examples says a simple model finds none (the labels are the suspect
when the network failed too). It never reads test data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

POINTS = 64  # numeric sequences are resampled to this many steps per channel (or their median length, if less)
HASH_BUCKETS = 4096  # token sequences: bag-of-words vector size
MAX_EXAMPLES = 3000  # at most this many labelled sequences (evenly spread) enter the distance matrix
MIN_EXAMPLES = 20  # fewer than this: no verdict
PERMUTATIONS = 999
SIGNAL_P = 0.01  # p at or below this: the inputs predict the labels
NO_SIGNAL_P = 0.2  # p above this (and accuracy no better than the majority share): no signal found
K_NEIGHBOURS = 5  # numeric targets: predicted by the mean of this many nearest sequences' targets
MAX_TARGETS = 8  # numeric targets: at most this many numbers per sequence (a forecast window's are not one row's)


def _vectors(inputs: list[torch.Tensor]) -> torch.Tensor | None:
    """(N, D) vectors: dense for numeric sequences; for token sequences a sparse (COO) matrix of L2-normalised
    hashed counts (a row holds only its distinct buckets, so the distances cost what the tokens do)."""
    if all(x.is_floating_point() and x.dim() == 2 for x in inputs):
        lengths = sorted(x.shape[0] for x in inputs)
        points = max(2, min(POINTS, lengths[len(lengths) // 2]))
        rows = []
        for x in inputs:
            seq = x.double().T.unsqueeze(0)  # (1, C, T)
            if seq.shape[-1] == 1:
                seq = seq.expand(-1, -1, 2)
            rows.append(F.interpolate(seq, size=points, mode="linear", align_corners=True).flatten())
        return torch.stack(rows)
    if all(not x.is_floating_point() and x.dim() == 1 for x in inputs):
        row = torch.repeat_interleave(torch.arange(len(inputs)), torch.tensor([x.numel() for x in inputs]))
        col = torch.cat([x.long() for x in inputs]) % HASH_BUCKETS
        # indices in range by construction (rows 0..N-1, buckets mod HASH_BUCKETS): no invariant check needed
        counts = torch.sparse_coo_tensor(torch.stack([row, col]), torch.ones(len(row)), (len(inputs), HASH_BUCKETS),
                                         check_invariants=False).coalesce()  # duplicates summed
        norms = torch.zeros(len(inputs)).index_add_(0, counts.indices()[0], counts.values() ** 2).sqrt()
        values = counts.values() / norms[counts.indices()[0]].clamp(min=1e-12)
        return torch.sparse_coo_tensor(counts.indices(), values, counts.shape, check_invariants=False).coalesce()
    return None


def _nearest(vectors: torch.Tensor) -> torch.Tensor:
    """(N,) each row's nearest other row in Euclidean distance. Unit-norm sparse rows: the largest dot product
    (|a - b|^2 = 2 - 2 a.b), through a sparse x dense product."""
    if vectors.is_sparse:
        sims = torch.sparse.mm(vectors, vectors.to_dense().T.contiguous())  # (N, N); 10x the dense cdist's speed
        sims.fill_diagonal_(-float("inf"))
        return sims.argmax(1)
    dist = torch.cdist(vectors, vectors)
    dist.fill_diagonal_(float("inf"))
    return dist.argmin(1)


def _numeric_targets(examples: list, seed: int) -> dict | None:
    """The test for numeric targets (one or a few numbers per sequence, z-scored): leave-one-out prediction by
    the mean target of the K nearest other sequences; its skill is the share of the mean prediction's squared
    error it removes, and the p-value the share of target permutations that do as well."""
    y = torch.stack([e.target.reshape(-1) for e in examples]).double()  # (N, D)
    if len(examples) < MIN_EXAMPLES:
        return {"examples": len(examples), "kind": "numeric", "skill": None, "p_value": None, "verdict": "too_few"}
    vectors = _vectors([e.inputs for e in examples])
    if vectors is None:
        return None
    if vectors.is_sparse:  # cdist needs a dense matrix
        vectors = vectors.to_dense()
    k = min(K_NEIGHBOURS, len(examples) - 1)
    dist = torch.cdist(vectors, vectors)
    dist.fill_diagonal_(float("inf"))
    near = dist.topk(k, largest=False).indices  # (N, k)
    base = float(((y - y.mean(0)) ** 2).mean())
    if base <= 0:
        return None
    mse = float(((y[near].mean(1) - y) ** 2).mean())
    gen = torch.Generator().manual_seed(seed)
    as_good = 0
    for start in range(0, PERMUTATIONS, 100):  # 100 permutations at a time: (100, N, k, D) gathered values
        perms = torch.stack([torch.randperm(len(y), generator=gen) for _ in range(min(100, PERMUTATIONS - start))])
        yp = y[perms]  # (P, N, D)
        pred = yp[:, near].mean(2)  # (P, N, D)
        as_good += int(((pred - yp) ** 2).mean((1, 2)).le(mse + 1e-12).sum())
    p = (1 + as_good) / (PERMUTATIONS + 1)
    skill = 1 - mse / base
    verdict = "signal" if p <= SIGNAL_P else "none" if p > NO_SIGNAL_P and skill <= 0 else "unclear"
    return {"examples": len(examples), "kind": "numeric", "skill": skill, "p_value": p, "verdict": verdict}


def neighbour_check(examples: list, *, seed: int = 0) -> dict | None:
    """The permutation test above on `examples` (objects with `.inputs` and an integer class `.target`, or one
    or a few numbers per sequence as `.target`: a regression's z-scored targets).

    Returns:
        None when the labels are neither one class nor a few numbers per sequence, or the inputs are neither
        numeric nor tokens; for classes {"examples", "accuracy" (leave-one-out 1-NN), "majority" (the largest class
        share), "p_value", "verdict": "signal" | "none" | "unclear" | "too_few"}; for numbers {"examples", "kind":
        "numeric", "skill" (the share of the mean prediction's squared error that the K nearest neighbours' mean
        removes), "p_value", "verdict"}.
    """
    if examples and all(e.target is not None and e.target.is_floating_point() and e.target.dim() <= 1
                        and 0 < e.target.numel() <= MAX_TARGETS for e in examples):
        stride = max(1, math.ceil(len(examples) / MAX_EXAMPLES))
        return _numeric_targets(examples[::stride], seed)
    if not examples or not all(e.target is not None and e.target.dim() == 0 and not e.target.is_floating_point()
                               for e in examples):
        return None
    stride = max(1, math.ceil(len(examples) / MAX_EXAMPLES))
    examples = examples[::stride]
    labels = torch.stack([e.target for e in examples]).long()
    counts = labels.unique(return_counts=True)[1]
    majority = float(counts.max()) / len(labels)
    if len(examples) < MIN_EXAMPLES or counts.numel() < 2:
        return {"examples": len(examples), "accuracy": None, "majority": majority, "p_value": None,
                "verdict": "too_few"}
    vectors = _vectors([e.inputs for e in examples])
    if vectors is None:
        return None
    nearest = _nearest(vectors)
    accuracy = float((labels[nearest] == labels).double().mean())
    gen = torch.Generator().manual_seed(seed)
    perms = torch.stack([labels[torch.randperm(len(labels), generator=gen)] for _ in range(PERMUTATIONS)])
    permuted = (perms[:, nearest] == perms).double().mean(1)
    p = float((1 + (permuted >= accuracy - 1e-12).sum()) / (PERMUTATIONS + 1))
    if p <= SIGNAL_P:
        verdict = "signal"
    elif p > NO_SIGNAL_P and accuracy <= majority:
        verdict = "none"
    else:
        verdict = "unclear"
    return {"examples": len(examples), "accuracy": accuracy, "majority": majority, "p_value": p, "verdict": verdict}


__all__ = ["neighbour_check"]
