"""Data at scale on one machine (issue 14, item 1): preparation rate, peak memory, time to the first optimizer step
and memory per row, for two layouts of the in-memory data run side by side.

A is one checkout's `src` (main's: one `Example` with its own small tensors per row, in a Python list; the resume
fingerprint hashes every tensor), B another's (the columnar `SequenceDataset`: one flat array plus offsets per
column; the fingerprint hashes the input files). Cases:

* text-100k, text-1m: CSV rows of 9 words (a 5,000-word vocabulary) and 2 classes;
* long-20k: a numeric long-format table, 20,000 series x 50 steps x 3 channels (1,000,000 lines), 2 classes;
* numeric-20k, numeric-200k: such series as numeric rows, one CSV row a series (a JSON list of steps);
  regress-200k: the same rows with a number as the target (`--task regress`);
* docs-100k: documents of 100-300 words; text-1m-parquet, text-10m-parquet: text-1m's rows (and ten times as
  many) as Parquet in row groups of 100,000 rows.

`--a-set` / `--b-set` give one layout's runs config overrides (with `--a` and `--b` the same src: two settings of
one checkout, e.g. `--b-set data.storage=stream`); `--steps 0` trains the whole epoch instead of 21 steps (peak
RSS then covers the epoch); `--only B` runs one layout.

Each (case, layout) runs in its own process, A B A B (interleaved) per case, one thread. The child times
`task.prepare` (read, validate, split, vocabulary, encode), reads its RSS before and after, then calls
`fit_from_config`: the time to the end of optimizer step 1 (from the child's first line, imports included) and
the mean time of steps 2-21 (batches of 64, a 16-unit LSTM: the data fetch is a visible share), then it stops;
then times the resume fingerprint alone (B: with an empty hash cache, and with the one the run wrote). Peak RSS is
the child's own `ru_maxrss`; "kept" is the RSS after preparation once `malloc_trim` has returned freed memory
(what the data really hold, against "retained", RSS before the trim). "After imports" includes `torch._dynamo`,
which torch's AdamW constructor imports at the first training (about 70 MB; before 2026-12-03 it was counted as
the data's when the peak fell in training). Per row: (peak RSS - RSS after imports) /
rows, against the row's payload (token ids at 4 bytes and the label at 4; a series' 150 float32 values and its
label).

    git -C /work/main archive BASE src | tar -x -C /tmp/base   # A: main's code at commit BASE
    OMP_NUM_THREADS=1 python bench/bench_scale.py --a /tmp/base/src --b src --rounds 2 \
        --out bench/results/scale.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import uptime  # noqa: E402  (this folder, put on sys.path above)

CASES = {  # name -> (kind, rows of the data set, payload bytes per row)
    "text-10k": ("text", 10_000, 9 * 4 + 4),  # a smoke test of the script
    "text-100k": ("text", 100_000, 9 * 4 + 4),
    "text-1m": ("text", 1_000_000, 9 * 4 + 4),
    "text-10m": ("text", 10_000_000, 9 * 4 + 4),
    "long-20k": ("long", 20_000, 50 * 3 * 4 + 4),
    "numeric-20k": ("numeric", 20_000, 50 * 3 * 4 + 4),  # long-20k's series, one CSV row each (a JSON list)
    "numeric-200k": ("numeric", 200_000, 50 * 3 * 4 + 4),
    "regress-200k": ("regress", 200_000, 50 * 3 * 4 + 8),  # numeric-200k's series with a number as the target
    "docs-100k": ("docs", 100_000, 200 * 4 + 4),  # documents of 100-300 words (mean 200)
    "text-1m-parquet": ("text-parquet", 1_000_000, 9 * 4 + 4),  # text-1m's rows as Parquet (row groups of 100k)
    "text-10m-parquet": ("text-parquet", 10_000_000, 9 * 4 + 4),  # text-10m's rows as Parquet (row groups of 100k)
    "text-1m-arrow": ("text-arrow", 1_000_000, 9 * 4 + 4),  # text-1m-parquet's rows, Arrow IPC (batches of 100k)
    "text-10m-arrow": ("text-arrow", 10_000_000, 9 * 4 + 4),  # text-10m-parquet's rows, Arrow IPC
}
COMMON = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "model.bidirectional=false",
          "data.batch_size=64", "train.max_epochs=1", "train.threads=1", "train.progress=none", "train.device=cpu"]


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        out.writerows(rows)


def _row(words: np.ndarray, r: np.ndarray) -> list[str]:
    """A row of the words `r`, labelled by whether its word 0 is in the first half of the vocabulary."""
    return [" ".join(words[r]), "a" if r[0] < len(words) // 2 else "b"]


def write_text(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` CSV rows of 9 words (a 5,000-word vocabulary)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(5000)])
    _write_csv(path, (_row(words, r) for start in range(0, rows, 100_000)
                      for r in rng.integers(0, len(words), size=(min(100_000, rows - start), 9))))


def write_docs(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` CSV rows of 100-300 words (a 20,000-word vocabulary)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(20_000)])
    _write_csv(path, (_row(words, rng.integers(0, len(words), size=int(rng.integers(100, 301)))) for _ in range(rows)))


def _text_tables(rows: int, seed: int):
    """`write_text`'s rows as pyarrow tables of 100,000 rows (the schema first)."""
    import pyarrow as pa
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(5000)])
    schema = pa.schema([("text", pa.string()), ("label", pa.string())])
    yield schema
    for start in range(0, rows, 100_000):
        ids = rng.integers(0, len(words), size=(min(100_000, rows - start), 9))
        text = [" ".join(words[r]) for r in ids]
        yield pa.table({"text": text, "label": np.where(ids[:, 0] < 2500, "a", "b")}, schema=schema)


def write_text_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """`write_text`'s rows as a Parquet file, one row group per 100,000 rows."""
    import pyarrow.parquet as pq
    tables = _text_tables(rows, seed)
    with pq.ParquetWriter(path, next(tables)) as out:
        for table in tables:
            out.write_table(table)


def write_text_arrow(path: Path, rows: int, seed: int = 0) -> None:
    """The same rows as `write_text_parquet`, as an Arrow IPC file of one record batch per 100,000 rows."""
    import pyarrow as pa
    tables = _text_tables(rows, seed)
    with pa.ipc.new_file(str(path), next(tables)) as out:
        for table in tables:
            out.write_table(table, max_chunksize=100_000)


def write_numeric(path: Path, rows: int, steps: int = 50, seed: int = 0, *, target: bool = False) -> None:
    """One CSV row per series: a JSON list of `steps` steps of 3 channels (`write_long`'s series, one row each),
    labelled by the sine's frequency, or with `target` by a number (the series' first-channel mean)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["sequence", "label"])
        for s in range(rows):
            k = s % 2
            x = np.sin(0.2 * (k + 1) * t[:, None] + np.arange(3)) + 0.1 * rng.standard_normal((steps, 3))
            out.writerow(["[" + ",".join("[" + ",".join(f"{v:.4f}" for v in step) + "]" for step in x) + "]",
                          f"{x[:, 0].mean():.4f}" if target else "a" if k else "b"])


def write_regress(path: Path, rows: int, seed: int = 0) -> None:
    write_numeric(path, rows, seed=seed, target=True)


WRITERS = {"text": write_text, "docs": write_docs, "text-parquet": write_text_parquet, "text-arrow": write_text_arrow,
           "numeric": write_numeric, "regress": write_regress}


def write_long(path: Path, series: int, steps: int = 50, seed: int = 0) -> None:
    """Long format: one line per (series, step) with 3 channels; the label sets a sine's frequency."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["series", "t", "a", "b", "c", "label"])
        for s in range(series):
            k = s % 2
            x = np.sin(0.2 * (k + 1) * t[:, None] + np.arange(3)) + 0.1 * rng.standard_normal((steps, 3))
            lab = "a" if k else "b"
            out.writerows([f"s{s}", i, *(f"{v:.4f}" for v in x[i]), lab] for i in range(steps))


def overrides(kind: str, path: Path) -> list[str]:
    extra = (["data.input=long", "data.id_column=series", "data.time_column=t", "data.feature_columns=[a,b,c]"]
             if kind == "long" else ["task=regress"] if kind == "regress" else [])
    return [f"data.train={path}", *extra, *COMMON]


CHILD = r'''
import time
t0 = time.perf_counter()
import gc, inspect, json, resource, sys, tempfile
from pathlib import Path
import torch
import torch._dynamo  # AdamW's constructor imports it (about 70 MB of RSS): counted with the imports, not the data
from rnnkit import config as C
from rnnkit.tasks import get_task
from rnnkit.training import setup
from rnnkit.training.callbacks import Callback

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

import threading
peaks = {"RssAnon": 0, "RssFile": 0}
def sample():  # the peaks of anonymous (heap) and file-backed (mapped files) resident memory, every 20 ms
    while True:
        for line in open("/proc/self/status"):
            key = line.split(":")[0]
            if key in peaks:
                peaks[key] = max(peaks[key], int(line.split()[1]) * 1024)
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
def anon():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:"))

class FirstStep(Exception):
    pass

marks = {}

class Stop(Callback):
    def on_step_end(self, state, record):
        marks[state.step] = time.perf_counter()
        if STEPS and state.step == STEPS:
            raise FirstStep

cfg = C.resolve(None, json.loads(sys.argv[1]))
STEPS = int(sys.argv[2])  # stop after this optimizer step; 0: train the whole epoch
task = get_task(cfg.task)
run = Path(tempfile.mkdtemp()) / "run"
run.mkdir()
gc.collect()
rss0, anon0 = rss(), anon()
t1 = time.perf_counter()
data = task.prepare(cfg, run)
t_prep = time.perf_counter() - t1
gc.collect()
rss_prep, peak_prep = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
anon_peak_prep = peaks["RssAnon"]
import ctypes
ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory the allocator still holds goes back: what is really kept
rss_trim = rss()
rows = sum(len(d) for d in data.datasets.values())
nbytes = sum(getattr(d, "nbytes", 0) for d in data.datasets.values())
t_fit = time.perf_counter()
try:
    setup.fit_from_config(cfg, data, task, run, callbacks=[Stop()])
except FirstStep:
    pass
fit_s = time.perf_counter() - t_fit
t_first = marks[1] - t0
last = max(marks)
step_s = (marks[last] - marks[1]) / max(last - 1, 1)
fp = {}
new = len(inspect.signature(setup.data_fingerprint).parameters) > 1
for name in (("cold", "warm") if new else ("all",)):
    if new:
        from rnnkit.data import fingerprint as F
        cache = {} if name == "cold" else F.load_cache(run)
        t = time.perf_counter(); setup.data_fingerprint(data.datasets, cfg, data.report.get("files"), cache)
    else:
        t = time.perf_counter(); setup.data_fingerprint(data.datasets)
    fp[name] = time.perf_counter() - t
print(json.dumps({"rows": rows, "prepare_s": t_prep, "rss_imports": rss0, "rss_after_prepare": rss_prep,
                  "rss_after_trim": rss_trim, "step_s": step_s,
                  "peak_prepare": peak_prep, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "first_step_s": t_first, "steps_run": last, "fit_s": fit_s, "fingerprint_s": fp,
                  "columns_bytes": nbytes,
                  "anon_imports": anon0, "anon_peak_prepare": anon_peak_prep, "anon_peak": peaks["RssAnon"],
                  "file_peak": peaks["RssFile"]}))
'''


def run_child(src: Path, kind: str, path: Path, timeout: float, extra: list[str] = (), steps: int = 21) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([*overrides(kind, path), *extra]), str(steps)],
                          env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", type=Path, required=True, help="src folder of layout A (main's code)")
    ap.add_argument("--b", type=Path, default=HERE.parent / "src", help="src folder of layout B (columnar)")
    ap.add_argument("--a-set", default="", metavar="K=V,...", help="config overrides of layout A's runs only")
    ap.add_argument("--b-set", default="", metavar="K=V,...", help="config overrides of layout B's runs only, e.g. "
                    "data.storage=disk (with --b the same src as --a: the two storage modes of one checkout)")
    ap.add_argument("--cases", default="text-100k,text-1m,long-20k")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=21, help="optimizer steps per run (0: a whole epoch; the step time "
                    "is then the epoch's mean, and peak RSS covers the epoch)")
    ap.add_argument("--only", default="AB", help="layouts to run: AB, A or B")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = {"uptime_start": uptime(), "command": " ".join(sys.argv), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            kind, rows, payload = CASES[case]
            path = Path(tmp) / f"{case}.{kind.split('-')[1] if '-' in kind else 'csv'}"
            WRITERS.get(kind, write_long)(path, rows)
            runs = {"A": [], "B": []}
            for _ in range(args.rounds):
                for layout, src, extra in (("A", args.a, args.a_set), ("B", args.b, args.b_set)):  # A B A B
                    if layout not in args.only:
                        continue
                    got = run_child(src.resolve(), kind, path, args.timeout, [x for x in extra.split(",") if x],
                                    args.steps)
                    runs[layout].append(got)
                    print(case, layout, json.dumps(got)[:400], flush=True)
            result["cases"][case] = {"rows": rows, "payload_bytes_per_row": payload,
                                     "file_bytes": path.stat().st_size, "runs": runs,
                                     "summary": summarize(runs, rows, payload)}
            path.unlink()
    result["uptime_end"] = uptime()
    print(json.dumps({k: v["summary"] for k, v in result["cases"].items()}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


def summarize(runs: dict, rows: int, payload: int) -> dict:
    out = {}
    for layout, got in runs.items():
        ok = [g for g in got if "error" not in g]
        if not ok:
            out[layout] = {"error": got[0]["error"][-300:] if got else "no run"}
            continue

        def med(f, ok=ok):
            return statistics.median(f(g) for g in ok)
        peak_row = med(lambda g: (g["peak"] - g["rss_imports"]) / rows)
        out[layout] = {
            "prepare_rows_per_s": round(med(lambda g: rows / g["prepare_s"])),
            "peak_rss_mb": round(med(lambda g: g["peak"]) / 2**20),
            "peak_bytes_per_row": round(peak_row),
            "peak_per_payload": round(peak_row / payload, 1),
            **({"anon_peak_bytes_per_row": round(med(lambda g: (g["anon_peak"] - g["anon_imports"]) / rows)),
                "anon_peak_prepare_bytes_per_row": round(med(lambda g: (g["anon_peak_prepare"] - g["anon_imports"])
                                                             / rows)),
                "anon_peak_mb": round(med(lambda g: g["anon_peak"]) / 2**20),
                "file_peak_mb": round(med(lambda g: g["file_peak"]) / 2**20)} if "anon_peak" in ok[0] else {}),
            "retained_bytes_per_row": round(med(lambda g: (g["rss_after_prepare"] - g["rss_imports"]) / rows)),
            "kept_bytes_per_row": round(med(lambda g: (g["rss_after_trim"] - g["rss_imports"]) / rows)),
            "columns_bytes_per_row": round(med(lambda g: g["columns_bytes"] / rows), 1),
            "step_ms": round(1000 * med(lambda g: g["step_s"]), 2),
            "first_step_s": round(med(lambda g: g["first_step_s"]), 2),
            "steps_run": med(lambda g: g.get("steps_run", 21)),
            "fit_s": round(med(lambda g: g.get("fit_s", float("nan"))), 1),
            "fingerprint_s": {k: round(statistics.median(g["fingerprint_s"][k] for g in ok), 4)
                              for k in ok[0]["fingerprint_s"]},
        }
    return out


if __name__ == "__main__":
    main()
