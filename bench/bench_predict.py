"""Prediction at scale (issue 13): `rnnkit predict` against a bare bucketed loop and a naive one-by-one loop.

The model: rnnkit's default classifier trained for one epoch on 8,000 short text rows (5-13 words from a 2,000-word
vocabulary, 4 classes; `bench_fixed_cost.write_rows`). The input: N new rows of the same kind, a CSV. Each side runs
as its own process, one thread, timed whole (interpreter start, imports, loading the run, reading, predicting,
writing the CSV of label and class probabilities); peak RSS is the child's own (`os.wait4`).

* rnnkit: `python -m rnnkit.cli predict RUN --data rows.csv --output p.csv` (streams chunks of 10,000 rows);
* bare: the script in BARE: `rnnkit.api.load_run` for the same model and vocabulary, then `csv` reading of the
  whole file, whitespace tokens, every row sorted by length, batches of `data.batch_size`, the model's forward
  under `torch.inference_mode`, softmax, `csv` writing in the input's order: the loop a user writes by hand,
  without rnnkit's checks (bad rows, unseen labels, lengths), provenance columns or bounded memory;
* naive: the same script with batches of one row in file order, on the first `--naive-rows` rows (its rate is
  per row, so it is scaled, not run on everything: rows per CPU second past a one-row run's fixed cost).

Each child's wall time and CPU time (user + system, `os.wait4`) are recorded; both are single-threaded, so on a
shared machine under load the CPU time is the steadier measure of what each costs.

rnnkit and bare alternate (A B A B ...); the ratio is median(bare time) / median(rnnkit time), i.e. rnnkit's
predictions per second as a share of the bare loop's (also best(bare) / best(rnnkit): on a shared, loaded
machine the fastest run of each is the one least slowed by others). Then the memory check: rnnkit on N and 4N
rows.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_predict.py --rows 20000 --rounds 5 \
        --out bench/results/predict.json
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
from _common import uptime, write_result  # noqa: E402  (this folder, put on sys.path above)
from bench_fixed_cost import write_rows  # noqa: E402

BARE = r'''
import csv, sys
import torch
from rnnkit import api
torch.set_num_threads(1)
run, data, output, size, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
cfg, prep, task, model, dev = api.load_run(run)
labels = prep.labels.labels
with open(data, newline="") as fh:
    rows = [r["text"].split() for r in csv.DictReader(fh)]
rows = rows[:limit] if limit else rows
ids = [torch.tensor(prep.vocab.encode(r), dtype=torch.long) for r in rows]
order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if size > 1 else list(range(len(ids)))
probs = [None] * len(ids)
with torch.inference_mode():
    for lo in range(0, len(order), size):
        idx = order[lo:lo + size]
        xs = [ids[i] for i in idx]
        lengths = torch.tensor([len(x) for x in xs])
        x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
        p = torch.softmax(model(x, lengths, x != 0), dim=-1)
        for i, row in zip(idx, p.tolist()):
            probs[i] = row
with open(output, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["prediction", "probability", *[f"p_{lab}" for lab in labels]])
    for p in probs:
        k = max(range(len(p)), key=p.__getitem__)
        w.writerow([labels[k], f"{p[k]:.6f}", *[f"{v:.6f}" for v in p]])
'''


def run_child(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds: user + system) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return round(seconds, 2), round(usage.ru_maxrss / 1024, 1), round(usage.ru_utime + usage.ru_stime, 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--naive-rows", type=int, default=5_000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    start = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = write_rows(tmp / "train.csv", n=8000, seed=0)
        subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", str(train), "--out", str(tmp / "run"),
                        "--set", "train.max_epochs=1", "--set", "train.threads=1", "--set", "train.progress=none"],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        data = write_rows(tmp / "rows.csv", n=args.rows, seed=1)
        big = write_rows(tmp / "rows4.csv", n=4 * args.rows, seed=2)
        bare = tmp / "bare.py"
        bare.write_text(BARE)
        batch = json.loads(subprocess.run([sys.executable, "-c", "import sys, yaml, json; print(json.dumps(yaml."
                                           "safe_load(open(sys.argv[1]))['data']['batch_size']))",
                                           str(tmp / "run" / "config.yaml")], capture_output=True, text=True,
                                          check=True).stdout)

        def rnnkit_cmd(rows: Path) -> list[str]:
            return [sys.executable, "-m", "rnnkit.cli", "predict", str(tmp / "run"), "--data", str(rows),
                    "--output", str(tmp / "p.csv")]

        times: dict[str, list[float]] = {"rnnkit": [], "bare": []}
        cpu: dict[str, list[float]] = {"rnnkit": [], "bare": []}
        rss: dict[str, list[float]] = {"rnnkit": [], "bare": []}
        for r in range(args.rounds):
            for side in (("rnnkit", "bare") if r % 2 == 0 else ("bare", "rnnkit")):
                cmd = rnnkit_cmd(data) if side == "rnnkit" else [sys.executable, str(bare), str(tmp / "run"),
                                                                  str(data), str(tmp / "b.csv"), str(batch), "0"]
                seconds, peak, used = run_child(cmd)
                times[side].append(seconds)
                cpu[side].append(used)
                rss[side].append(peak)
                print(side, seconds, "s", used, "cpu s", peak, "MiB", flush=True)
        bare_cmd = [sys.executable, str(bare), str(tmp / "run"), str(data)]
        naive_s, naive_rss, naive_cpu = run_child([*bare_cmd, str(tmp / "n.csv"), "1", str(args.naive_rows)])
        _, _, empty_cpu = run_child([*bare_cmd, str(tmp / "e.csv"), "1", "1"])
        big_s, big_rss, big_cpu = run_child(rnnkit_cmd(big))
        print("naive", naive_s, "rnnkit 4N", big_s, big_rss, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    naive_rate = args.naive_rows / max(naive_cpu - empty_cpu, 1e-9)  # rows per CPU second past the fixed cost
    result = {
        "command": " ".join(sys.argv), "rows": args.rows, "batch_size": batch, "times_s": times, "peak_rss_mib": rss,
        "rows_per_s": {"rnnkit": round(args.rows / med["rnnkit"]), "bare": round(args.rows / med["bare"])},
        "cpu_s": cpu,
        "rnnkit_share_of_bare": round(med["bare"] / med["rnnkit"], 3),
        # CPU seconds (one thread each): what a run costs, little moved by the other load of a shared machine
        "rnnkit_share_of_bare_cpu": round(statistics.median(cpu["bare"]) / statistics.median(cpu["rnnkit"]), 3),
        "rows_per_cpu_s": {"rnnkit": round(args.rows / statistics.median(cpu["rnnkit"])),
                           "bare": round(args.rows / statistics.median(cpu["bare"])),
                           "naive_one_by_one": round(naive_rate)},
        # the fastest of each side: what each costs when the shared machine's other load leaves it alone
        "rnnkit_share_of_bare_best": round(min(times["bare"]) / min(times["rnnkit"]), 3),
        "naive_rows": args.naive_rows, "naive_s": naive_s, "naive_cpu_s": naive_cpu, "naive_fixed_cpu_s": empty_cpu,
        "memory": {"rows": args.rows, "rnnkit_peak_rss_mib": statistics.median(rss["rnnkit"]),
                   "rows_x4": 4 * args.rows, "rnnkit_x4_s": big_s, "rnnkit_x4_cpu_s": big_cpu,
                   "rnnkit_x4_peak_rss_mib": big_rss,
                   "bare_peak_rss_mib": statistics.median(rss["bare"]), "naive_peak_rss_mib": naive_rss},
        "uptime_start": start, "uptime_end": uptime(),
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
