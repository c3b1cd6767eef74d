"""Padding share and real-token training throughput: global-max vs batch-max padding vs bucketing.

Not a test: a measurement, run by hand (about 2-4 minutes on 2 CPU cores):

    .venv/bin/python bench/bench_bucketing.py [--sequences 20000] [--batches 20] [--seed 0]
        [--out bench/results/bucketing.json]

Data: `--sequences` token sequences whose lengths are lognormal with median 40
(mu = ln 40, sigma = 0.7, so P(length > 400) = P(Z > ln(10)/0.7 = 3.29) ~ 0.05%), rounded and
clipped to [1, 400]; token ids uniform in [1, 10000); 10 random classes. Everything is seeded.

Model and step: Embedding(10000, 128) -> LSTM(128, 256, batch_first) -> masked mean over real
steps -> Linear(256, 10) -> cross entropy; AdamW; batch size 64; torch.set_num_threads(2).
The LSTM runs on the padded tensor *without* packing, so its cost follows the padded length
of the batch - exactly the cost this benchmark is about. (The masked mean keeps the loss
independent of padding; in a unidirectional LSTM pads come after every real step.)

Strategies, all in one run, each with a fresh, identically initialised model:
  (a) random batches, each padded to the global maximum length of the data set;
  (b) the same random batches, each padded to its own maximum (`collate`);
  (c) `BucketBatchSampler` defaults (bucketing, chunk_batches=100) through `collate`.

Metrics:
  * padding share: pad positions / all positions over the *full* epoch (no model, cheap).
  * real tokens/s: over the first `--warmup` (untimed) + `--batches` (timed) batches of the
    strategy's own epoch order, total real (non-pad) tokens of the timed batches divided by
    their total step time (forward + backward + optimizer step; collation happens before
    timing). Total/total rather than a median of per-batch rates because batches differ in
    size: it is what a training run actually gets. The median per-batch rate and the rate per
    second of process CPU time (less sensitive to other load on the machine) are also recorded.
    Global-max batches (a) are slow, so (a) times only `--global-batches` batches (default 8).
    The three strategies are timed interleaved (one batch of each per round) so that load from
    other processes hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data.collate import Batch, Example, collate
from rnnkit.data.sampler import BucketBatchSampler, padding_share

MEDIAN_LENGTH, SIGMA, MAX_LENGTH = 40, 0.7, 400
VOCAB, EMBED, HIDDEN, CLASSES, BATCH_SIZE, THREADS = 10_000, 128, 256, 10, 64, 2


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED, padding_idx=0)
        self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, CLASSES)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(inputs))  # (B, T, H)
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(dim=1) / m.sum(dim=1)  # (B, H): mean over real steps only
        return self.out(pooled)  # (B, K)


def make_data(n: int, seed: int) -> tuple[list[int], list[Example], float]:
    rng = np.random.default_rng(seed)
    raw = np.round(rng.lognormal(np.log(MEDIAN_LENGTH), SIGMA, size=n))
    clipped = float(((raw < 1) | (raw > MAX_LENGTH)).mean())
    lengths = np.clip(raw, 1, MAX_LENGTH).astype(np.int64)
    tokens = torch.from_numpy(rng.integers(1, VOCAB, size=int(lengths.sum())))
    labels = rng.integers(0, CLASSES, size=n)
    examples, pos = [], 0
    for i, t in enumerate(lengths.tolist()):
        target = torch.tensor(labels[i])
        examples.append(Example(id=f"synthetic:{i}", inputs=tokens[pos : pos + t], target=target))
        pos += t
    return lengths.tolist(), examples, clipped


def pad_to(batch: Batch, total: int) -> Batch:
    """Extend a collated token batch with pad columns up to `total` steps."""
    extra = total - batch.inputs.shape[1]
    return Batch(
        inputs=F.pad(batch.inputs, (0, extra), value=0),  # (B, total)
        lengths=batch.lengths,
        mask=F.pad(batch.mask, (0, extra), value=False),  # (B, total)
        targets=batch.targets,
        ids=batch.ids,
    )


def global_padding_share(lengths: list[int], batches: list[list[int]], total: int) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    return 1.0 - real / (sum(len(b) for b in batches) * total)


class Runner:
    """One strategy's model, optimizer and batches; steps are timed one at a time."""

    def __init__(self, batches: list[Batch], warmup: int, seed: int) -> None:
        torch.manual_seed(seed)  # same initial weights for every strategy
        self.model = Model().train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.warmup, self.timed = batches[:warmup], batches[warmup:]
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def step(self, b: Batch) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(b.inputs, b.mask), b.targets)
        loss.backward()
        self.opt.step()

    def timed_step(self, i: int) -> None:
        b = self.timed[i]
        w0, c0 = time.perf_counter(), time.process_time()
        self.step(b)
        self.wall.append(time.perf_counter() - w0)
        self.cpu.append(time.process_time() - c0)

    def summary(self) -> dict:
        real = [b.real_tokens for b in self.timed[: len(self.wall)]]
        padded = [b.padded_positions for b in self.timed[: len(self.wall)]]
        wall, cpu = sum(self.wall), sum(self.cpu)
        return {
            "timed_batches": len(self.wall),
            "warmup_batches": len(self.warmup),
            "real_tokens": sum(real),
            "padded_positions": sum(padded),
            "seconds": wall,
            "cpu_seconds": cpu,
            "real_tokens_per_s": sum(real) / wall,
            "real_tokens_per_cpu_s": sum(real) / cpu,
            "positions_per_s": sum(padded) / wall,
            "median_batch_real_tokens_per_s": statistics.median(
                r / t for r, t in zip(real, self.wall, strict=True)
            ),
            "timed_padding_share": 1.0 - sum(real) / sum(padded),
        }


def measure(batch_lists: dict[str, list[Batch]], warmup: int, seed: int) -> dict[str, dict]:
    """Warm every strategy up, then time them interleaved, one batch each per round.

    Interleaving matters on a shared machine: a burst of load from other processes then slows
    every strategy alike instead of distorting the ratio between them.
    """
    runners = {name: Runner(batches, warmup, seed) for name, batches in batch_lists.items()}
    for r in runners.values():
        for b in r.warmup:
            r.step(b)
    for i in range(max(len(r.timed) for r in runners.values())):
        for r in runners.values():
            if i < len(r.timed):
                r.timed_step(i)
    return {name: r.summary() for name, r in runners.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=20, help="timed batches for (b) and (c)")
    parser.add_argument("--global-batches", type=int, default=8, help="timed batches for (a), which is slow")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/bucketing.json"))
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    load_at_start = list(os.getloadavg())

    lengths, examples, clipped = make_data(args.sequences, args.seed)
    global_max = max(lengths)
    random_sampler = BucketBatchSampler(lengths, BATCH_SIZE, bucketing=False, seed=args.seed)
    bucket_sampler = BucketBatchSampler(lengths, BATCH_SIZE, seed=args.seed)  # defaults: bucketing, 100
    random_batches = random_sampler.epoch_batches(0)
    bucket_batches = bucket_sampler.epoch_batches(0)

    def collated(index_batches: list[list[int]], count: int) -> list[Batch]:
        return [collate([examples[i] for i in b]) for b in index_batches[: args.warmup + count]]

    strategies = {
        "a_random_global_max": {
            "description": "random batches padded to the global max",
            "padding_share": global_padding_share(lengths, random_batches, global_max),
            "batches": [pad_to(b, global_max) for b in collated(random_batches, args.global_batches)],
        },
        "b_random_batch_max": {
            "description": "random batches padded to the batch max",
            "padding_share": padding_share(lengths, random_batches),
            "batches": collated(random_batches, args.batches),
        },
        "c_bucketed": {
            "description": "BucketBatchSampler (chunk_batches=100) + collate",
            "padding_share": padding_share(lengths, bucket_batches),
            "batches": collated(bucket_batches, args.batches),
        },
    }
    timings = measure({name: s.pop("batches") for name, s in strategies.items()}, args.warmup, args.seed)
    results = {name: s | timings[name] for name, s in strategies.items()}

    a, b, c = (results[k]["real_tokens_per_s"] for k in strategies)
    report = {
        "config": {
            "sequences": args.sequences,
            "seed": args.seed,
            "length_distribution": f"lognormal(mu=ln {MEDIAN_LENGTH}, sigma={SIGMA}), rounded, "
            f"clipped to [1, {MAX_LENGTH}]",
            "clipped_fraction": clipped,
            "mean_length": float(np.mean(lengths)),
            "global_max_length": global_max,
            "batch_size": BATCH_SIZE,
            "model": f"Embedding({VOCAB},{EMBED}) -> LSTM({EMBED},{HIDDEN}) unpacked -> masked mean -> "
            f"Linear({HIDDEN},{CLASSES}) -> CE, AdamW",
            "threads": THREADS,
            "warmup_batches": args.warmup,
            "timed_batches": {"a": args.global_batches, "b": args.batches, "c": args.batches},
            "throughput_metric": "total real tokens / total wall-clock step time over the timed batches",
            "schedule": "strategies timed interleaved, one batch each per round, after per-strategy warm-up",
        },
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            # other processes compete for the same cores; recorded because it moves the numbers
            "load_average_1_5_15_min_at_start": load_at_start,
            "load_average_1_5_15_min_at_end": list(os.getloadavg()),
        },
        "strategies": results,
        "ratios": {"c_over_b_real_tokens_per_s": c / b, "c_over_a_real_tokens_per_s": c / a},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{args.sequences} sequences, mean length {np.mean(lengths):.1f}, max {global_max}, "
          f"clipped {clipped:.3%}; batch {BATCH_SIZE}; {THREADS} threads\n")
    print("| strategy | padding share (epoch) | timed batches | real tokens/s | ratio (c)/x |")
    print("|---|---:|---:|---:|---:|")
    for r in results.values():
        ratio = c / r["real_tokens_per_s"]
        print(f"| {r['description']} | {r['padding_share']:.1%} | {r['timed_batches']} | "
              f"{r['real_tokens_per_s']:,.0f} | {ratio:.2f}x |")
    print(f"\n(c)/(b) = {c / b:.2f}x, (c)/(a) = {c / a:.2f}x real tokens/s; "
          f"load average at start {load_at_start[0]:.1f}; written to {args.out}")


if __name__ == "__main__":
    main()
