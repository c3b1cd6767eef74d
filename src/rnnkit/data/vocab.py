"""Token vocabulary and label map: the id tables a run saves next to its checkpoint.

Both are built deterministically from the training data (same data -> same ids, whatever the
order of dict iteration or the Python hash seed) and saved as JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from rnnkit.errors import CheckpointError, ConfigError, RnnkitError, shorten


def _read_json(path: str | os.PathLike, what: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CheckpointError(f"cannot read the {what} file {str(path)!r}: {e.strerror or e}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"the {what} file {str(path)!r} is not valid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"the {what} file {str(path)!r} must hold a JSON object")
    return data


def _write_json(path: str | os.PathLike, data: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _check_limits(min_freq: int, max_size: int | None) -> None:
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ConfigError(f"data.min_freq={min_freq!r} must be an integer >= 1")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
            raise ConfigError(f"data.max_vocab={max_size!r} must be an integer >= 2 (it counts <pad> and <unk>)")


class Vocab:
    """Token <-> id table with a padding id (0) and an unknown-token id (1).

    Build one with `Vocab.build`; the constructor takes the full id-ordered token list.
    """

    PAD = 0
    UNK = 1
    PAD_TOKEN = "<pad>"
    UNK_TOKEN = "<unk>"

    def __init__(self, tokens: list[str]):
        """Args:
            tokens: id -> token; must start with PAD_TOKEN, UNK_TOKEN and hold unique strings.

        Raises:
            CheckpointError: the list breaks those rules (a corrupt or foreign vocab file).
        """
        if list(tokens[:2]) != [self.PAD_TOKEN, self.UNK_TOKEN]:
            raise CheckpointError(
                f"a vocabulary must start with {self.PAD_TOKEN!r}, {self.UNK_TOKEN!r}; found {shorten(tokens[:2])}"
            )
        if not all(isinstance(t, str) for t in tokens):
            raise CheckpointError("every vocabulary token must be a string")
        dup = [t for t, n in Counter(tokens).items() if n > 1]
        if dup:
            raise CheckpointError(f"the vocabulary lists tokens more than once: {shorten(dup)}")
        self._itos = list(tokens)
        self._stoi = {t: i for i, t in enumerate(self._itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Count tokens and keep the frequent ones.

        Args:
            token_lists: one token list per sequence (usually the training records' tokens).
            min_freq: keep tokens seen at least this often (>= 1).
            max_size: largest vocabulary, counting the two special tokens (>= 2), or None.

        Returns:
            A Vocab ordered by frequency (most frequent first), ties by token (ascending), so
            the ids do not depend on the order of the data. Tokens that equal the special tokens
            are not added again: they map to their special id.

        Raises:
            ConfigError: min_freq < 1 or max_size < 2.
        """
        _check_limits(min_freq, max_size)
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_freq=min_freq, max_size=max_size)

    @classmethod
    def from_counts(cls, counts: Counter[str], *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """`build` from token counts already made (`counts` is changed: the special tokens are dropped)."""
        _check_limits(min_freq, max_size)
        for special in (cls.PAD_TOKEN, cls.UNK_TOKEN):
            counts.pop(special, None)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([cls.PAD_TOKEN, cls.UNK_TOKEN, *kept])

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; a token not in the vocabulary gets UNK."""
        get = self._stoi.get
        return [get(t, self.UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ids (PAD and UNK decode to their special tokens).

        Raises:
            RnnkitError: an id outside 0..len-1.
        """
        out = []
        n = len(self._itos)
        for i in ids:
            j = int(i)
            if not 0 <= j < n:
                raise RnnkitError(f"token id {j} is outside the vocabulary (0..{n - 1})")
            out.append(self._itos[j])
        return out

    @property
    def tokens(self) -> list[str]:
        """id -> token (a copy)."""
        return list(self._itos)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value object: no hashing

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"

    def to_dict(self) -> dict:
        return {"kind": "vocab", "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        """Inverse of `to_dict`. Raises CheckpointError on anything else."""
        if not isinstance(d, dict) or d.get("kind") != "vocab" or not isinstance(d.get("tokens"), list):
            raise CheckpointError('not a vocabulary: expected {"kind": "vocab", "tokens": [...]}')
        return cls(d["tokens"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (UTF-8), creating parent folders."""
        _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a file written by `save`. Raises CheckpointError when missing or corrupt."""
        return cls.from_dict(_read_json(path, "vocabulary"))


_DIGITS = re.compile(r"(\d+)")


def natural_key(label: str) -> tuple:
    """Sort key: numeric labels by value and before other labels; others with digit runs
    compared as numbers ("class2" < "class10"); the label itself breaks ties ("1" < "1.0")."""
    try:
        x = float(label)
    except ValueError:
        x = math.nan
    if math.isfinite(x):
        return (0, x, (), label)
    # re.split with a capture group alternates text/digits, text first: same types at the same
    # positions, so the lists always compare
    parts = _DIGITS.split(label)
    return (1, 0.0, tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), label)


class LabelMap:
    """Class label <-> index, labels in natural sort order ("2" < "10")."""

    def __init__(self, labels: list[str]):
        """Args:
            labels: index -> label, unique strings (use `build` to sort and deduplicate).

        Raises:
            CheckpointError: not a list of unique strings.
        """
        if not all(isinstance(x, str) for x in labels):
            raise CheckpointError("every label must be a string")
        dup = [x for x, n in Counter(labels).items() if n > 1]
        if dup:
            raise CheckpointError(f"the label map lists labels more than once: {shorten(dup)}")
        self._labels = list(labels)
        self._index = {x: i for i, x in enumerate(self._labels)}

    @classmethod
    def build(cls, labels: Iterable[str | None]) -> LabelMap:
        """Sorted unique labels (natural order: numeric strings by value, "2" < "10").

        Raises:
            RnnkitError: a label is None or not a string (unlabeled records cannot train a
                classifier).
        """
        unique = set()
        for x in labels:
            if not isinstance(x, str):
                raise RnnkitError(f"cannot build a label map from the label {x!r}: every label must be a string")
            unique.add(x)
        return cls(sorted(unique, key=natural_key))

    def encode(self, label: str) -> int:
        """Index of `label`.

        Raises:
            RnnkitError: the label is unknown (the message lists the known labels).
        """
        try:
            return self._index[label]
        except (KeyError, TypeError):
            known = shorten(", ".join(self._labels), 300)
            raise RnnkitError(f"unknown label {label!r}; known labels: {known}. Fix: use one of these labels, or "
                              "train a model on data that has this label") from None

    def decode(self, index: int) -> str:
        """Label at `index`.

        Raises:
            RnnkitError: index outside 0..len-1.
        """
        i = int(index)
        if not 0 <= i < len(self._labels):
            raise RnnkitError(f"label index {i} is outside 0..{len(self._labels) - 1}")
        return self._labels[i]

    @property
    def labels(self) -> list[str]:
        """index -> label (a copy)."""
        return list(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self._labels == other._labels

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LabelMap({shorten(self._labels)})"

    def to_dict(self) -> dict:
        return {"kind": "labels", "labels": list(self._labels)}

    @classmethod
    def from_dict(cls, d: dict) -> LabelMap:
        """Inverse of `to_dict`; keeps the stored order. Raises CheckpointError on anything else."""
        if not isinstance(d, dict) or d.get("kind") != "labels" or not isinstance(d.get("labels"), list):
            raise CheckpointError('not a label map: expected {"kind": "labels", "labels": [...]}')
        return cls(d["labels"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the label map as JSON (UTF-8), creating parent folders."""
        _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelMap:
        """Read a file written by `save`. Raises CheckpointError when missing or corrupt."""
        return cls.from_dict(_read_json(path, "label map"))
