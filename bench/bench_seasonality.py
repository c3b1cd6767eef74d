"""A user who does not set forecast.seasonality: before (m = 1) against the calendar's season (issue 11).

The forecasting sets of bench_defaults.py that have a calendar (monthly or quarterly), written as a CSV whose time
column is the calendar (quarters as their first month, "1965-01", "1965-04": a format both versions read), and
trained with the data's protocol from bench_defaults.FORECAST (horizon, test span) but WITHOUT
forecast.seasonality: what a user gets who leaves it unset. A and B are two source trees (PYTHONPATH), run one
after the other per set (A B A B ...), one process at a time, one thread. Reported: the seasonality each run used
(summary data.seasonality), test RMSE (scale-free of m, unlike MASE), and the naive and seasonal-naive forecasts'
RMSE over the same windows, the latter with the protocol's m (bench_defaults.FORECAST).

    PYTHONPATH=src python bench/bench_seasonality.py --deps /tmp/benchdeps --a /tmp/snapA/src --b src \\
        --out bench/results/seasonality.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

# the calendar of each set bench_defaults writes with integer times: (first month, months per step)
CALENDAR = {"woolyrnq": ("1965-01", 3), "austres": ("1971-04", 3), "ausbeer": ("1956-01", 3),
            "realgdp_log": ("1959-01", 3), "unemp": ("1959-01", 3), "uschange": ("1970-01", 3)}
MONTHLY = ("air_passengers", "wineind", "seatbelts", "elnino")
SETS = (*MONTHLY, *CALENDAR)


def calendar_times(name: str, times: list) -> list[str]:
    if name in CALENDAR:
        first, step = CALENDAR[name]
        return [str(np.datetime64(first) + step * i) for i in range(len(times))]
    return [str(t)[:7] for t in times]


def run(tree: str, args: list[str], out: Path) -> dict:
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=tree)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", *args, "--out", str(out), "--set",
                        "train.threads=1", "--set", "train.progress=none"], capture_output=True, text=True, env=env,
                       timeout=900)
    row = {"exit": p.returncode, "process_seconds": round(time.perf_counter() - t0, 1),
           "said": [ln for ln in p.stderr.splitlines() if "seasonality" in ln][:2]}
    if p.returncode:
        row["error"] = p.stderr.splitlines()[-4:]
        return row
    s = json.loads((out / "summary.json").read_text())
    test = s["metrics"]["test"]
    row |= {"m": s["data"].get("seasonality"), "inferred": s["data"].get("seasonality_inferred"),
            "rmse": test["rmse"], "windows": s["data"]["sizes"]["test"],
            "baselines": {k: v.get("rmse") for k, v in test["baselines"].items()},
            "chosen": (s["data"].get("auto") or {}).get("chosen")}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="PYTHONPATH of version A (before)")
    ap.add_argument("--b", required=True, help="PYTHONPATH of version B (after)")
    ap.add_argument("--deps", help="a folder with pandas/patsy for the data loaders (bench_defaults --deps)")
    ap.add_argument("--only", help="comma-separated sets")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_seasonality"))
    a = ap.parse_args(argv)
    if a.deps:
        sys.path.insert(0, a.deps)
    import bench_defaults as bd

    a.work.mkdir(parents=True, exist_ok=True)
    results = {"meta": {"a": a.a, "b": a.b, "uptime": subprocess.run(["uptime"], capture_output=True,
                                                                       text=True).stdout.strip()}, "sets": {}}
    for name in (a.only.split(",") if a.only else SETS):
        spec = bd.FORECAST[name]
        times, y = bd.load_series(spec.get("load", name))
        times = calendar_times(name, times)
        csv = a.work / f"{name}.csv"
        csv.write_text("time,value\n" + "".join(f"{t},{float(v)!r}\n" for t, v in zip(times, y, strict=True)))
        full = bd.forecast_args(name, csv, spec)
        args = [x for i, x in enumerate(full) if not x.startswith("forecast.seasonality=")
                and not (x == "--set" and i + 1 < len(full) and full[i + 1].startswith("forecast.seasonality="))]
        n, h, m = len(y), spec["h"], spec["m"]
        _, t0, end = bd.forecast_spans(times, n, spec)
        origins = list(range(t0, end - h + 1))
        true = np.stack([y[o:o + h] for o in origins])
        snaive = np.stack([y[o - m + (np.arange(h) % m)] for o in origins])
        naive = np.stack([np.repeat(y[o - 1], h) for o in origins])
        entry = {"protocol_m": m, "h": h, "windows": len(origins),
                 "naive_rmse": float(np.sqrt(np.mean((naive - true) ** 2))),
                 "snaive_rmse": float(np.sqrt(np.mean((snaive - true) ** 2))), "args": args}
        for tag, tree in (("a", a.a), ("b", a.b)):
            entry[tag] = run(tree, args, a.work / f"run_{name}_{tag}")
            print(name, tag, {k: entry[tag].get(k) for k in ("exit", "m", "rmse", "windows", "process_seconds")},
                  flush=True)
        results["sets"][name] = entry
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1, default=str))
    results["meta"]["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    a.out.write_text(json.dumps(results, indent=1, default=str))
    print("| set | calendar | protocol m | m used A / B | A RMSE | B RMSE | naive | s-naive (protocol m) | B beats "
          "s-naive | B / A |")
    print("|---|---|---:|---|---:|---:|---:|---:|---|---:|")
    for name, e in results["sets"].items():
        ra, rb = e["a"].get("rmse"), e["b"].get("rmse")
        cal = "quarterly" if name in CALENDAR else "monthly"
        print(f"| {name} | {cal} | {e['protocol_m']} | {e['a'].get('m')} / {e['b'].get('m')} | "
              f"{ra if ra is None else f'{ra:.4g}'} | {rb if rb is None else f'{rb:.4g}'} | {e['naive_rmse']:.4g} | "
              f"{e['snaive_rmse']:.4g} | {'yes' if rb is not None and rb < e['snaive_rmse'] else 'no'} | "
              f"{rb / ra:.2f} |" if ra and rb else f"| {name} | failed: {e['a'].get('error')} {e['b'].get('error')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
