"""forecast.auto and short series (issue 11): the default run (no protocol settings) on three user files.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/bench_forecast_auto.py --label after
    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/old/src .venv/bin/python bench/bench_forecast_auto.py --label before

Each run is `python -m rnnkit.cli train FILE --task forecast` in a subprocess with this process's
PYTHONPATH (so "before" measures another checkout's code), one thread, the columns and the task's
horizon/test size/season as the only settings:

* AirPassengers (the literal in pmdarima's `datasets/airpassengers.py`, 144 months, not logged): horizon
  12, test the last 12 months, seasonality 12;
* co2 (statsmodels' weekly Mauna Loa series, monthly means, 5 empty months interpolated; 526 months):
  horizon 12, test the last 36 months, seasonality 12;
* 200 short yearly series (tests/fakedata.py `write_short_yearly_series`, 15-60 years, M4-yearly-like):
  horizon 6;
* the sunspots built-in (its own protocol; must stay below MSE 306).

Writes bench/results/forecast_auto_<label>.json: per run the test MSE/MASE, the naive and seasonal
naive baselines on the same windows, data.auto (choice, budget use) and data.short_series counts.
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_data(folder: Path) -> dict[str, Path]:
    def package(name: str) -> Path:  # found, not imported (pmdarima's import needs pandas)
        return Path(importlib.util.find_spec(name).submodule_search_locations[0])

    out = {}
    src = (package("pmdarima") / "datasets" / "airpassengers.py").read_text()
    lst = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.List) and len(n.elts) > 100)
    out["air"] = folder / "airpassengers.csv"
    with open(out["air"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "passengers"])
        for i, e in enumerate(lst.elts):
            w.writerow([str(np.datetime64("1949-01") + i), f"{ast.literal_eval(e):g}"])
    month = defaultdict(list)
    with open(package("statsmodels") / "datasets" / "co2" / "co2.csv") as fh:
        for r in csv.DictReader(fh):
            if r["co2"].strip():
                month[r["date"][:4] + "-" + r["date"][4:6]].append(float(r["co2"]))
    months = [str(m) for m in np.arange(np.datetime64(min(month)), np.datetime64(max(month)) + 1)]
    vals = np.array([np.mean(month[m]) if m in month else np.nan for m in months])
    idx, ok = np.arange(len(vals)), ~np.isnan(vals)
    vals = np.interp(idx, idx[ok], vals[ok])
    out["co2"] = folder / "co2_monthly.csv"
    with open(out["co2"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "co2"])
        w.writerows([m, f"{v:.3f}"] for m, v in zip(months, vals, strict=True))
    sys.path.insert(0, str(ROOT / "tests"))
    from fakedata import write_short_yearly_series

    out["short"], _ = write_short_yearly_series(folder / "short_yearly.csv")
    return out


RUNS = {
    "air": lambda f: [str(f["air"]), "--set", "forecast.time_column=month", "--set", "forecast.horizon=12",
                      "--set", "forecast.test_size=12", "--set", "forecast.seasonality=12"],
    "co2": lambda f: [str(f["co2"]), "--set", "forecast.time_column=month", "--set", "forecast.horizon=12",
                      "--set", "forecast.test_size=36", "--set", "forecast.seasonality=12"],
    "short": lambda f: [str(f["short"]), "--set", "forecast.time_column=year", "--set",
                        "forecast.series_column=series", "--set", "forecast.horizon=6"],
    "sunspots": lambda f: ["--dataset", "sunspots"],
}


def one(name: str, files: dict, seed: int, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "rnnkit.cli", "train", *RUNS[name](files), "--task", "forecast", "--out", str(out),
           "--set", "train.progress=none", "--set", "train.threads=1", "--set", f"train.seed={seed}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    row = {"data": name, "seed": seed, "rc": proc.returncode, "wall_seconds": round(time.perf_counter() - t0, 1)}
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else ""
        row["error_first_line"] = next((ln for ln in proc.stderr.splitlines() if "error" in ln), "")[:300]
        return row
    s = json.loads((out / "summary.json").read_text())
    t, b = s["metrics"]["test"], s["metrics"]["test"]["baselines"]
    row.update(test={"mse": t["mse"], "mase": t["mase"]}, naive={"mse": b["naive"]["mse"], "mase": b["naive"]["mase"]},
               seasonal_naive={"m": b["seasonal_naive"]["seasonality"], "mse": b["seasonal_naive"]["mse"],
                               "mase": b["seasonal_naive"]["mase"]}, sizes=s["data"]["sizes"])
    a = s["data"].get("auto")
    if a:
        row["auto"] = {k: a[k] for k in ("chosen", "metric", "val", "tried", "candidates", "finalists", "seconds",
                                         "budget_exhausted", "beats_seasonal_naive")}
    short = s["data"].get("short_series")
    if short:
        row["short_series"] = {"set_aside": len(short["set_aside"]), "shorter_window": len(short["shorter_window"])}
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--data", default="air,co2,short,sunspots")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    extra = [a for s in args.set for a in ("--set", s)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_data(Path(tmp))
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in args.data.split(","):
                row = one(name, files, seed, Path(tmp) / f"{name}-{seed}", extra)
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"label": args.label, "pythonpath": os.environ.get("PYTHONPATH"), "uptime": os.getloadavg(),
              "command": " ".join([".venv/bin/python", "bench/bench_forecast_auto.py", *(argv or sys.argv[1:])]),
              "runs": rows}
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"forecast_auto_{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
