"""Real tokens/s of a training step against sequence length: rnnkit's default encoder next to a bare nn.LSTM.

Issue 12 ("per-token cost on long numeric series"): a univariate set of 100-1,344 steps trained at about a
quarter of the real tokens/s of short series with the same default model. This script measures one training
step (forward, loss, backward, AdamW) on a batch of full-length univariate sequences (no padding, so every
position is a real token) at lengths 64 ... 2,048, for:

- ``bare``: Linear(1, 128) -> nn.LSTM(128, 128, num_layers=2, bidirectional=True, dropout=0.3) -> last step.
- ``rnnkit``: Linear(1, 128) -> rnnkit's RNNEncoder with the classify defaults (2 layers, bidirectional,
  hidden 128, locked dropout 0.3, recurrent DropConnect 0.2, padded path with per-sequence reversal).
- ``rnnkit_no_rd``: the same without recurrent dropout (isolates the DropConnect call).
- ``bare_uni`` / ``rnnkit_uni``: one direction, 2 layers (isolates the backward direction's cost).

Variants are timed interleaved, round by round (A B C ... A B C ...), on one thread by default; the figure is
the median step time per variant and its real tokens/s. ``--profile L`` adds a torch.profiler table (self CPU
time by operator) of ``rnnkit`` and ``bare`` at length L.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_seqlen.py --out bench/results/seqlen.json
    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_seqlen.py --lengths 512 --profile 512
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import uptime  # noqa: E402  (this folder, put on sys.path above)

from rnnkit.models.encoder import RNNEncoder  # noqa: E402

BATCH, HIDDEN, EMBED = 32, 128, 128


class Bare(nn.Module):
    def __init__(self, bidirectional: bool):
        super().__init__()
        self.proj = nn.Linear(1, EMBED)
        self.rnn = nn.LSTM(EMBED, HIDDEN, num_layers=2, bidirectional=bidirectional, dropout=0.3, batch_first=True)
        self.head = nn.Linear(HIDDEN * (2 if bidirectional else 1), 4)

    def forward(self, x, lengths, mask):
        out, _ = self.rnn(self.proj(x))
        return self.head(out[:, -1])


class Rnnkit(nn.Module):
    def __init__(self, bidirectional: bool, recurrent_dropout: float):
        super().__init__()
        self.proj = nn.Linear(1, EMBED)
        self.enc = RNNEncoder(EMBED, HIDDEN, num_layers=2, bidirectional=bidirectional, dropout=0.3,
                              recurrent_dropout=recurrent_dropout, packing="never")
        self.head = nn.Linear(self.enc.output_size, 4)

    def forward(self, x, lengths, mask):
        return self.head(self.enc(self.proj(x), lengths, mask).final)


VARIANTS = {
    "bare": lambda: Bare(True),
    "rnnkit": lambda: Rnnkit(True, 0.2),
    "rnnkit_no_rd": lambda: Rnnkit(True, 0.0),
    "bare_uni": lambda: Bare(False),
    "rnnkit_uni": lambda: Rnnkit(False, 0.2),
}


def make_step(model: nn.Module, length: int):
    x = torch.randn(BATCH, length, 1)
    lengths = torch.full((BATCH,), length, dtype=torch.long)
    mask = torch.ones(BATCH, length, dtype=torch.bool)
    y = torch.randint(0, 4, (BATCH,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x, lengths, mask), y).backward()
        opt.step()

    return step


def profile(length: int, names: list[str]) -> dict[str, str]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    tables = {}
    for name in names:
        torch.manual_seed(0)
        step = make_step(VARIANTS[name](), length)
        step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                step()
        tables[name] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
        print(f"\n== {name}, length {length}, 2 steps\n{tables[name]}", flush=True)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="64,128,256,512,1024,2048")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant and length")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, help="also profile rnnkit and bare at this length")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    result = {"command": " ".join(sys.argv), "threads": args.threads, "batch": BATCH, "hidden": HIDDEN,
              "torch": torch.__version__, "uptime_start": uptime(), "rows": []}
    print(result["uptime_start"], flush=True)
    for length in map(int, args.lengths.split(",")):
        steps = {}
        for name in names:
            torch.manual_seed(0)
            steps[name] = make_step(VARIANTS[name](), length)
            steps[name]()  # warm-up (allocations, oneDNN primitive creation)
        times: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(args.rounds):
            for name in names:  # interleaved: machine noise hits every variant alike
                t = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - t)
        row = {"length": length}
        for name in names:
            med = statistics.median(times[name])
            row[name] = {"step_s": med, "tokens_per_s": BATCH * length / med}
        base = row["bare"]["tokens_per_s"] if "bare" in row else None
        print(f"L={length:5d}  " + "  ".join(
            f"{n} {row[n]['tokens_per_s']:8.0f} tok/s" + (f" ({row[n]['tokens_per_s'] / base:.2f}x)" if base else "")
            for n in names), flush=True)
        result["rows"].append(row)
    if args.profile:
        result["profile"] = profile(args.profile, [n for n in ("rnnkit", "bare") if n in names])
    result["uptime_end"] = uptime()
    print(result["uptime_end"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
