"""Refit on train + validation (`train.refit`, issue 11 item 3): test accuracy without and with, same seeds.

For each data set and seed, two `python -m rnnkit.cli train` processes run back to back, interleaved (off, on,
off, on, ...): `train.refit=false` and `train.refit=true`, every other setting the default (one thread, no
progress). Both use `train.seed=S` and `data.split_seed=S`, so the seed also draws which training rows are held
out for validation (on 36 rows, which 4 are held out matters as much as the initial weights).

Read from each run's summary.json: test accuracy, wall time; with refit also the first model's test accuracy
(the refit run trains the same first model, which must score exactly what the off run scores: the `same` column
checks it), the refit's passes and its time against the first training's in the same process (timed in one process
under one load; the off and on processes of a shared machine may see different loads).

The sets: UCR/UEA .ts files that sktime ships (read as files, sktime not imported; bench_defaults' reader),
their default TRAIN/TEST split; validation comes out of TRAIN (10%, stratified).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_refit.py --seeds 0,1,2 --out bench/results/refit.json
    python bench/bench_refit.py --tables bench/results/refit.json        # print the table again
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import uptime  # noqa: E402  (this folder, put on sys.path above)
from bench_defaults import ucr_files  # noqa: E402

SETS = ["UnitTest", "ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf"]
COMMON = ["train.threads=1", "train.progress=none"]
TIMEOUT = 3600


def run_one(name: str, seed: int, refit: bool, out: Path) -> dict:
    tr, te = ucr_files(name)
    sets = [*COMMON, f"train.seed={seed}", f"data.split_seed={seed}", f"train.refit={'true' if refit else 'false'}"]
    argv = [sys.executable, "-m", "rnnkit.cli", "train", str(tr), "--test", str(te), "--task", "classify",
            "--out", str(out), *[a for s in sets for a in ("--set", s)]]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    row = {"set": name, "seed": seed, "refit": refit, "exit": p.returncode, "process_seconds": time.perf_counter() - t0,
           "command": "rnnkit " + " ".join(argv[3:])}
    if p.returncode != 0:
        row["error"] = p.stderr.splitlines()[-6:]
        return row
    s = json.loads((out / "summary.json").read_text())
    block = s.get("refit") or {}
    row |= {"accuracy": s["metrics"]["test"]["accuracy"], "wall_seconds": s["wall_seconds"],
            "best_epoch": s["best_epoch"], "epochs_run": s["epochs_run"], "epoch_scale": s.get("epoch_scale"),
            "sizes": s["data"]["sizes"], "refit_on": bool(block.get("on"))}
    if block.get("on"):
        row |= {"first_accuracy": block["first_model"]["test"]["accuracy"], "refit_seconds": block["wall_seconds"],
                "refit_passes": block["passes"], "refit_rows": block["rows"]}
    return row


def table(rows: list[dict]) -> str:
    out = ["| data set | train / val rows | refit off (seeds) | mean | refit on (seeds) | mean | on − off | "
           "first model = off run | refit passes | refit s / first training s |",
           "|---|---|---|---:|---|---:|---:|---|---|---:|"]
    deltas = []
    for name in dict.fromkeys(r["set"] for r in rows):
        off = {r["seed"]: r for r in rows if r["set"] == name and not r["refit"] and r["exit"] == 0}
        on = {r["seed"]: r for r in rows if r["set"] == name and r["refit"] and r["exit"] == 0}
        seeds = sorted(set(off) & set(on))
        if not seeds:
            continue
        a = [off[s]["accuracy"] for s in seeds]
        b = [on[s]["accuracy"] for s in seeds]
        same = all(on[s]["first_accuracy"] == off[s]["accuracy"] for s in seeds)
        sizes = off[seeds[0]]["sizes"]
        # the refit's time against the first training's, in the same process (the same load; separate processes
        # of a shared machine see different loads)
        ratio = statistics.mean(on[s]["refit_seconds"] / (on[s]["wall_seconds"] - on[s]["refit_seconds"])
                                for s in seeds)
        d = statistics.mean(b) - statistics.mean(a)
        deltas.append(d)
        out.append(f"| {name} | {sizes['train']} / {sizes['val']} | {', '.join(f'{x:.3f}' for x in a)} | "
                   f"{statistics.mean(a):.3f} | {', '.join(f'{x:.3f}' for x in b)} | {statistics.mean(b):.3f} | "
                   f"{d:+.3f} | {'yes' if same else 'NO'} | {', '.join(str(on[s]['refit_passes']) for s in seeds)} | "
                   f"{ratio:.2f} |")
    if deltas:
        out.append(f"\nmean on − off over {len(deltas)} sets: {statistics.mean(deltas):+.3f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--tables", metavar="JSON[,JSON]", help="print the table of results files and exit")
    args = ap.parse_args(argv)
    if args.tables:  # one file, or several (comma-separated) written by separate invocations
        print(table([r for f in args.tables.split(",") for r in json.loads(Path(f).read_text())["rows"]]))
        return 0
    out = Path(args.out) if args.out else None
    data = {"rows": [], "uptime": []}
    if out is not None and args.append and out.exists():
        data = json.loads(out.read_text())
    data["uptime"].append({"start": uptime()})
    work = Path(tempfile.mkdtemp(prefix="bench-refit-"))
    for name in args.sets.split(","):
        for seed in map(int, args.seeds.split(",")):
            for refit in (False, True):  # interleaved: off, on, off, on, ...
                row = run_one(name, seed, refit, work / f"{name}-{seed}-{'on' if refit else 'off'}")
                data["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("command", "sizes")}), flush=True)
                if out is not None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(data, indent=1))
    data["uptime"][-1]["end"] = uptime()
    if out is not None:
        out.write_text(json.dumps(data, indent=1))
    print(table(data["rows"]))
    print(data["uptime"][-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
