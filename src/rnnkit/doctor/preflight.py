"""Preflight: one training batch through the model before the first step, recorded as evidence.

Answers three items of the guide's debugging checklist while they are cheap to answer, and
before a long run is spent on a broken set-up:

* shapes: the model's output for a batch has the batch's size and the rank its targets need;
* gradients: after one backward pass, which parameter tensors got no gradient at all (outside
  the loss's graph: they can never learn) or a non-finite one; all-zero ones are recorded apart
  (one batch can balance a gradient to exactly zero);
* loss magnitude: the initial loss beside the loss of a prediction that knows nothing (the
  task's `chance_loss`: ln C for C classes, 1 for z-scored regression targets);
* inputs (given the training set): what the network is fed, per numeric channel (mean, spread,
  constant channels), and which channel alone orders the training labels into one run per class
  (a feature that gives the label away).

The preflight changes nothing the run depends on: the random state is restored, gradients are
cleared, and no optimizer step is taken, so a run with and without it trains identically.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from rnnkit.doctor.signal import MAX_EXAMPLES, neighbour_check
from rnnkit.errors import TrainingError
from rnnkit.tasks import Task


def _first_tensor(out) -> torch.Tensor | None:
    """The output tensor of a task's forward: a tensor, or the first tensor field of a tuple or a
    dataclass (the families' outputs put their scores first: logits, emissions, predictions)."""
    if isinstance(out, torch.Tensor):
        return out
    if dataclasses.is_dataclass(out):
        out = tuple(getattr(out, f.name) for f in dataclasses.fields(out))
    if isinstance(out, tuple):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    return None


INPUT_EXAMPLES = 5000  # the input statistics read at most this many training sequences (evenly spread)
CONSTANT_SPREAD = 1e-6  # a channel whose spread is below this (relative to max(1, |mean|)) is constant
LEAK_MIN_EXAMPLES = 20  # the per-channel label check needs this many labelled sequences...
# ...and a class-by-class sorting that chance alone would give less often than this, summed over the channels
# tested: with 30 sequences of one class and 2 of another, 2 extreme values sort them apart by chance once in
# 248 orders, which 12 channels make likely; with 4 classes of 9, never
LEAK_CHANCE = 1e-3


def _sorted_by_chance(counts: list[int]) -> float:
    """The chance that a random order of labels with these class counts has each class in one run:
    k! orders of the k runs, out of n! / prod(n_i!) distinct orders."""
    n = sum(counts)
    log_p = math.lgamma(len(counts) + 1) + sum(math.lgamma(c + 1) for c in counts) - math.lgamma(n + 1)
    return math.exp(log_p)


def input_statistics(train_set) -> dict | None:
    """What the model is fed, from the training sequences (after the family's scaling): per channel the
    mean and standard deviation over real steps, the constant channels, and the channels whose per-sequence
    mean alone sorts the training labels into one contiguous run per class (`label_channels`: a leak, or
    a label-derived column), and for class labels the entropy of their shares (`label_entropy`: the loss of a
    model that predicts the shares and ignores the input). None for token inputs or an empty set."""
    n = len(train_set)
    if n == 0 or not _numeric(train_set[0].inputs):  # a dataset's rows share one input kind: the first tells
        return None
    stride = max(1, n // INPUT_EXAMPLES)
    examples = [train_set[i] for i in range(0, n, stride)]
    xs = [e.inputs for e in examples]
    if not all(_numeric(x) for x in xs):
        return None
    steps = torch.cat([x.double() for x in xs])
    mean, std = steps.mean(0), steps.std(0, unbiased=False)
    constant = (std <= CONSTANT_SPREAD * mean.abs().clamp(min=1.0)).nonzero().flatten().tolist()
    out = {"examples": len(examples), "channels": int(steps.shape[1]), "mean": mean.tolist(), "std": std.tolist(),
           "constant": constant, "label_channels": []}
    targets = [e.target for e in examples]
    if len(examples) >= LEAK_MIN_EXAMPLES and all(t is not None and t.dim() == 0 and not t.is_floating_point()
                                                   for t in targets):
        labels = torch.stack(targets)
        counts = labels.unique(return_counts=True)[1]
        classes = int(counts.numel())
        share = counts.double() / counts.sum()
        out["label_entropy"] = float(-(share * share.log()).sum())  # the loss of predicting the label shares
        if classes >= 2 and _sorted_by_chance(counts.tolist()) * len(mean) < LEAK_CHANCE:
            feature = torch.stack([x.double().mean(0) for x in xs])  # (n, C): each sequence's channel means
            for c in range(feature.shape[1]):
                if c in constant:
                    continue
                order = torch.sort(feature[:, c], stable=True).indices
                runs = 1 + int((labels[order][1:] != labels[order][:-1]).sum())
                if runs == classes:
                    out["label_channels"].append(c)
    return out


def label_entropy(train_set) -> float | None:
    """The entropy of the training labels' shares (one class per sequence, or one tag per token): the loss of a
    model that predicts the shares and ignores the input. None for other targets."""
    if train_set is None or len(train_set) == 0:
        return None
    classes = train_set.scalar_targets() if hasattr(train_set, "scalar_targets") else None
    if classes is not None and classes.dtype.kind in "iu":  # one class per sequence, read from the column
        return _entropy(torch.from_numpy(np.ascontiguousarray(classes[::max(1, len(classes) // INPUT_EXAMPLES)])))
    if not _labels(train_set[0].target):  # a dataset's rows share one target kind: the first tells
        return None
    stride = max(1, len(train_set) // INPUT_EXAMPLES)
    targets = [train_set[i].target for i in range(0, len(train_set), stride)]
    if not all(_labels(t) for t in targets):
        return None
    labels = torch.cat([t.reshape(-1) for t in targets])
    return _entropy(labels)


def _entropy(labels: torch.Tensor) -> float | None:
    labels = labels[labels >= 0]  # padding / ignored positions, if a family marks them negative
    if labels.numel() == 0:
        return None
    share = labels.unique(return_counts=True)[1].double() / labels.numel()
    return float(-(share * share.log()).sum())


def _numeric(x: torch.Tensor) -> bool:
    return x.is_floating_point() and x.dim() == 2


def _labels(t) -> bool:
    return t is not None and t.dim() <= 1 and not t.is_floating_point()


def _signal(train_set, val_set) -> dict | None:
    if train_set is None:
        return None
    sets = [train_set] + ([val_set] if val_set is not None else [])
    stride = max(1, math.ceil(sum(len(s) for s in sets) / MAX_EXAMPLES))  # evenly spread, never the whole set
    return neighbour_check([s[i] for s in sets for i in range(0, len(s), stride)])


def preflight(model: torch.nn.Module, batch, task: Task, prep, *, train_set=None, val_set=None) -> dict:
    """Run one batch forward and backward; return the evidence (JSON-ready) for metrics.jsonl.

    Args:
        model: in training mode, on its device; `batch` already on the same device.

    Returns:
        {"event": "preflight", "batch_size", "output_shape", "target_shape", "shape_problem" (str or
        None), "initial_loss", "chance_loss" (or None), "no_grad", "zero_grad", "nonfinite_grad" (names),
        "parameters" (count of tensors), "inputs" (`input_statistics(train_set)`, None without it), "signal"
        (`doctor.signal.neighbour_check` on the training and validation sequences, None without them or for
        labels that are not one class per sequence), "label_entropy" (`label_entropy(train_set)`)}.
    """
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        out = task.forward(model, batch, 0)
        tensor = _first_tensor(out)
        targets = batch.targets
        size = len(batch)
        problem = None
        if tensor is None:
            problem = "the model's output holds no tensor"
        elif tensor.shape[0] != size:
            problem = f"output batch dimension {tensor.shape[0]} != batch size {size}"
        elif targets is not None and targets.is_floating_point() and tensor.shape != targets.shape:
            problem = (f"regression output {tuple(tensor.shape)} != targets {tuple(targets.shape)}: the loss "
                       "would broadcast them against each other")
        elif targets is not None and not targets.is_floating_point() and tensor.dim() != targets.dim() + 1:
            problem = (f"class scores {tuple(tensor.shape)} should have one dimension more than the targets "
                       f"{tuple(targets.shape)}")
        try:
            value, _count = task.loss(out, batch)
        except RuntimeError as exc:
            if problem is None:
                raise
            raise TrainingError(f"before the first step, one training batch shows a shape mismatch: {problem} "
                                f"({str(exc).splitlines()[0]}). Check the task's settings (e.g. forecast.horizon, "
                                "target columns) or the model's output.") from exc
        value.backward()
        no_grad, zero_grad, bad_grad = [], [], []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:  # not in the graph of the loss: it can never learn
                no_grad.append(name)
            elif not bool(torch.isfinite(p.grad).all()):
                bad_grad.append(name)
            elif not bool(p.grad.any()):  # zero for this batch (e.g. an L1 bias whose error signs balance)
                zero_grad.append(name)
        chance = task.chance_loss(prep) if task.chance_loss is not None else None
        return {"event": "preflight", "batch_size": size,
                "output_shape": list(tensor.shape) if tensor is not None else None,
                "target_shape": list(targets.shape) if targets is not None else None,
                "shape_problem": problem, "initial_loss": float(value.detach()),
                "chance_loss": float(chance) if chance is not None and math.isfinite(chance) else None,
                "no_grad": no_grad, "zero_grad": zero_grad, "nonfinite_grad": bad_grad,
                "parameters": sum(1 for p in model.parameters() if p.requires_grad),
                "inputs": input_statistics(train_set) if train_set is not None else None,
                "signal": _signal(train_set, val_set), "label_entropy": label_entropy(train_set)}
    finally:
        model.zero_grad(set_to_none=True)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


__all__ = ["input_statistics", "preflight"]
