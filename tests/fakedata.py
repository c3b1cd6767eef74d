"""Small realistic data files for tests, written to a given path (no network, no downloads)."""

from __future__ import annotations

import csv
import json

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


