"""rnnkit's training loop against a bare hand-written PyTorch loop: same model, same batches.

Both loops run the same ClassifierNet (rnnkit defaults: 2-layer bidirectional LSTM, hidden 128,
recurrent dropout) over the same bucketed batches, built by the same sampler and collate, with AdamW
and gradient clipping at 1.0. The bare loop is what a user writes by hand: zero_grad, forward, loss,
backward, clip, step. rnnkit's loop adds its schedule, non-finite checks, logging, metrics and the
progress bookkeeping. Timing of rnnkit covers its epoch's steps only (from on_epoch_start to the last
on_step_end), not validation or checkpoints. Epochs alternate between the two loops; the ratio is
median(bare epoch time) / median(rnnkit epoch time), so >= 1 means rnnkit is as fast.

    python bench/bench_loop.py --out bench/results/loop.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data.collate import Example, SequenceDataset, collate
from rnnkit.data.pipeline import PreparedData, Preprocessing
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.data.vocab import LabelMap
from rnnkit.doctor.preflight import preflight
from rnnkit.tasks.classify import TASK as CLASSIFY
from rnnkit.training.callbacks import Callback
from rnnkit.training.setup import fit_from_config as fit


def make_data(n: int, vocab: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(40), 0.6, n)), 1, 400).astype(int)
    return [Example(id=f"synthetic:{i}", inputs=torch.from_numpy(rng.integers(2, vocab, t)).long(),
                    target=torch.tensor(int(rng.integers(0, 4)))) for i, t in enumerate(lengths)]


class EpochTimer(Callback):
    def __init__(self):
        self.times: list[float] = []
        self._t0 = 0.0
        self._last = 0.0

    def on_epoch_start(self, state):
        self._t0 = time.perf_counter()

    def on_step_end(self, state, record):
        self._last = time.perf_counter()

    def on_epoch_end(self, state, record):
        self.times.append(self._last - self._t0)


def bare_epoch(model, optimizer, dataset, sampler, epoch) -> float:
    """The hand-written baseline: nothing but the essential step."""
    model.train()
    sampler.set_epoch(epoch)
    t0 = time.perf_counter()
    for idx in sampler:
        batch = collate([dataset[i] for i in idx])
        optimizer.zero_grad(set_to_none=True)
        logits = model(batch.inputs, batch.lengths, batch.mask)
        loss = torch.nn.functional.cross_entropy(logits, batch.targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=3000)
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per loop (alternating)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/loop.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    train = SequenceDataset(make_data(args.sequences, args.vocab, args.seed))
    val = SequenceDataset(make_data(64, args.vocab, args.seed + 1))
    labels = LabelMap.build(["0", "1", "2", "3"])
    from rnnkit.data.vocab import Vocab

    vocab = Vocab.build([[str(i) for i in range(args.vocab)]])
    prep = Preprocessing(kind="text", labels=labels, vocab=vocab)
    data = PreparedData(datasets={"train": train, "val": val}, prep=prep)
    cfg = C.resolve(None, ["train.progress=none", f"train.max_epochs={args.epochs}", "train.patience=100",
                           f"train.threads={args.threads}",
                           "optim.warmup_epochs=0", "train.log_every=50", "data.batch_size=32"])

    # the bare loop, on its own copy of the same model architecture and the same batches
    torch.manual_seed(0)
    model = CLASSIFY.build_model(cfg, prep)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    sampler = BucketBatchSampler(train.lengths, 32, seed=0)
    bare_times, timer = [], EpochTimer()
    with tempfile.TemporaryDirectory() as tmp:
        bare_epoch(model, optimizer, train, sampler, 99)  # warm-up (allocator, oneDNN primitives)
        for e in range(args.epochs):
            bare_times.append(bare_epoch(model, optimizer, train, sampler, e))
        fit(cfg, data, CLASSIFY, Path(tmp), callbacks=[timer], preflight=preflight)
        for e in range(args.epochs):  # a second bare round after rnnkit, so drift is shared
            bare_times.append(bare_epoch(model, optimizer, train, sampler, e))
    real = sum(train.lengths)
    bare, ours = statistics.median(bare_times), statistics.median(timer.times)
    result = {
        "command": "python bench/bench_loop.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()
                                                            if k != "out"),
        "torch": torch.__version__, "threads": args.threads, "sequences": args.sequences,
        "real_tokens_per_epoch": real, "bare_epoch_seconds": bare_times, "rnnkit_epoch_seconds": timer.times,
        "bare_real_tokens_per_s": real / bare, "rnnkit_real_tokens_per_s": real / ours,
        "ratio_rnnkit_over_bare": bare / ours,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"bare loop   {real / bare:>9,.0f} real tokens/s (median of {len(bare_times)} epochs)")
    print(f"rnnkit loop {real / ours:>9,.0f} real tokens/s (median of {len(timer.times)} epochs)")
    print(f"ratio rnnkit / bare: {bare / ours:.3f}")


if __name__ == "__main__":
    main()
