"""Long sequences: what truncation keeps, how a document is cut into windows, and which of the two a run uses.

Three pieces, each a pure function of lengths and settings, shared by the data path (encoding, the
vocabulary, the counts in summary.json) and by the tests:

* `Truncation`: cut a sequence longer than `limit` steps, keeping its head, its tail, or both ends
  (``head_tail``: the first k and the last limit - k steps; Sun et al. 2019, "How to Fine-Tune BERT for Text
  Classification", found 128 + 382 of 512 tokens the best cut of long IMDb reviews). `kept_slices` is the one
  definition of the kept steps: encoding and the vocabulary both use it, so the vocabulary counts exactly
  the tokens the model sees.
* `Windows`: a document of T steps read in windows of `length` steps every `stride` steps, the first at step
  0, the last the first that reaches the document's end: ``count(T) = 1 + ceil(max(0, T - length) / stride)``
  windows, the last one possibly shorter. At most `max_windows` per document: a longer document is cut (as
  truncation cuts) to the `span` that many windows cover, ``(max_windows - 1) * stride + length`` steps. The
  windowed model (`rnnkit.models.windows`) lays out the same windows from the lengths alone.
* `choose_long_sequences`: what ``data.long_sequences: auto`` means for a family and its training lengths
  (`AUTO_WINDOW_SHARE`, `AUTO_HIERARCHICAL_FACTOR`). ``hierarchical`` reads the same windows (blocks) and
  combines their vectors in order with a document-level RNN (`WINDOWED`: the modes that read windows).

`cut_counts` counts what a cut drops: rows and positions, with their shares (summary.json's
``data.truncation``, the start line and the doctor read these).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

TRUNCATE_KEEPS = ("head", "tail", "head_tail")
LONG_SEQUENCES = ("auto", "truncate", "window", "hierarchical")
WINDOWED = ("window", "hierarchical")  # the modes that cut a document into windows (hierarchical: blocks)
WINDOW_COMBINES = ("mean", "attention", "rnn")  # rnn: the hierarchical encoder's document-level RNN
# auto reads documents in windows (in a family that can) when at least this share of the training rows is longer
# than data.max_length: from there truncation hides the end of one document in ten or more, and the doctor's data
# check fails above the same share (doctor.checklist.TRUNCATED_SHARE)
AUTO_WINDOW_SHARE = 0.10
# ... and the hierarchical encoder when that share of the training rows is longer than this many data.max_length:
# documents that span several windows, whose parts a document-level RNN reads in order (mean or attention over the
# windows ignores their order)
AUTO_HIERARCHICAL_FACTOR = 4


def head_steps(limit: int, head: float) -> int:
    """The steps head+tail truncation to `limit` keeps from the start.

    Args:
        limit: the steps kept in all, >= 2 (one from each end at least).
        head: a share of `limit` (0 < head < 1, rounded to the nearest step) or a count of steps (>= 1, a whole
            number below `limit`).

    Returns:
        k in [1, limit - 1]; the tail gets limit - k.

    Raises:
        ValueError: limit < 2, or a head that leaves no step for one of the ends.
    """
    if limit < 2:
        raise ValueError(f"head+tail truncation keeps both ends, so it needs a limit of at least 2 steps, got {limit}")
    if head <= 0:
        raise ValueError(f"the head must be a share in (0, 1) or a count >= 1, got {head!r}")
    if head < 1:
        return min(max(1, round(head * limit)), limit - 1)
    if head != int(head) or head >= limit:
        raise ValueError(f"a head of {head:g} steps leaves no tail within {limit} steps: give a whole count below "
                         f"{limit}, or a share below 1")
    return int(head)


def kept_slices(length: int, limit: int, keep: str = "head", head: float = 0.25) -> list[slice]:
    """The parts of a `length`-step sequence that truncation to `limit` steps keeps, in order.

    Args:
        length: the sequence's steps.
        limit: the most steps kept, >= 1.
        keep: "head" (the first `limit`), "tail" (the last `limit`) or "head_tail" (the first `head_steps(limit,
            head)` and the rest of `limit` from the end).
        head: the head's share or count for "head_tail" (`head_steps`).

    Returns:
        [slice(0, length)] when nothing is cut, else one slice (head, tail) or two (head_tail), disjoint, in
        order, covering exactly min(length, limit) steps.

    Raises:
        ValueError: limit < 1, an unknown `keep`, or a head that `head_steps` refuses.
    """
    if limit < 1:
        raise ValueError(f"max_length must be >= 1, got {limit}")
    if keep not in TRUNCATE_KEEPS:
        raise ValueError(f"keep must be one of {', '.join(TRUNCATE_KEEPS)}, got {keep!r}")
    if length <= limit:
        return [slice(0, length)]
    if keep == "head":
        return [slice(0, limit)]
    if keep == "tail":
        return [slice(length - limit, length)]
    k = head_steps(limit, head)
    return [slice(0, k), slice(length - (limit - k), length)]


@dataclass(frozen=True)
class Truncation:
    """How over-long sequences are cut: to `limit` steps, keeping `keep` ("head" | "tail" | "head_tail", with
    `head` the head's share or count), `by` the config key that sets the limit (data.max_length, or
    data.max_windows for windowed documents)."""

    limit: int
    keep: str = "head"
    head: float = 0.25
    by: str = "data.max_length"

    def slices(self, length: int) -> list[slice]:
        return kept_slices(length, self.limit, self.keep, self.head)

    def cut(self, items: list | torch.Tensor) -> list | torch.Tensor:
        """The kept steps of a token list, or of a tensor (steps first: (T,), (T, C)), in order. A tensor that was
        cut is a new tensor (a copy), so that the long original can be freed; one that was not is `items`."""
        parts = self.slices(len(items))
        if parts[0] == slice(0, len(items)):
            return items
        if isinstance(items, list):
            return [x for s in parts for x in items[s]]
        # index_select copies (no torch import here: the ONNX runtime path, `rnnkit.serve`, reads this module)
        index = items.new_tensor([i for s in parts for i in range(s.start, s.stop)]).long()
        return items.index_select(0, index)

    def describe(self) -> str:
        """E.g. "head kept", "head 128 + tail 384 kept"."""
        if self.keep != "head_tail":
            return f"{self.keep} kept"
        k = head_steps(self.limit, self.head)
        return f"head {k} + tail {self.limit - k} kept"

    def to_dict(self) -> dict:
        out = {"limit": self.limit, "by": self.by, "keep": self.keep}
        if self.keep == "head_tail":
            out["head"] = head_steps(self.limit, self.head)
            out["tail"] = self.limit - out["head"]
        return out


@dataclass(frozen=True)
class Windows:
    """Windows of `length` steps every `stride` steps (stride <= length), at most `max_windows` per document,
    combined by `combine` ("mean": the mean of the window logits; "attention": attention over the window
    vectors, then the output layer; "rnn": a document-level RNN over the window vectors in order, the
    hierarchical encoder)."""

    length: int
    stride: int
    max_windows: int
    combine: str = "mean"

    def __post_init__(self) -> None:
        for name in ("length", "stride", "max_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"window {name} must be an integer >= 1, got {value!r}")
        if self.stride > self.length:
            raise ValueError(f"a window stride of {self.stride} > the window length {self.length} would skip steps "
                             "between windows")
        if self.combine not in WINDOW_COMBINES:
            raise ValueError(f"window combine must be one of {', '.join(WINDOW_COMBINES)}, got {self.combine!r}")

    def count(self, steps: int) -> int:
        """Windows of a document of `steps` (>= 1) steps, before the cap."""
        return 1 + math.ceil(max(0, steps - self.length) / self.stride)

    @property
    def span(self) -> int:
        """The steps `max_windows` windows cover: a longer document is cut to this many."""
        return (self.max_windows - 1) * self.stride + self.length

    def window_lengths(self, steps: int) -> list[int]:
        """The length of each window of a document of `steps` steps (at most `span`)."""
        return [min(self.length, steps - w * self.stride) for w in range(self.count(steps))]

    def to_dict(self) -> dict:
        return {"window_length": self.length, "window_stride": self.stride, "max_windows": self.max_windows,
                "combine": self.combine}

    def describe(self) -> str:
        overlap = f"stride {self.stride}" + (" (no overlap)" if self.stride == self.length else "")
        combine = {"mean": "the mean of the window logits", "attention": "attention over the window vectors",
                   "rnn": "a document-level RNN reading the window vectors in order"}[self.combine]
        return (f"windows of {self.length} steps, {overlap}, at most {self.max_windows} per document "
                f"({self.span} steps), combined by {combine}")


def cut_counts(lengths: Sequence[int], limit: int) -> dict:
    """What cutting sequences of these lengths to `limit` steps drops.

    Returns:
        {"rows", "cut_rows", "cut_rows_share", "positions", "dropped_positions", "dropped_share"}: rows in all,
        rows longer than `limit`, their share of the rows; steps in all, steps dropped, their share of the
        steps (shares 0.0 for an empty split).
    """
    lengths = np.asarray(lengths, dtype=np.int64)  # (a list or an array: no Python int per row is made)
    rows = len(lengths)
    cut = lengths[lengths > limit]
    positions = int(lengths.sum())
    dropped = int((cut - limit).sum())
    return {"rows": rows, "cut_rows": len(cut), "cut_rows_share": len(cut) / rows if rows else 0.0,
            "positions": positions, "dropped_positions": dropped,
            "dropped_share": dropped / positions if positions else 0.0}


def choose_long_sequences(setting: str, lengths: Sequence[int], max_length: int, *,
                          supported: Sequence[str] = ("truncate",)) -> tuple[str, str]:
    """What `data.long_sequences` means for these training lengths.

    Args:
        setting: "auto", "truncate", "window" or "hierarchical".
        lengths: the training rows' lengths, before any cut.
        max_length: data.max_length.
        supported: the modes the task family can train ("truncate", and "window" / "hierarchical" for many-to-one
            families that read a document in windows).

    Returns:
        (mode, why). Under auto, for a family that supports it: "hierarchical" when at least `AUTO_WINDOW_SHARE`
        of the training rows are longer than `AUTO_HIERARCHICAL_FACTOR` x `max_length` (documents of several
        windows); else "window" when at least that share is longer than `max_length`; else "truncate". A forced
        setting is returned as it is.

    Raises:
        ValueError: a forced mode the family does not support (the message names the key and the fix).
    """
    if setting != "auto":
        if setting not in supported:
            raise ValueError(f"config key 'data.long_sequences': {setting} is not available for this task (it "
                             f"takes {', '.join(['auto', *supported])}); use data.long_sequences=truncate")
        return setting, f"data.long_sequences {setting}"
    if "window" not in supported:
        return "truncate", "auto: this task truncates"
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = len(lengths)

    def share_over(limit: int) -> tuple[int, float]:
        over = int((lengths > limit).sum())
        return over, over / rows if rows else 0.0

    very = AUTO_HIERARCHICAL_FACTOR * max_length
    over, share = share_over(very)
    if "hierarchical" in supported and over and share >= AUTO_WINDOW_SHARE:
        return "hierarchical", (f"auto: {share:.0%} of the training rows ({over} of {rows}) are longer than "
                                f"{AUTO_HIERARCHICAL_FACTOR} x data.max_length={max_length} ({very} steps), "
                                f">= {AUTO_WINDOW_SHARE:.0%}: several windows each, read in order")
    over, share = share_over(max_length)
    words = (f"{share:.0%} of the training rows ({over} of {rows}) are longer than data.max_length={max_length}")
    if over and share >= AUTO_WINDOW_SHARE:
        return "window", f"auto: {words}, >= {AUTO_WINDOW_SHARE:.0%}"
    return "truncate", f"auto: {words}, < {AUTO_WINDOW_SHARE:.0%}"


__all__ = ["AUTO_HIERARCHICAL_FACTOR", "AUTO_WINDOW_SHARE", "LONG_SEQUENCES", "TRUNCATE_KEEPS", "WINDOWED",
           "WINDOW_COMBINES", "Truncation", "Windows",
           "choose_long_sequences", "cut_counts", "head_steps", "kept_slices"]
