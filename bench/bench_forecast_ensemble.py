"""Would averaging several runs' forecasts beat seasonal naive where one run does not? (issue 11, a measurement)

Reads a `bench_defaults.py --family forecast` results file run with several seeds, finds each seed's run
directory (`bench_defaults.py` keeps them under /tmp/bench-defaults-*/NAME-SEED), forecasts every test window of
the benchmark's protocol with `rnnkit.api.predict` from the history before its origin, and scores each seed, the
mean of the seeds' forecasts and their median on the benchmark's own MASE scale. Each seed ran its own
`forecast.auto` search, so the average is of different chosen candidates and seeds (an upper bound on what a
seed ensemble of one candidate would diversify).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_defaults.py --deps /tmp/benchdeps --family forecast \
        --only lynx,seatbelts --seeds 0,1,2 --out /tmp/runs.json
    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_forecast_ensemble.py /tmp/runs.json /tmp/ensemble.json
"""

from __future__ import annotations

import csv
import glob
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_defaults as B  # noqa: E402

from rnnkit import api  # noqa: E402


def test_windows(name: str) -> tuple[list, np.ndarray, list[int], np.ndarray, float, int, int]:
    spec = B.FORECAST[name]
    times, y = B.load_series(spec.get("load", name))
    h, m = spec["h"], spec["m"]
    val_start, t0, end = B.forecast_spans(times, len(y), spec)
    origins = list(range(max(t0, spec.get("L", 24)), end - h + 1))
    true = np.stack([y[o:o + h] for o in origins])
    return times, y, origins, true, B.mase_scale(y[:val_start], m), h, m


def forecasts(run: str, times: list, y: np.ndarray, origins: list[int], work: Path) -> np.ndarray:
    out = []
    for o in origins:
        hist, pred = work / "history.csv", work / "forecast.csv"
        hist.write_text("time,value\n" + "".join(f"{t},{float(v)!r}\n" for t, v in zip(times[:o], y[:o], strict=True)))
        api.predict(run, hist, pred)
        with open(pred, newline="") as fh:
            out.append([float(r["forecast"]) for r in csv.DictReader(fh)])
    return np.array(out)


def main(argv: list[str]) -> int:
    rows = json.loads(Path(argv[0]).read_text())["rows"]
    work = Path(tempfile.mkdtemp(prefix="forecast-ensemble-"))
    result = {}
    for name in sorted({r["dataset"] for r in rows}):
        times, y, origins, true, scale, h, m = test_windows(name)
        preds = {int(d.rsplit("-", 1)[1]): forecasts(d, times, y, origins, work)
                 for d in sorted(glob.glob(f"/tmp/bench-defaults-*/{name}-[0-9]"))}
        if not preds:
            continue
        snaive = np.stack([y[o - m + (np.arange(h) % m)] if o >= m else np.repeat(y[o - 1], h) for o in origins])
        stack = np.stack(list(preds.values()))
        result[name] = {"seeds": {s: B.metrics(p, true, scale)["mase"] for s, p in preds.items()},
                        "mean_of_forecasts": B.metrics(stack.mean(axis=0), true, scale)["mase"],
                        "median_of_forecasts": B.metrics(np.median(stack, axis=0), true, scale)["mase"],
                        "seasonal_naive": B.metrics(snaive, true, scale)["mase"]}
        print(name, json.dumps(result[name]), flush=True)
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
