"""Default classifier before / after the long-sequence front-end (`model.frontend`), on sktime's UCR/UEA files.

Each row is one `rnnkit train TRAIN.ts --test TEST.ts` run (one thread, the default config apart from the
`--set` overrides of its variant); it records test accuracy, the majority-class baseline, epochs, seconds per
epoch, the front-end the run chose (summary.json's data.frontend) and `uptime`'s load.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_frontend.py --sets ArrowHead,GunPoint \\
        --variants none,auto --seeds 0 --out bench/results/frontend_tuning.json

Variants: "none" (model.frontend=none, the behaviour before), "auto" (the default), or any
"name:key=value,key=value" (e.g. "patch:model.frontend=patch").

Builds: `--srcs before=/tmp/main-snap/src,after=src` runs every (set, seed, variant) once per build, the builds
innermost (A B A B ...), each process with PYTHONPATH set to that build's `src` (a snapshot of another commit:
`git archive COMMIT src | tar -x -C DIR`); without it, the PYTHONPATH of this process. sktime's UnitTest files
open with '%' lines that rnnkit's .ts reader rejects: the runs read a copy without them (as bench_defaults.py).
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


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _files(problem: str, tmp: Path) -> tuple[Path, Path]:
    """TRAIN and TEST of a sktime problem; copies without the '%' lines when the files have them."""
    out = []
    for part in ("TRAIN", "TEST"):
        f = SKTIME_DATA / problem / f"{problem}_{part}.ts"
        if f.exists() and any(ln.startswith("%") for ln in f.read_text().splitlines()):
            copy = tmp / f.name
            copy.write_text("".join(ln for ln in f.read_text().splitlines(keepends=True) if not ln.startswith("%")))
            f = copy
        out.append(f)
    return out[0], out[1]


def run_one(problem: str, variant: str, seed: int, extra: list[str], build: tuple[str, str] | None = None) -> dict:
    name, sets, env = _variant(variant)
    if build is not None:
        env = {**env, "PYTHONPATH": str(Path(build[1]).resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        train, test = _files(problem, Path(tmp))
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
               "build": build[0] if build else None,
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
                   parameters=s["parameters"], frontend=s["data"].get("frontend"), monitor=s.get("monitor"),
                   train_accuracy=round(s["metrics"]["train"]["accuracy"], 4),
                   train_rows=s["data"]["sizes"]["train"], val_rows=s["data"]["sizes"].get("val"))
        return row


def table(path: Path) -> str:
    """Markdown rows of a results file: per data set and build, test accuracy per seed, mean ± sd, training accuracy,
    best / run passes and wall seconds."""
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for r in json.loads(Path(path).read_text())["rows"]:
        if "accuracy" in r:
            groups.setdefault((r["problem"], r.get("build") or r["variant"]), []).append(r)
    lines = ["| data set (train / val rows) | build (monitor) | test accuracy per seed | mean ± sd | train accuracy "
             "| best / run passes | wall s |", "|---|---|---|---:|---|---|---|"]
    for (problem, build), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        acc = [r["accuracy"] for r in rs]
        mean = f"{statistics.mean(acc):.3f}" + (f" ± {statistics.stdev(acc):.3f}" if len(acc) > 1 else "")
        fit = ", ".join(f"{r.get('train_accuracy', float('nan')):.2f}" for r in rs)
        passes = ", ".join(f"{r['best_epoch']}/{r['epochs']}" for r in rs)
        wall = ", ".join(f"{r['wall_s']:.0f}" for r in rs)
        lines.append(f"| {problem} ({rs[0].get('train_rows')} / {rs[0].get('val_rows')}) | {build} "
                     f"({rs[0].get('monitor')}) | {', '.join(f'{a:.3f}' for a in acc)} | {mean} | {fit} | {passes} | "
                     f"{wall} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", help="comma-separated sktime problems (or japanese_vowels)")
    ap.add_argument("--table", help="print the markdown table of a results file and exit")
    ap.add_argument("--variants", default="none,auto")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", action="append", default=[], help="extra --set for every run")
    ap.add_argument("--srcs", default=None, help="NAME=SRC_DIR,...: run each row once per build, interleaved")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.table:
        print(table(Path(args.table)))
        return 0
    if not args.sets or not args.out:
        ap.error("--sets and --out are required (or --table)")
    rows, meta = [], {}
    out = Path(args.out)
    if out.exists():
        saved = json.loads(out.read_text())
        rows, meta = saved["rows"], saved.get("meta", {})
    meta.setdefault("invocations", []).append({"argv": sys.argv[1:], "uptime_start": _uptime()})
    builds = [tuple(b.split("=", 1)) for b in args.srcs.split(",")] if args.srcs else [None]
    for problem in args.sets.split(","):
        for variant in args.variants.split(";") if ";" in args.variants else args.variants.split(" "):
            for seed in map(int, args.seeds.split(",")):
                for build in builds:
                    row = run_one(problem, variant, seed, args.set, build)
                    rows.append(row)
                    print(json.dumps({k: row.get(k) for k in ("problem", "build", "variant", "seed", "accuracy",
                                                              "train_accuracy", "majority", "monitor", "epochs",
                                                              "best_epoch", "wall_s", "load_start", "error")}),
                          flush=True)
                    meta["invocations"][-1]["uptime_end"] = _uptime()
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
