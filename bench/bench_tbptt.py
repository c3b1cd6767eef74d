"""Truncated backprop through time against window training on pmdarima's `taylor` (issue 12).

Each configuration is one `rnnkit train --dataset taylor` (the built-in's protocol: the last 403 half-hours as
test, horizon 48, m = 48; the same 356 test windows as BENCHMARKS.md's defaults table) in its own process, one
thread. Reported per run: test MASE and RMSE, the naive / seasonal-naive baselines on the same windows, passes
over the training data, optimizer steps, training wall time (summary.json `wall_seconds`: the loop and its
validations, after data preparation and forecast.auto's search) and that time per pass.

    PYTHONPATH=src python bench/bench_tbptt.py --seeds 0 --out bench/results/tbptt_taylor.json
    PYTHONPATH=src python bench/bench_tbptt.py --only tbptt-48 --set data.batch_size=16

Configurations (`--only NAME,...`):
  window        the default window training (forecast.auto on, as BENCHMARKS.md's defaults table)
  window-L48    window training, forecast.auto off, input_length 48 (what the search picks on taylor)
  tbptt-48      forecast.tbptt=48 (chunks of one day), forecast.auto off, input_length 48 at evaluation
  tbptt-48-auto forecast.tbptt=48 with forecast.auto on (window_norm is not searched under TBPTT)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "window": [],
    "window-L48": ["forecast.auto=false", "forecast.input_length=48"],
    "tbptt-48": ["forecast.auto=false", "forecast.input_length=48", "forecast.tbptt=48"],
    "tbptt-48-auto": ["forecast.tbptt=48"],
}


def run_one(name: str, seed: int, extra: list[str], root: Path) -> dict:
    out = root / f"{name}-{seed}"
    sets = [*CONFIGS[name], *extra, "train.threads=1", "train.progress=none", f"train.seed={seed}"]
    cmd = ["rnnkit", "train", "--dataset", "taylor", "--task", "forecast", "--out", str(out),
           *[a for s in sets for a in ("--set", s)]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", *cmd[1:]], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    row = {"config": name, "seed": seed, "command": " ".join(cmd), "exit": proc.returncode,
           "process_seconds": seconds}
    if proc.returncode != 0:
        row["stderr"] = proc.stderr[-2000:]
        return row
    s = json.loads((out / "summary.json").read_text())
    test = s["metrics"]["test"]
    passes = s["epochs_run"]
    row.update(mase=test["mase"], rmse=test["rmse"],
               naive={k: test["baselines"]["naive"][k] for k in ("mase", "rmse")},
               seasonal_naive={k: test["baselines"]["seasonal_naive"][k] for k in ("mase", "rmse")},
               passes=passes, steps=s["steps"], best_epoch=s["best_epoch"], stopped=s["stopped"],
               wall_seconds=s["wall_seconds"], seconds_per_pass=s["wall_seconds"] / max(passes, 1),
               tbptt=s.get("tbptt"), auto=(s["data"].get("auto") or {}).get("chosen"))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--only", default=",".join(CONFIGS))
    ap.add_argument("--set", action="append", default=[], help="an extra KEY=VALUE for every run")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tbptt-") as tmp:
        for name in args.only.split(","):
            for seed in (int(x) for x in args.seeds.split(",")):
                row = run_one(name, seed, args.set, Path(tmp))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("tbptt",)}), flush=True)
    result = {"meta": {"command": " ".join(sys.argv), "loadavg_start": load, "loadavg_end": os.getloadavg(),
                       "cpus": os.cpu_count()}, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
