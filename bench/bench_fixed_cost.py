"""Fixed costs of a whole `rnnkit train` against a bare script doing the same work (issue 14, item 1).

The data: 8,000 short text rows (5-13 words from a 2,000-word vocabulary, 4 classes), a CSV. Both sides run as
separate processes, one thread, and are timed whole (interpreter start, imports, reading, training, scoring):

* rnnkit: `python -m rnnkit.cli train rows.csv --out DIR --set data.batch_size=64 --set train.max_epochs=1
  --set train.threads=1 --set train.progress=none` (its 80/10/10 split: 6,400 training rows = 100 batches);
* bare: the script in BARE below: read the CSV, whitespace tokens, a vocabulary, the same seeded 80/10/10
  split sizes, rnnkit's default classifier network (the same compute per step), AdamW with clipping at 1.0,
  one epoch over length-bucketed batches of 64, the validation loss, the test accuracy, the weights saved with
  safetensors. What a user writes by hand for the same result, without rnnkit's checks and reports.

The two alternate (A B A B ...); the ratio is median(rnnkit) / median(bare).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_fixed_cost.py --rounds 3 --out bench/results/fixed_cost.json
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import uptime, write_result  # noqa: E402  (this folder, put on sys.path above)

BARE = r'''
import csv, random, sys, time
import torch, torch.nn.functional as F
from safetensors.torch import save_file
from rnnkit.models.classifier import build_classifier
torch.set_num_threads(1)
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
random.Random(0).shuffle(rows)
vocab = {"<pad>": 0, "<unk>": 1}
labels = sorted({r["label"] for r in rows})
n = len(rows); test, val = rows[: n // 10], rows[n // 10 : n // 5]; train = rows[n // 5 :]
for r in train:
    for w in r["text"].split():
        vocab.setdefault(w, len(vocab))
def encode(rs):
    return [(torch.tensor([vocab.get(w, 1) for w in r["text"].split()]), labels.index(r["label"])) for r in rs]
train, val, test = encode(train), encode(val), encode(test)
def batches(data, size, shuffle):
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if shuffle:
        random.Random(1).shuffle(chunks)
    for idx in chunks:
        xs = [data[i][0] for i in idx]
        lengths = torch.tensor([len(x) for x in xs])
        x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
        yield x, lengths, x != 0, torch.tensor([data[i][1] for i in idx])
model = build_classifier({}, num_classes=len(labels), vocab_size=len(vocab))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
model.train()
for x, lengths, mask, y in batches(train, 64, True):
    opt.zero_grad()
    loss = F.cross_entropy(model(x, lengths, mask), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
model.eval()
with torch.inference_mode():
    val_loss = sum(float(F.cross_entropy(model(x, l, m), y, reduction="sum")) for x, l, m, y in batches(val, 64, False))
    right = sum(int((model(x, l, m).argmax(1) == y).sum()) for x, l, m, y in batches(test, 64, False))
save_file(model.state_dict(), sys.argv[2])
print(val_loss / len(val), right / len(test))
'''


def write_rows(path: Path, n: int = 8000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(2000)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for _ in range(n):
            w.writerow([" ".join(rng.choice(words, size=int(rng.integers(5, 14)))), f"c{int(rng.integers(0, 4))}"])
    return path


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="extra rnnkit config items")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    start = uptime()
    times: dict[str, list[float]] = {"rnnkit": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_rows(tmp / "rows.csv")
        bare = tmp / "bare.py"
        bare.write_text(BARE)
        sets = ["data.batch_size=64", "train.max_epochs=1", "train.threads=1", "train.progress=none", *args.set]
        for r in range(args.rounds):
            for side in (("rnnkit", "bare") if r % 2 == 0 else ("bare", "rnnkit")):
                if side == "rnnkit":
                    cmd = [sys.executable, "-m", "rnnkit.cli", "train", str(data), "--out", str(tmp / f"run{r}")]
                    for item in sets:
                        cmd += ["--set", item]
                else:
                    cmd = [sys.executable, str(bare), str(data), str(tmp / f"bare{r}.safetensors")]
                times[side].append(round(timed(cmd), 2))
                print(side, times[side][-1], flush=True)
    ratio = statistics.median(times["rnnkit"]) / statistics.median(times["bare"])
    result = {"command": " ".join(sys.argv), "times_s": times, "ratio_rnnkit_over_bare": round(ratio, 3),
              "uptime_start": start, "uptime_end": uptime()}
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
