"""Turkish treebanks UPOS over several seeds: `rnnkit train --task tag --dataset turkish_treebanks`, defaults.

    python bench/bench_tag.py --seeds 0 1 2 --threads 1 --out bench/results/tag.json

Split: the package's own rule, per file (web.conllu, then wiki.conllu): sentence index % 10 < 8 train,
== 8 dev (validation), == 9 test. No published figure on this split; the most-frequent-tag baseline
(each training word's most frequent tag, unknown words the most frequent tag overall) is computed on
the same test sentences. Target: UPOS test accuracy >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnkit import api
from rnnkit import config as C


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--out", default="bench/results/tag.json")
    args = ap.parse_args()
    runs = []
    for seed in args.seeds:
        cfg = C.resolve(None, ["task=tag", "data.dataset=turkish_treebanks", f"train.seed={seed}",
                               f"train.threads={args.threads}", "train.progress=none", *args.set])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = api.train(cfg, Path(tmp) / "run")
            wall = time.perf_counter() - t0
        test = s["metrics"]["test"]
        base = test["baselines"]["most_frequent_tag"]
        runs.append({"seed": seed, "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                     "test_oov_accuracy": test.get("oov_accuracy"), "test_loss": test["loss"],
                     "baseline_accuracy": base["accuracy"], "baseline_macro_f1": base["macro_f1"],
                     "best_epoch": s["best_epoch"], "epochs": s["epochs_run"], "stopped": s["stopped"],
                     "wall_seconds": wall, "real_tokens_per_second": s["real_tokens_per_second"]})
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "command": "python bench/bench_tag.py --seeds " + " ".join(map(str, args.seeds))
        + f" --threads {args.threads}" + "".join(f" --set {s}" for s in args.set),
        "equivalent_cli": "rnnkit train --task tag --dataset turkish_treebanks --set train.threads="
        f"{args.threads}" + "".join(f" --set {s}" for s in args.set),
        "threads": args.threads, "torch": torch.__version__, "device": "cpu",
        "split": "package's own: per file, sentence index % 10 < 8 train, == 8 dev, == 9 test",
        "runs": runs,
        "test_accuracy": _stats([r["test_accuracy"] for r in runs]),
        "test_macro_f1": _stats([r["test_macro_f1"] for r in runs]),
        "baseline_most_frequent_tag": {"accuracy": runs[0]["baseline_accuracy"],
                                       "macro_f1": runs[0]["baseline_macro_f1"]},
        "wall_seconds": _stats([r["wall_seconds"] for r in runs]),
        "target": "UPOS test accuracy >= 0.90",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    acc = result["test_accuracy"]
    print(f"UPOS test accuracy {acc['mean']:.4f} +- {acc['std']:.4f} over {len(runs)} seeds; most-frequent-tag "
          f"baseline {result['baseline_most_frequent_tag']['accuracy']:.4f}")


if __name__ == "__main__":
    main()
