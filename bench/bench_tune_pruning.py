"""Doctor-driven pruning against the median rule alone, at the same budget of trials, on a real data set.

    python bench/bench_tune_pruning.py --dataset japanese_vowels --trials 16 --seeds 0 1 2 --set train.threads=1
    python bench/bench_tune_pruning.py --startup --set train.threads=1   # a diverging first trial, per policy

One `rnnkit tune` study per (seed, policy), policies interleaved per seed (each first on alternate seeds, after
an untimed warm-up): "median" (`doctor=False`: Optuna's
median rule alone) and "doctor+median" (the default: a trial whose training loss diverged, or that a NaN/Inf
stopped, is pruned at once). The sampler is seeded alike for both policies of a seed, so their first trials
(TPE's random start-up) are the same draws. The search space is a wide learning-rate range, as a user
unsure of the scale would give (the upper end diverges), times two hidden sizes. Reported per study: wall
time and this process's CPU time (training runs in it, one thread: the fairer figure on a shared machine),
epochs trained over all trials, states, who pruned how many, the best validation loss; and the
doctor's saving in wall time and epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import uptime  # noqa: E402

from rnnkit.tuning import tune  # noqa: E402


def one_study(dataset: str, trials: int, seed: int, doctor: bool, space: dict, extra: list[str],
              enqueue: list[dict] | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = tune([f"data.dataset={dataset}", *extra], None, Path(tmp) / "tune", trials=trials, space=space,
                      seed=seed, doctor=doctor, enqueue=enqueue)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    listed = result["trials"]
    by = {}
    for t in listed:
        if t["state"] == "PRUNED":
            key = t.get("pruned", {}).get("by", "?")
            by[key] = by.get(key, 0) + 1
    return {"seed": seed, "policy": "doctor+median" if doctor else "median", "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "epochs_trained": sum(t["epochs"] for t in listed),
            "counts": {k: v for k, v in result["counts"].items() if v},
            "pruned_by": by, "best_val_loss": result.get("best", {}).get("value"),
            "best_params": result.get("best", {}).get("params"),
            "trials": [{"lr": t["params"].get("optim.lr"), "hidden": t["params"].get("model.hidden_size"),
                        "state": t["state"], "epochs": t["epochs"], "value": t["value"],
                        "pruned_by": t.get("pruned", {}).get("by"), "code": t.get("pruned", {}).get("code")}
                       for t in listed]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="japanese_vowels")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--lr-high", type=float, default=3.0, help="top of the log-uniform learning-rate range")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides for every trial")
    ap.add_argument("--startup", action="store_true", help="instead: one study of one trial at the top learning "
                    "rate (a diverging draw among the first trials, which the median rule never judges), per policy")
    ap.add_argument("--out", default=None, help="default bench/results/tune_pruning.json (--startup: "
                    "tune_pruning_startup.json)")
    args = ap.parse_args()
    args.out = args.out or f"bench/results/tune_pruning{'_startup' if args.startup else ''}.json"
    space = {"optim.lr": {"low": 1e-3, "high": args.lr_high, "log": True}, "model.hidden_size": [64, 128]}
    if args.startup:
        return startup(args, space)
    # warm-up: the data set's conversion cache and the first imports, outside the timed studies
    one_study(args.dataset, 1, 0, True, space, [*args.set, "train.max_epochs=1"])
    load_before = uptime()
    studies = []
    for i, seed in enumerate(args.seeds):
        for doctor in ((True, False) if i % 2 == 0 else (False, True)):  # each policy goes first as often
            studies.append(one_study(args.dataset, args.trials, seed, doctor, space, args.set))
            s = studies[-1]
            print(f"seed {seed} {s['policy']:>13}: {s['wall_seconds']:.1f} s ({s['cpu_seconds']:.1f} s CPU), "
                  f"{s['epochs_trained']} epochs, "
                  f"{s['counts']}, pruned by {s['pruned_by']}, best val loss {s['best_val_loss']}", flush=True)
    keys = ("wall_seconds", "cpu_seconds", "epochs_trained")
    totals = {p: {k: sum(s[k] for s in studies if s["policy"] == p) for k in keys} for p in ("median", "doctor+median")}
    saved = {k: 1 - totals["doctor+median"][k] / totals["median"][k] for k in keys}
    # the trials the doctor pruned, and the same draws (seed, lr, hidden) under the median rule alone
    lost = {"doctor+median": 0, "median": 0, "trials": 0, "matched": 0}
    for s in studies:
        if s["policy"] != "doctor+median":
            continue
        other = next(o for o in studies if o["seed"] == s["seed"] and o["policy"] == "median")
        alike = {(t["lr"], t["hidden"]): t for t in other["trials"]}
        for t in s["trials"]:
            if t["pruned_by"] == "doctor":
                lost["trials"] += 1
                lost["doctor+median"] += t["epochs"]
                if (t["lr"], t["hidden"]) in alike:
                    lost["matched"] += 1
                    lost["median"] += alike[(t["lr"], t["hidden"])]["epochs"]
    result = {"command": f"python bench/bench_tune_pruning.py --dataset {args.dataset} --trials {args.trials} "
                         f"--seeds {' '.join(map(str, args.seeds))} --lr-high {args.lr_high:g}"
                         + "".join(f" --set {s}" for s in args.set),
              "space": space, "uptime_before": load_before, "uptime_after": uptime(), "studies": studies,
              "totals": totals, "saved_share": saved, "doctor_pruned_epochs": lost}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"doctor+median vs median alone, {len(args.seeds)} x {args.trials} trials: wall "
          f"{totals['doctor+median']['wall_seconds']:.0f} s vs {totals['median']['wall_seconds']:.0f} s "
          f"({saved['wall_seconds']:.0%} saved), CPU {totals['doctor+median']['cpu_seconds']:.0f} s vs "
          f"{totals['median']['cpu_seconds']:.0f} s ({saved['cpu_seconds']:.0%} saved), "
          f"epochs {totals['doctor+median']['epochs_trained']} vs "
          f"{totals['median']['epochs_trained']} ({saved['epochs_trained']:.0%} saved)")
    print(f"the {lost['trials']} trials the doctor pruned: {lost['doctor+median']} epochs; the {lost['matched']} same "
          f"draws under the median rule alone: {lost['median']} epochs")
    print(result["uptime_after"])


def startup(args, space: dict) -> None:
    """A diverging trial that comes first: the median rule cannot prune it (no finished trials to compare)."""
    one_study(args.dataset, 1, 0, True, space, [*args.set, "train.max_epochs=1"])  # warm-up
    first = [{"optim.lr": args.lr_high, "model.hidden_size": 64}]
    load_before = uptime()
    studies = [one_study(args.dataset, 1, 0, doctor, space, args.set, enqueue=first) for doctor in (True, False)]
    for s in studies:
        t = s["trials"][0]
        print(f"{s['policy']:>13}: lr {t['lr']:g}: {t['state']} after {t['epochs']} epochs, {s['wall_seconds']:.1f} s "
              f"({s['cpu_seconds']:.1f} s CPU)")
    result = {"command": f"python bench/bench_tune_pruning.py --startup --dataset {args.dataset} --lr-high "
                         f"{args.lr_high:g}" + "".join(f" --set {s}" for s in args.set),
              "uptime_before": load_before, "uptime_after": uptime(), "studies": studies}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(result["uptime_after"])


if __name__ == "__main__":
    main()
