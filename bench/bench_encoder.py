"""Train-step throughput of RNNEncoder (padded path, recurrent dropout) vs plain nn.LSTM.

Not a test: a quick measurement, run by hand:

    .venv/bin/python bench/bench_encoder.py [--steps 20] [--threads 2]

Both models run in the same process on the same input, interleaved round by round so that
machine noise hits both alike; the report is the median step time of each and the ratio of
throughputs (RNNEncoder / nn.LSTM, 1.0 = as fast as plain nn.LSTM).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rnnkit.models.encoder import RNNEncoder

BATCH, LENGTH, INPUT, HIDDEN = 64, 100, 128, 256


def make_step(model: nn.Module, forward):
    """One training step: forward, squared-output loss, backward, Adam update."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = forward().pow(2).mean()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed rounds per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds per model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    x = torch.randn(BATCH, LENGTH, INPUT)
    full = torch.full((BATCH,), LENGTH, dtype=torch.long)
    full_mask = torch.ones(BATCH, LENGTH, dtype=torch.bool)
    # A bucketed batch: lengths within 10% of T, as a length-bucketing sampler produces.
    varied = torch.randint(LENGTH - LENGTH // 10, LENGTH + 1, (BATCH,))
    varied_mask = torch.arange(LENGTH)[None] < varied[:, None]  # (B, T)

    lstm = nn.LSTM(INPUT, HIDDEN, batch_first=True).train()
    enc_rd = RNNEncoder(INPUT, HIDDEN, recurrent_dropout=0.2, packing="never").train()
    enc_plain = RNNEncoder(INPUT, HIDDEN, recurrent_dropout=0.0, packing="never").train()

    cases = {
        "nn.LSTM": make_step(lstm, lambda: lstm(x)[0]),
        "RNNEncoder rd=0.2 (full lengths)": make_step(enc_rd, lambda: enc_rd(x, full, full_mask).outputs),
        "RNNEncoder rd=0.2 (lengths 90-100)": make_step(enc_rd, lambda: enc_rd(x, varied, varied_mask).outputs),
        "RNNEncoder rd=0.0 (full lengths)": make_step(enc_plain, lambda: enc_plain(x, full, full_mask).outputs),
    }
    for _ in range(args.warmup):
        for step in cases.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.steps):
        for name, step in cases.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["nn.LSTM"])
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, length {LENGTH}, "
        f"input {INPUT}, hidden {HIDDEN}, {args.steps} timed steps each (median)"
    )
    for name, samples in times.items():
        med = statistics.median(samples)
        print(
            f"  {name:36s} {med * 1e3:8.1f} ms/step  {BATCH * LENGTH / med:9.0f} tokens/s  "
            f"throughput ratio vs nn.LSTM {base / med:.3f}"
        )


if __name__ == "__main__":
    main()
