"""rnnkit.contrib.sktime on sktime's shipped files, beside sktime's own torch GRUClassifier, every default.

    python bench/bench_sktime.py --seeds 0 1 2 --out bench/results/sktime.json

Per seed: RNNClassifier on JapaneseVowels (unequal lengths, 12 channels) and BasicMotions (equal lengths,
6 channels), RNNRegressor on Tecator; sktime's GRUClassifier on the same two classification sets (it declines
unequal lengths: its refusal is recorded). One torch thread for all, default TRAIN/TEST splits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _data(name: str):
    from sktime import datasets as D

    loader = {"japanese_vowels": D.load_japanese_vowels, "basic_motions": D.load_basic_motions,
              "tecator": D.load_tecator}[name]
    return (*loader(split="train"), *loader(split="test"))


def _run(model: str, name: str, seed: int) -> dict:
    from sktime.classification.deep_learning.gru import GRUClassifier

    from rnnkit.contrib.sktime import RNNClassifier, RNNRegressor

    X, y, Xt, yt = _data(name)
    est = {"rnnkit.RNNClassifier": lambda: RNNClassifier(random_state=seed),
           "rnnkit.RNNRegressor": lambda: RNNRegressor(random_state=seed),
           "sktime.GRUClassifier": lambda: GRUClassifier(random_state=seed)}[model]()
    t0 = time.perf_counter()
    try:
        est.fit(X, y)
    except ValueError as exc:
        return {"model": model, "data": name, "seed": seed, "refused": str(exc).split(".")[0]}
    pred = est.predict(Xt)
    wall = time.perf_counter() - t0
    row = {"model": model, "data": name, "seed": seed, "fit_predict_seconds": round(wall, 1)}
    if model.endswith("Regressor"):
        row["mse"] = float(np.mean((pred - yt) ** 2))
        row["mse_over_mean_baseline"] = row["mse"] / float(np.mean((y.mean() - yt) ** 2))
    else:
        row["accuracy"] = float(np.mean(pred == yt))
        row["majority_class"] = max(float(np.mean(yt == c)) for c in np.unique(y))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="bench/results/sktime.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    jobs = [("rnnkit.RNNClassifier", "japanese_vowels"), ("sktime.GRUClassifier", "japanese_vowels"),
            ("rnnkit.RNNClassifier", "basic_motions"), ("sktime.GRUClassifier", "basic_motions"),
            ("rnnkit.RNNRegressor", "tecator")]
    rows = []
    for seed in args.seeds:
        for model, name in jobs:
            rows.append(_run(model, name, seed))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for model, name in jobs:
        mine = [r for r in rows if r["model"] == model and r["data"] == name]
        key = "mse_over_mean_baseline" if model.endswith("Regressor") else "accuracy"
        values = [r[key] for r in mine if key in r]
        summary[f"{model} {name}"] = ({key: statistics.mean(values), "min": min(values), "max": max(values),
                                       "seconds": statistics.mean(r["fit_predict_seconds"] for r in mine)}
                                      if values else {"refused": mine[0]["refused"]})
        print(f"{model:22s} {name:16s} {summary[f'{model} {name}']}")
    result = {"command": "python bench/bench_sktime.py --seeds " + " ".join(map(str, args.seeds)),
              "rows": rows, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
