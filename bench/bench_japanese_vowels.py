"""The main job over several seeds: `rnnkit train --dataset japanese_vowels` with every default.

    python bench/bench_japanese_vowels.py --seeds 0 1 2 --out bench/results/japanese_vowels.json

Published test accuracy on the same split (DATASETS.md): LSTM-FCN 0.99 (Karim et al. 2019),
FCN 0.993 and echo-state network 0.965 (Fawaz et al. 2019), 1-NN DTW about 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rnnkit import api
from rnnkit import config as C


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--out", default="bench/results/japanese_vowels.json")
    args = ap.parse_args()
    runs = []
    for seed in args.seeds:
        cfg = C.resolve(None, ["data.dataset=japanese_vowels", f"train.seed={seed}", "train.progress=none",
                               *args.set])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = api.train(cfg, Path(tmp) / "run")
            wall = time.perf_counter() - t0
        test = s["metrics"]["test"]
        runs.append({"seed": seed, "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                     "test_loss": test["loss"], "best_epoch": s["best_epoch"], "epochs": s["epochs_run"],
                     "wall_seconds": wall})
        print(json.dumps(runs[-1]))
    acc = [r["test_accuracy"] for r in runs]
    result = {"command": "python bench/bench_japanese_vowels.py --seeds " + " ".join(map(str, args.seeds))
              + "".join(f" --set {s}" for s in args.set),
              "runs": runs, "accuracy_mean": statistics.mean(acc),
              "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
              "accuracy_min": min(acc), "accuracy_max": max(acc)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"test accuracy {result['accuracy_mean']:.4f} +- {result['accuracy_std']:.4f} "
          f"(min {result['accuracy_min']:.4f}, max {result['accuracy_max']:.4f}) over {len(acc)} seeds")


if __name__ == "__main__":
    main()
