"""The record: one input sequence after reading, before encoding. Provenance travels with it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Record:
    """One sequence as read from a file.

    Exactly one of `tokens` (text input) or `values` (numeric input) is set.

    Attributes:
        id: stable id, "<file name>:<line>" unless the file has an id column.
        file: path of the source file.
        line: 1-based line (row) where the record starts.
        tokens: list of string tokens (text input).
        values: float32 array of shape (T, C) (numeric input, C channels).
        label: class label as a string (classification), or None when unlabeled.
        extra: any task-specific fields later readers need to keep.
    """

    id: str
    file: str
    line: int
    tokens: list[str] | None = None
    values: np.ndarray | None = None
    label: str | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        if self.tokens is not None:
            return len(self.tokens)
        assert self.values is not None
        return int(self.values.shape[0])
