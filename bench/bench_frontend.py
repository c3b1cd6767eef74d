"""Default classifier before / after the long-sequence front-end (`model.frontend`), on sktime's UCR/UEA files.

Each row is one `rnnkit train TRAIN.ts --test TEST.ts` run (one thread, the default config apart from the
`--set` overrides of its variant); it records test accuracy, the majority-class baseline, epochs, seconds per
epoch, the front-end the run chose (summary.json's data.frontend) and `uptime`'s load.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_frontend.py --sets ArrowHead,GunPoint \\
        --variants none,auto --seeds 0 --out bench/results/frontend_tuning.json

Variants: "none" (model.frontend=none, the behaviour before), "auto" (the default), or any
"name:key=value,key=value" (e.g. "patch:model.frontend=patch").
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

SKTIME_DATA = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "sktime" / "datasets" / "data"
VARIANTS = {"none": ["model.frontend=none"], "auto": []}


def _variant(spec: str) -> tuple[str, list[str], dict]:
    name, _, rest = spec.partition(":")
    env = {}
    sets = []
    for item in filter(None, rest.split(",")):
        if item.startswith("env."):
            k, _, v = item[4:].partition("=")
            env[k] = v
        else:
            sets.append(item)
    return name, VARIANTS.get(name, []) + sets, env


def _load() -> float:
    return os.getloadavg()[0]


def run_one(problem: str, variant: str, seed: int, extra: list[str]) -> dict:
    name, sets, env = _variant(variant)
    train = SKTIME_DATA / problem / f"{problem}_TRAIN.ts"
    test = SKTIME_DATA / problem / f"{problem}_TEST.ts"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "rnnkit.cli", "train", str(train), "--test", str(test), "--out", str(out),
               "--set", "train.progress=none", "--set", "train.threads=1", "--set", f"train.seed={seed}"]
        if problem == "japanese_vowels":
            cmd = [sys.executable, "-m", "rnnkit.cli", "train", "--dataset", "japanese_vowels", "--out", str(out),
                   "--set", "train.progress=none", "--set", "train.threads=1", "--set", f"train.seed={seed}"]
        for s in [*sets, *extra]:
            cmd += ["--set", s]
        load0 = _load()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
        wall = time.perf_counter() - t0
        row = {"problem": problem, "variant": name, "seed": seed, "sets": sets + extra, "env": env,
               "returncode": proc.returncode, "wall_s": round(wall, 1), "load_start": load0, "load_end": _load()}
        if proc.returncode != 0 and not (out / "summary.json").exists():
            row["error"] = proc.stderr[-2000:]
            return row
        s = json.loads((out / "summary.json").read_text())
        test_m = s["metrics"]["test"]
        row.update(accuracy=round(test_m["accuracy"], 4),
                   majority=round(test_m["baselines"]["majority_class"]["accuracy"], 4),
                   epochs=s["epochs_run"], best_epoch=s["best_epoch"],
                   s_per_epoch=round(s["wall_seconds"] / max(s["epochs_run"], 1), 2),
                   parameters=s["parameters"], frontend=s["data"].get("frontend"))
        return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", required=True, help="comma-separated sktime problems (or japanese_vowels)")
    ap.add_argument("--variants", default="none,auto")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", action="append", default=[], help="extra --set for every run")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rows = []
    out = Path(args.out)
    if out.exists():
        rows = json.loads(out.read_text())["rows"]
    for problem in args.sets.split(","):
        for variant in args.variants.split(";") if ";" in args.variants else args.variants.split(" "):
            for seed in map(int, args.seeds.split(",")):
                row = run_one(problem, variant, seed, args.set)
                rows.append(row)
                print(json.dumps({k: row.get(k) for k in ("problem", "variant", "seed", "accuracy", "majority",
                                                          "epochs", "best_epoch", "s_per_epoch", "load_start",
                                                          "error")}), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
