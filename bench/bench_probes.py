"""The live probes' cost (issue 10: at most 3% of step time): training epochs with probes every 100 steps (the
default, train.probe_every=100) against the same epochs with them off, on the data of bench/bench_loop.py.

Each segment is one `fit_from_config` epoch from the same seed (same model, same batches, same work), timed
from on_epoch_start to on_epoch_end: its steps and the validation of 64 sequences, not the checkpoint or the
scoring (the probe's record of the epoch's last step is written after every other callback's on_step_end, so
the span must reach past it). Segments alternate
off, on, on, off per round, so drift on a shared machine falls on both alike; the cost is median(on) /
median(off) - 1. Beside this end-to-end figure, which a busy machine blurs by more than the probes cost, the
time spent inside the probe itself (its callbacks and hooks, perf_counter around each) is summed: its share of
the "on" epochs is the probes' direct cost, which noise does not blur. One intra-op thread.

    python bench/bench_probes.py --out bench/results/probes.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_loop import make_data  # the same synthetic data as the loop benchmark

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.data.pipeline import PreparedData, Preprocessing
from rnnkit.data.vocab import LabelMap, Vocab
from rnnkit.doctor.preflight import preflight
from rnnkit.tasks.classify import TASK as CLASSIFY
from rnnkit.training import loop, probes
from rnnkit.training.callbacks import Callback
from rnnkit.training.setup import fit_from_config


class EpochSpan(Callback):
    """Seconds from on_epoch_start to on_epoch_end, per epoch."""

    def __init__(self):
        self.times: list[float] = []
        self._t0 = 0.0

    def on_epoch_start(self, state):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, state, record):
        self.times.append(time.perf_counter() - self._t0)


class TimedProbe(probes.Probe):
    """The probe, with the time spent in each of its entry points summed (class-wide, for the whole run)."""

    seconds = 0.0
    written = 0

    def _timed(self, method, *args):
        t0 = time.perf_counter()
        try:
            return method(self, *args)
        finally:
            TimedProbe.seconds += time.perf_counter() - t0

    def on_before_step(self, state, model, grad_norm):
        self._timed(probes.Probe.on_before_step, state, model, grad_norm)

    def on_step_end(self, state, record):
        written = self._before is not None and state.step % self.every == 0
        self._timed(probes.Probe.on_step_end, state, record)
        TimedProbe.written += written

    def _capture(self, module, args, kwargs, output):
        self._timed(probes.Probe._capture, module, args, kwargs, output)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=6400, help="6400 at batch 32: 200 steps, 2 probes an epoch")
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of off, on, on, off epochs")
    ap.add_argument("--probe-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/probes.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    train = SequenceDataset(make_data(args.sequences, args.vocab, args.seed))
    val = SequenceDataset(make_data(64, args.vocab, args.seed + 1))
    prep = Preprocessing(kind="text", labels=LabelMap.build(["0", "1", "2", "3"]),
                         vocab=Vocab.build([[str(i) for i in range(args.vocab)]]))
    data = PreparedData(datasets={"train": train, "val": val}, prep=prep)
    base = ["train.progress=none", "train.max_epochs=1", "train.patience=100", "train.threads=1",
            "optim.warmup_epochs=0", "train.log_every=50", "data.batch_size=32"]
    loop.Probe = TimedProbe  # fit builds its probe from this name
    times: dict[str, list[float]] = {"off": [], "on": []}
    steps = 0
    for _ in range(args.rounds):
        for mode in ("off", "on", "on", "off"):
            every = args.probe_every if mode == "on" else 0
            cfg = C.resolve(None, [*base, f"train.probe_every={every}"])
            timer = EpochSpan()
            with tempfile.TemporaryDirectory() as tmp:
                summary = fit_from_config(cfg, data, CLASSIFY, Path(tmp), callbacks=[timer], preflight=preflight)
            times[mode].append(timer.times[0])
            steps = summary["steps"]
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    on_total = sum(times["on"])
    result = {
        "command": "python bench/bench_probes.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "torch": torch.__version__, "threads": 1, "steps_per_epoch": steps, "probe_every": args.probe_every,
        "probes_written": TimedProbe.written, "load_average": list(os.getloadavg()),
        "epoch_seconds_off": times["off"], "epoch_seconds_on": times["on"],
        "cost_end_to_end": on / off - 1, "probe_seconds": TimedProbe.seconds,
        "cost_direct": TimedProbe.seconds / on_total,
        "probe_ms_each": 1e3 * TimedProbe.seconds / max(TimedProbe.written, 1),
        "step_ms": 1e3 * off / steps,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"probes off {off:.3f} s/epoch, on (every {args.probe_every} steps) {on:.3f} s/epoch "
          f"(medians of {len(times['off'])}; {steps} steps an epoch)")
    print(f"end-to-end cost: {on / off - 1:+.2%}; inside the probe: {TimedProbe.seconds:.3f} s over "
          f"{TimedProbe.written} probes = {result['probe_ms_each']:.1f} ms each, {result['cost_direct']:.2%} of the "
          f"'on' epochs (a step: {result['step_ms']:.1f} ms); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
