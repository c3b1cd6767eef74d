"""Small realistic data files for tests, written to a given path (no network, no downloads)."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.util
import json
import os
import random
from pathlib import Path

import numpy as np

POSITIVE = ["great", "wonderful", "excellent", "loved", "superb", "fine", "enjoyable", "brilliant"]
NEGATIVE = ["awful", "boring", "terrible", "hated", "poor", "dull", "weak", "disappointing"]
FILLER = ["the", "movie", "was", "and", "a", "plot", "acting", "it", "this", "film", "story", "with",
          "characters", "some", "really", "quite"]


def write_text_csv(path, n=300, seed=0):
    """Review-like sentences whose label depends on sentiment words scattered among filler."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "stars"])
        for _ in range(n):
            label = int(rng.integers(0, 2))
            words = list(rng.choice(FILLER, size=int(rng.integers(4, 30))))
            cue = POSITIVE if label else NEGATIVE
            for _ in range(int(rng.integers(1, 3))):
                words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cue)))
            w.writerow([" ".join(words), "pos" if label else "neg"])
    return path


def write_numeric_jsonl(path, n=240, channels=3, seed=0, classes=3, label_noise=0.0):
    """Noisy sine sequences of varied length; the class sets the frequency (a `label_noise` share of
    rows gets a random label instead)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            k = i % classes
            t = np.arange(int(rng.integers(5, 40)))
            x = np.stack([np.sin(0.3 * (k + 1) * t + c) + 0.1 * rng.standard_normal(len(t))
                          for c in range(channels)], axis=1)
            if rng.random() < label_noise:
                k = int(rng.integers(0, classes))
            fh.write(json.dumps({"sequence": x.round(4).tolist(), "label": f"c{k}"}) + "\n")
    return path




def write_reversal_tsv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """`n` distinct sources (3-7 letters of a-f), each with its reversal as the space-separated target."""
    rng = random.Random(seed)
    sources: list[str] = []
    while len(sources) < n:
        s = "".join(rng.choice("abcdef") for _ in range(rng.randint(3, 7)))
        if s not in sources:
            sources.append(s)
    Path(path).write_text("source\ttarget\n" + "".join(f"{s}\t{' '.join(reversed(s))}\n" for s in sources))
    return Path(path)


def nan_once_at(monkeypatch, step: int) -> None:
    """Make the classify loss NaN the first time training reaches `step` (a transient fault)."""
    module = importlib.import_module("rnnkit.tasks.classify")
    real, seen = module.TASK.forward, []

    def forward(model, batch, s=None):
        out = real(model, batch, s)
        if s == step and not seen:
            seen.append(s)
            return out * float("nan")
        return out

    monkeypatch.setattr(module, "TASK", dataclasses.replace(module.TASK, forward=forward))


def rnnkit_dirs(root) -> list[str]:
    """The rnnkit-* directories in `root`, less the per-user thread registry that outlives calls by design."""
    return sorted(p.name for p in Path(root).iterdir()
                  if p.name.startswith("rnnkit-") and p.name != f"rnnkit-{os.getuid()}")


def write_short_yearly_series(path, n_series=200, min_len=15, max_len=60, seed=0):
    """Many short yearly series in long format (columns year, series, value), shaped like the M4 / tourism
    yearly sets: each its own level (10^2..10^4), a drifting trend, multiplicative noise and an occasional
    level shift, each ending in a year between 2010 and 2018, 15 to 60 years long. Returns (path, lengths)."""
    rng = np.random.default_rng(seed)
    lengths = {}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["year", "series", "value"])
        for i in range(n_series):
            n = int(rng.integers(min_len, max_len + 1))
            end = int(rng.integers(2010, 2019))
            level = 10 ** rng.uniform(2, 4)
            growth = rng.normal(0.03, 0.04)
            log_y = np.log(level) + np.cumsum(growth + rng.normal(0, 0.05, n))
            if rng.random() < 0.3:
                log_y[int(rng.integers(1, n)):] += rng.normal(0, 0.2)
            y = np.exp(log_y)
            sid = f"Y{i + 1:03d}"
            lengths[sid] = n
            for t, v in zip(range(end - n + 1, end + 1), y, strict=True):
                w.writerow([t, sid, f"{v:.2f}"])
    return path, lengths


def write_long_documents_csv(path, n=400, min_len=150, max_len=300, cue_within=16, seed=0, numeric=False):
    """Long documents whose label is decided only near their end: filler words throughout, and one sentiment
    word (positive or negative, the label) somewhere in the last `cue_within` words. Truncation to fewer than
    min_len - cue_within words from the head never sees it; the tail, head+tail and windows do.

    numeric=True writes JSONL numeric sequences instead (one channel of noise, with a +3 / -3 pulse of 3 steps
    in the last `cue_within` steps giving the label). Returns (path, lengths)."""
    rng = np.random.default_rng(seed)
    lengths = []
    rows = []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        length = int(rng.integers(min_len, max_len + 1))
        at = length - int(rng.integers(3, cue_within + 1))
        lengths.append(length)
        if numeric:
            x = rng.standard_normal(length).round(3)
            x[at:at + 3] += 3.0 if label else -3.0
            rows.append({"sequence": [[float(v)] for v in x], "label": "pos" if label else "neg"})
        else:
            words = [str(w) for w in rng.choice(FILLER, size=length)]
            words[at] = str(rng.choice(POSITIVE if label else NEGATIVE))
            rows.append([" ".join(words), "pos" if label else "neg"])
    if numeric:
        with open(path, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    else:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["review", "stars"])
            w.writerows(rows)
    return path, lengths


def write_ordered_cue_documents_csv(path, n=400, min_len=224, max_len=300, seed=0):
    """Long documents whose label is in the ORDER of their parts: filler words, one sentiment word in steps
    64-95 and one of the opposite sentiment in the 64-95 steps before the last 64; the label is the sentiment
    of the earlier one ("pos" / "neg"). Truncation to 64 steps (head, tail, or 16 + 48) sees neither; windows of 64
    see the two in different windows, and every document holds one positive and one negative word, so combining
    the windows without their order (the mean of their logits, attention) cannot tell the label; a document-level
    RNN over the windows in order (hierarchical) can. Returns (path, lengths)."""
    rng = np.random.default_rng(seed)
    lengths, rows = [], []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        label = bool(rng.integers(0, 2))
        words = [str(w) for w in rng.choice(FILLER, size=length)]
        words[int(rng.integers(64, 96))] = str(rng.choice(POSITIVE if label else NEGATIVE))
        words[length - 1 - int(rng.integers(64, 96))] = str(rng.choice(NEGATIVE if label else POSITIVE))
        lengths.append(length)
        rows.append([" ".join(words), "pos" if label else "neg"])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "stars"])
        w.writerows(rows)
    return path, lengths


HAS_SKTIME = importlib.util.find_spec("sktime") is not None  # sktime ships the UCR/UEA .ts files the tests read
SMALL_CLI = ["model.hidden_size=8", "model.embedding_dim=8", "model.num_layers=1", "train.max_epochs=2",
             "train.threads=1", "train.progress=plain", "train.probe_every=0"]  # a small, quick CLI run


def ucr_files(name: str) -> tuple[Path, Path]:
    """(TRAIN, TEST) .ts files of the UCR/UEA set `name` that sktime ships (check HAS_SKTIME first)."""
    root = Path(importlib.util.find_spec("sktime").origin).parent / "datasets" / "data" / name
    return root / f"{name}_TRAIN.ts", root / f"{name}_TEST.ts"
