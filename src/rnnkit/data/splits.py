"""Stratified train/val/test splits, reproducible from a seed and saved by record id."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from rnnkit.data.records import Record
from rnnkit.data.recordstore import Records, ids_of, labels_of
from rnnkit.data.vocab import natural_key
from rnnkit.errors import ConfigError


class Splits(dict):
    """``dict[str, list[Record]]`` that remembers the seed and fractions it was made with."""

    seed: int | None = None
    fractions: dict[str, float] | None = None


def _class_order(label: str | None) -> tuple:
    return (0,) if label is None else (1, natural_key(label))


def _counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """How many of a class's n records go to each held-out split (the rest go to train)."""
    if n < 2:
        return dict.fromkeys(fractions, 0)  # a single record stays in train, so train sees the class
    # round half up (not banker's rounding), and at least 1 so every split sees the class
    counts = {name: max(1, math.floor(n * f + 0.5)) for name, f in fractions.items()}
    # train keeps at least one record; take back from the largest split, the later one on ties
    names = list(fractions)
    while sum(counts.values()) > n - 1:
        biggest = max(reversed(names), key=lambda s: counts[s])
        counts[biggest] -= 1
    return counts


def stratified_split(records: list[Record], *, fractions: dict[str, float], seed: int) -> Splits:
    """Split records per class into train and the held-out splits named in `fractions`.

    Rules, per class (records with the same `label`; None labels form one class):

    * a class with one record puts it in train;
    * otherwise each held-out split gets round(n * fraction) records (halves round up), at least
      1, while train always keeps at least 1: when the held-out counts would leave train empty,
      the largest one (the later one on ties) gives a record back until train has one;
    * which records go where is a shuffle with ``numpy.random.default_rng(seed)``, applied to
      the classes in natural label order, so the result depends only on the records and seed.

    Args:
        records: the records to split.
        fractions: held-out split name -> fraction of each class, e.g. ``{"val": 0.1}``;
            each in (0, 1), together below 1; "train" gets the rest and may not be named.
        seed: random seed.

    Returns:
        `Splits` (a dict) with "train" first, then the held-out splits in the order given; each
        record is in exactly one split, and every split keeps the records' original order.
        ``.seed`` and ``.fractions`` record how it was made (for `save_split`).

    Raises:
        ConfigError: a fraction outside (0, 1), fractions summing to 1 or more, or "train" named.
    """
    if "train" in fractions:
        raise ConfigError("split fractions name the held-out splits only (val, test); train gets the rest")
    for name, f in fractions.items():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ConfigError(
                f"split fraction {name}={f!r} (data.{name}_fraction) must be a number between 0 and 1 (exclusive)"
            )
    if sum(fractions.values()) >= 1:
        raise ConfigError(f"split fractions {fractions} add up to 1 or more; train would get nothing")

    names = ["train", *fractions]
    if isinstance(records, Records):  # the store's label codes (one per distinct label), no list of labels
        label_codes = records.store.labels[records.index]
        codes = {records.store.label_names[c]: c for c in np.unique(label_codes).tolist()}
    else:
        labels = labels_of(records)
        codes: dict[str | None, int] = {}
        for label in labels:
            codes.setdefault(label, len(codes))
        label_codes = np.fromiter((codes[label] for label in labels), dtype=np.int32, count=len(labels))
    assign = np.zeros(len(label_codes), dtype=np.int8)  # index into `names`; 0: train
    rng = np.random.default_rng(seed)
    for label in sorted(codes, key=_class_order):
        idx = np.flatnonzero(label_codes == codes[label])  # the class's records, in order
        order = rng.permutation(len(idx))
        pos = 0
        for name, k in _counts(len(idx), fractions).items():
            assign[idx[order[pos : pos + k]]] = names.index(name)
            pos += k
    if isinstance(records, Records):  # views of the store, in the records' order
        out = Splits({name: records.take(np.flatnonzero(assign == n)) for n, name in enumerate(names)})
    else:
        out = Splits({name: [] for name in names})
        for r, n in zip(records, assign.tolist(), strict=True):
            out[names[n]].append(r)
    out.seed = seed
    out.fractions = dict(fractions)
    return out


def save_split(
    splits: dict[str, list[Record]],
    path: str | os.PathLike,
    *,
    seed: int | None = None,
    fractions: dict[str, float] | None = None,
) -> None:
    """Write which record ids went to which split, as JSON.

    Format: ``{"seed": ..., "fractions": ..., "splits": {name: [record ids]}}``.

    Args:
        splits: split name -> records (e.g. from `stratified_split`).
        path: output file; parent folders are created.
        seed, fractions: override what a `Splits` remembers; for a plain dict they default to
            None.
    """
    head = {
        "seed": seed if seed is not None else getattr(splits, "seed", None),
        "fractions": fractions if fractions is not None else getattr(splits, "fractions", None),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # the layout of json.dumps(..., indent=1), written split by split: no list of every id at once
    with p.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "splits": {')
        for k, (name, recs) in enumerate(splits.items()):
            out.write(("," if k else "") + f"\n  {json.dumps(name, ensure_ascii=False)}: [")
            ids = ids_of(recs)
            if ids:
                out.write(",".join(f"\n   {json.dumps(rid, ensure_ascii=False)}" for rid in ids) + "\n  ")
            out.write("]")
        out.write("\n }\n}\n" if splits else "}\n}\n")


def load_split(path: str | os.PathLike) -> dict:
    """Read a file written by `save_split`.

    Raises:
        ConfigError: the file is missing, not JSON, or lacks ``"splits"``.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read the split file {str(path)!r}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("splits"), dict):
        raise ConfigError(f'the split file {str(path)!r} has no "splits" object')
    return data
