"""CMUdict grapheme-to-phoneme (`--task seq2seq --dataset cmudict`): greedy versus beam search WER/PER.

Target (issue 3): test word error rate <= 30% with beam search, 2 CPU cores, under an hour of training.
Published (older split, indicative): Sequitur 24.5%, BiLSTM 23.6%, LSTM+FST 21.3%, attention ensemble 20.2%.

The full run (an hour on 2 cores):

    python bench/bench_seq2seq.py --minutes 60 --threads 2

A time-bounded run on a shared machine (what bench/results/seq2seq.json holds unless stated there):

    python bench/bench_seq2seq.py --minutes 18 --threads 1

`--minutes` is a training budget: after each epoch the run stops when another epoch (timed from the
last one) would not fit; the best epoch's weights are then scored. Validation decoding at each
epoch end counts toward the budget; the final scoring of train/val/test does not (its time is
reported separately). `--train-words N` trains on a seeded subset of N training words (val and test
are unchanged). The word-level split is the task's own (data.val_fraction / data.test_fraction of
the words, seeded by data.split_seed).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.doctor.preflight import preflight
from rnnkit.tasks import get_task
from rnnkit.training.callbacks import Callback
from rnnkit.training.setup import fit_from_config as fit

DEFAULTS = [  # chosen for CPU speed: 1-layer BiLSTM encoder, 1-layer decoder, hidden 256
    "model.embedding_dim=64", "model.hidden_size=256", "model.num_layers=1", "model.dropout=0.2",
    "model.recurrent_dropout=0.1", "data.batch_size=64", "optim.lr=3e-3", "optim.warmup_epochs=0.2",
    "optim.plateau_patience=2", "train.patience=4", "data.val_fraction=0.03", "data.test_fraction=0.1",
    "seq2seq.beam=5", "seq2seq.length_penalty=1.0", "train.progress=plain", "train.log_every=200",
]


class TimeBudget(Callback):
    """Stop (through state.stop_reason) when the next epoch would overrun the budget."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = self.last = time.perf_counter()
        self.epoch_times: list[float] = []

    def on_epoch_end(self, state, record) -> None:
        now = time.perf_counter()
        self.epoch_times.append(now - self.last)
        self.last = now
        if now - self.start + self.epoch_times[-1] > self.seconds and state.stop_reason is None:
            state.stop_reason = "time_budget"


def subset_train(data, words: int, seed: int) -> None:
    """Keep the pairs of `words` seeded-random training words (all pronunciations of each)."""
    ds = data.datasets["train"]
    groups = sorted({tuple(ex.inputs.tolist()) for ex in ds.examples})
    keep = {groups[i] for i in np.random.default_rng(seed).permutation(len(groups))[:words]}
    data.datasets["train"] = SequenceDataset([ex for ex in ds.examples if tuple(ex.inputs.tolist()) in keep])
    data.prep.num_train = len(data.datasets["train"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-epochs", type=int, default=100)
    ap.add_argument("--train-words", type=int, default=None, help="train on a seeded subset of the words")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="extra config overrides (key=value)")
    ap.add_argument("--out", default="bench/results/seq2seq.json")
    ap.add_argument("--run-dir", default=None, help="keep the run directory here (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = ["task=seq2seq", "data.dataset=cmudict", *DEFAULTS, f"train.threads={args.threads}",
                 f"train.max_epochs={args.max_epochs}", f"train.seed={args.seed}", *args.set]
    cfg = C.resolve(None, overrides)
    task = get_task("seq2seq")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run_dir or Path(tmp) / "run")
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
        data = task.prepare(cfg, run_dir)
        if args.train_words:
            subset_train(data, args.train_words, args.seed)
        words = len({tuple(ex.inputs.tolist()) for ex in data.datasets["train"].examples})
        budget = TimeBudget(args.minutes * 60)
        t0 = time.perf_counter()
        summary = fit(cfg, data, task, run_dir, callbacks=[budget], preflight=preflight)
        wall = time.perf_counter() - t0
    training = sum(budget.epoch_times)
    test, val = summary["metrics"]["test"], summary["metrics"]["val"]
    result = {
        "command": "python bench/bench_seq2seq.py " + " ".join(
            [f"--minutes {args.minutes:g}", f"--threads {args.threads}", f"--max-epochs {args.max_epochs}"]
            + ([f"--train-words {args.train_words}"] if args.train_words else [])
            + [f"--seed {args.seed}"] + [f"--set {s}" for s in args.set]),
        "config_overrides": overrides,
        "threads": args.threads,
        "machine": f"{platform.machine()}, torch {torch.__version__}, shared with other jobs",
        "train_pairs": len(data.datasets["train"]), "train_words": words,
        "val_words": len(data.datasets["val"]), "test_words": len(data.datasets["test"]),
        "epochs": summary["epochs_run"], "best_epoch": summary["best_epoch"], "stopped": summary["stopped"],
        "training_seconds": round(training, 1), "final_scoring_seconds": round(wall - training, 1),
        "epoch_seconds": [round(x, 1) for x in budget.epoch_times],
        "parameters": summary["parameters"],
        "test": {"beam": test["decode_beam"], "beam_wer": test["wer"], "beam_per": test["per"],
                 "greedy_wer": test.get("greedy_wer"), "greedy_per": test.get("greedy_per"), "loss": test["loss"]},
        "val": {"beam_wer": val["wer"], "greedy_wer": val.get("greedy_wer"), "loss": val["loss"]},
        "target": "test WER <= 0.30 with beam search (2 cores, < 1 h training)",
        "published_wer_older_split": {"sequitur": 0.245, "bilstm_yao_zweig_2015": 0.236,
                                      "lstm_fst_rao_2015": 0.213, "attention_ensemble_toshniwal_2016": 0.202},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["test"]), f"epochs {result['epochs']}, training {training / 60:.1f} min")


if __name__ == "__main__":
    main()
