"""Long documents (issue 12, items 1-2): truncation policies and sliding windows on a synthetic long-range task.

The documents (tests/fakedata.py `write_long_documents_csv`) are filler words with one sentiment word, the label,
in their last 16 words. Each row is one `rnnkit.api.train` run (one thread, a small model) under one policy of
`data.long_sequences` / `data.truncate_keep` / `data.window_combine`; it records test accuracy, epochs, seconds per
epoch and real tokens per second, with `uptime`'s load.

    PYTHONPATH=src:tests OMP_NUM_THREADS=1 python bench/bench_longseq.py --seeds 0,1,2 --pooling last,attention \
        --out bench/results/longseq.json
    PYTHONPATH=src:tests OMP_NUM_THREADS=1 python bench/bench_longseq.py --speed --out bench/results/longseq_speed.json
    PYTHONPATH=src:tests OMP_NUM_THREADS=1 python bench/bench_longseq.py --ordered --seeds 0,1,2 --pooling attention \
        --cells lstm,gru --out bench/results/longseq_ordered.json

`--ordered`: the label is in the order of two parts (tests/fakedata.py `write_ordered_cue_documents_csv`: the
earlier of two opposite sentiment words, both past a 64-step cut, in different windows), 30 epochs at most.

`--speed`: 160 documents of 1,000-1,500 words read whole with the default model (2-layer bidirectional LSTM,
hidden 128), once as one recurrence per document (data.max_length=2048, truncate) and once in windows of 256
(data.max_length=256, window), one epoch each, the first repeated last: the windows of a document run side by side
in one batch, so the recurrence is 256 steps long instead of the document's; the tokens read are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

POLICIES = {
    "head": ["data.long_sequences=truncate"],
    "tail": ["data.long_sequences=truncate", "data.truncate_keep=tail"],
    "head_tail": ["data.long_sequences=truncate", "data.truncate_keep=head_tail"],
    "window_mean": ["data.long_sequences=window"],
    "window_attention": ["data.long_sequences=window", "data.window_combine=attention"],
    "hierarchical": ["data.long_sequences=hierarchical"],
}
SMALL = ["data.text_column=review", "data.label_column=stars", "model.hidden_size=16", "model.embedding_dim=16",
         "model.num_layers=1", "optim.lr=0.01", "train.threads=1", "train.progress=none", "train.probe_every=0",
         "data.val_fraction=0.15", "data.test_fraction=0.25"]


def run(data: Path, items: list[str]) -> dict:
    from rnnkit import api
    from rnnkit import config as C

    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = api.train(C.resolve(None, [f"data.train={data}", *items]), Path(tmp) / "run")
        wall = time.perf_counter() - t0
    return {"sets": items, "accuracy": round(s["metrics"]["test"]["accuracy"], 4), "epochs": s["epochs_run"],
            "best_epoch": s["best_epoch"], "s_per_epoch": round(s["wall_seconds"] / max(s["epochs_run"], 1), 2),
            "real_tokens_per_second": round(s["real_tokens_per_second"]), "wall_s": round(wall, 1),
            "long_sequences": s["data"]["long_sequences"]["mode"], "load_start": load0,
            "load_end": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--pooling", default="last", help="model.pooling values to run each policy with")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--ordered", action="store_true", help="the ordered-cue task instead of the label-at-the-end one")
    ap.add_argument("--cells", default="lstm", help="model.cell values to run each policy with")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from fakedata import write_long_documents_csv, write_ordered_cue_documents_csv

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.speed:
            data, _ = write_long_documents_csv(Path(tmp) / "docs.csv", n=160, min_len=1000, max_len=1500)
            whole = ["data.max_length=2048", "data.long_sequences=truncate"]
            variants = [("whole_2048", whole), ("windows_256", ["data.max_length=256", "data.long_sequences=window"]),
                        ("whole_2048", whole)]
            for name, sets in variants:
                rows.append({"variant": name, **run(data, [*SMALL[:2], *SMALL[6:], "train.max_epochs=1", *sets])})
                print(json.dumps(rows[-1]), flush=True)
        else:
            write = write_ordered_cue_documents_csv if args.ordered else write_long_documents_csv
            data, _ = write(Path(tmp) / "docs.csv", n=400)
            epochs = 30 if args.ordered else 20
            for cell in args.cells.split(","):
                for pooling in args.pooling.split(","):
                    for seed in map(int, args.seeds.split(",")):
                        for name, sets in POLICIES.items():
                            items = [*SMALL, "data.max_length=64", f"train.max_epochs={epochs}", f"train.seed={seed}",
                                     f"model.pooling={pooling}", f"model.cell={cell}", *sets]
                            rows.append({"variant": name, "cell": cell, "pooling": pooling, "seed": seed,
                                         "task": "ordered" if args.ordered else "end", **run(data, items)})
                            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
