"""Shared pieces of the reliability suite, and the child process the kill/signal tests drive.

Every resume test trains the same tiny run (`BASE` on the same data file; per task family, `FAMILIES`), so
each one can compare its final weights and per-step sample order with one uninterrupted reference run, bit
for bit.

Run as a script, this module is `rnnkit` itself with one pause point added for the parent to aim
at (nothing else changes; the signal or kill comes from the parent process):

    python relsupport.py step K -- train ...   pause after optimizer step K
    python relsupport.py save N -- train ...   pause in the N-th checkpoint write, after half of
                                               state.pt is on disk

At the pause the child prints ``PAUSED`` and waits for a line on stdin; the parent then sends
SIGKILL/SIGINT/SIGTERM (and, for a catchable signal, writes a line so that the child goes on).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# 240 sequences, 192 for training -> 8 batches of 24 per epoch, 24 optimizer steps in all.
# Checkpoints: every 3 steps mid-epoch (3, 6, 9, 12, 15, 18, 21) and at each epoch end (8, 16, 24).
BASE = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "data.batch_size=24",
        "train.max_epochs=3", "train.checkpoint_every=3", "train.log_every=1", "train.progress=none",
        "train.threads=1", "train.keep_checkpoints=2", "train.device=cpu"]  # the bit-for-bit promise is the CPU one
STEPS_PER_EPOCH, TOTAL_STEPS = 8, 24


def sets(overrides: list[str]) -> list[str]:
    """["a=1", "b=2"] -> ["--set", "a=1", "--set", "b=2"]."""
    return [x for o in overrides for x in ("--set", o)]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--out", str(out), *sets(BASE), *extra]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`rnnkit ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def start_paused(mode: str, at: int, args: list[str]) -> subprocess.Popen:
    """Start `rnnkit ARGS` with a pause point (see the module docstring); returns once it is paused."""
    proc = subprocess.Popen([sys.executable, str(HERE / "relsupport.py"), mode, str(at), "--", *map(str, args)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("PAUSED"):
            return proc
    _, err = proc.communicate()
    raise AssertionError(f"child ended (status {proc.returncode}) before its pause point: {err}")


def records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if x.strip()]


def step_records(run_dir: Path) -> dict[int, dict]:
    """step -> its metrics.jsonl record (ids included: BASE logs every step)."""
    return {r["step"]: r for r in records(run_dir) if r.get("kind") == "step"}


def weights(run_dir: Path, which: str = "last") -> dict:
    """The model tensors of the checkpoint that checkpoints/{which}.json names."""
    from safetensors.torch import load_file

    from rnnkit.training import checkpoint as ckpt

    path = ckpt.read_pointer(Path(run_dir) / "checkpoints", which)
    assert path is not None, f"{run_dir}: no {which}.json"
    return load_file(str(path / ckpt.WEIGHTS))


def assert_same_weights(a: dict, b: dict) -> None:
    """Bit for bit: same names, and every tensor equal in value, dtype and shape."""
    import torch

    assert sorted(a) == sorted(b)
    differ = [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    assert not differ, f"tensors differ: {differ}"


def assert_same_run(run: Path, reference: Path) -> None:
    """Same final and best weights, same per-step sample order and losses as the reference run."""
    for which in ("last", "best"):
        assert_same_weights(weights(run, which), weights(reference, which))
    got, want = step_records(run), step_records(reference)
    assert sorted(got) == sorted(want) == list(range(1, TOTAL_STEPS + 1))
    assert [got[s]["ids"] for s in got] == [want[s]["ids"] for s in got]
    assert [got[s]["loss"] for s in got] == [want[s]["loss"] for s in got]


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under root (to prove a command changed nothing). The run lock
    (`.rnnkit.lock`) is left out: every command that claims the run writes its own pid there."""
    root = Path(root)
    skip = (*skip, ".rnnkit.lock")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


# --------------------------------------------------------------------------- the task families
#
# Each family trains the same kind of tiny run as classify: 240 records, 192 of them (sentences, pairs,
# windows) for training, so BASE gives it the same 8 batches per epoch, 24 steps and checkpoint steps.


def tagged_sentences(n: int = 240, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """BIO person names among other words (a name after a name is I-PER, else B-PER; others O)."""
    rng = random.Random(seed)
    names, words = [f"N{i}" for i in range(8)], [f"w{i}" for i in range(15)]
    out = []
    for _ in range(n):
        tokens = [rng.choice(names if rng.random() < 0.35 else words) for _ in range(rng.randint(3, 10))]
        out.append((tokens, [("I-PER" if i and tokens[i - 1][0] == "N" else "B-PER") if t[0] == "N" else "O"
                             for i, t in enumerate(tokens)]))
    return out


def sentence_lines(tokens: list[str], tags: list[str], fmt: str) -> list[str]:
    """One sentence as the lines of a `fmt` file: conll (token TAB tag), conllu (tag in UPOS) or jsonl."""
    if fmt == "jsonl":
        return [json.dumps({"tokens": tokens, "tags": tags})]
    if fmt == "conllu":
        return [f"{i}\t{t}\t_\t{g}\t_\t_\t{i - 1}\t{'root' if i == 1 else 'dep'}\t_\t_"
                for i, (t, g) in enumerate(zip(tokens, tags, strict=True), start=1)]
    return [f"{t}\t{g}" for t, g in zip(tokens, tags, strict=True)]


def write_blocks(path: Path, blocks: list[list[str]]) -> list[int]:
    """Write sentences given as their lines (a blank line after each, except in JSONL); returns the line
    number of each sentence's first line."""
    starts, lines = [], []
    for block in blocks:
        starts.append(len(lines) + 1)
        lines += block if path.suffix == ".jsonl" else [*block, ""]
    path.write_text("\n".join(lines) + "\n")
    return starts


def write_tagged_jsonl(path: Path, n: int = 240, seed: int = 0) -> Path:
    write_blocks(path, [sentence_lines(*s, "jsonl") for s in tagged_sentences(n, seed)])
    return path


def write_stores_csv(path: Path, steps: int = 129, stores: tuple[str, ...] = ("a", "b"), seed: int = 0) -> Path:
    """Long format `t,store,y`: one noisy sine per store, `steps` time steps each, rows sorted by time."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "store", "y"])
        for t in range(steps):
            for k, store in enumerate(stores):
                w.writerow([t, store, f"{10 + 3 * math.sin(2 * math.pi * t / (8 + 4 * k)) + rng.gauss(0, 0.1):.4f}"])
    return path


@dataclasses.dataclass(frozen=True)
class Family:
    """How the reliability suite trains one task family.

    Attributes:
        write: writes the family's data file into a directory, returns its path.
        sets: config overrides on top of BASE (the task first).
        scores: the field of the family's forward output that holds the scores the loss reads
            (None: the output is that tensor).
    """

    write: Callable[[Path], Path]
    sets: tuple[str, ...]
    scores: str | None


def _reversal(path: Path) -> Path:
    from fakedata import write_reversal_tsv  # here, not at the top: this module also runs as a child script

    return write_reversal_tsv(path)


FAMILIES = {
    # 240 noisy sine sequences; splits 192/24/24 (stratified)
    "classify": Family(lambda d: _numeric_jsonl(d / "series.jsonl"), (), None),
    # 240 sentences; 192/24/24. Word dropout is the only randomness of a step (no dropout), so a resume
    # that lost the RNG state would train differently.
    "tag": Family(lambda d: write_tagged_jsonl(d / "names.jsonl"),
                  ("task=tag", "tag.char_dim=8", "tag.word_dropout=0.25", "model.dropout=0",
                   "model.recurrent_dropout=0"), "emissions"),
    # 240 distinct sources; 192/24/24 by source group. Scheduled sampling at every step (teacher forcing
    # 0.8 -> 0.4 over the 3 epochs) is the only randomness: the coin flips come from the torch RNG.
    "seq2seq": Family(lambda d: _reversal(d / "reversal.tsv"),
                      ("task=seq2seq", "seq2seq.beam=1", "seq2seq.teacher_forcing_start=0.8",
                       "seq2seq.teacher_forcing_end=0.4", "seq2seq.teacher_forcing_epochs=3", "model.dropout=0",
                       "model.recurrent_dropout=0"), "logits"),
    # 2 series of 129 steps: windows of 8 steps -> 2 targets; per series 105 training steps (96 windows),
    # 12 validation and 12 test steps. The forecasting defaults' dropout (0.1) draws from the RNG.
    "forecast": Family(lambda d: write_stores_csv(d / "stores.csv"),
                       ("task=forecast", "forecast.time_column=t", "forecast.series_column=store",
                        "forecast.input_length=8", "forecast.horizon=2", "forecast.val_size=12",
                        "forecast.test_size=12", "forecast.auto=false"), "prediction"),
}


def _numeric_jsonl(path: Path) -> Path:
    from fakedata import write_numeric_jsonl

    return write_numeric_jsonl(path)


def family_overrides(family: str, data: Path) -> list[str]:
    """The flat overrides of a family's run on `data` (what `family_train_args` passes with --set)."""
    return [f"data.train={data}", *BASE, *FAMILIES[family].sets]


def family_train_args(family: str, data: Path, out: Path, *extra: str) -> list[str]:
    """`rnnkit train` arguments of the family's BASE run on `data` into `out`."""
    return train_args(data, out, *sets(list(FAMILIES[family].sets)), *extra)


def training_ids(family: str, data: Path) -> list[str]:
    """The ids of the family's training examples (what each epoch must see exactly once), sorted."""
    from rnnkit import config as C
    from rnnkit.tasks import get_task

    cfg = C.resolve(None, family_overrides(family, data))
    return sorted(e.id for e in get_task(family).prepare(cfg, None).datasets["train"].examples)


def scores_of(family: str, out):
    """The tensor of a family's forward output that the loss reads."""
    name = FAMILIES[family].scores
    return out if name is None else getattr(out, name)


def with_scores(family: str, out, scores):
    """A family's forward output with its scores tensor replaced."""
    name = FAMILIES[family].scores
    if name is None:
        return scores
    if hasattr(out, "_replace"):  # a NamedTuple
        return out._replace(**{name: scores})
    return dataclasses.replace(out, **{name: scores})


# --------------------------------------------------------------------------- the child process


def _wait_for_parent() -> None:
    print("PAUSED", flush=True)
    sys.stdin.readline()  # a signal arriving here runs its handler; the read then goes on


def _child(mode: str, at: int, argv: list[str]) -> int:
    import torch

    from rnnkit import api, cli
    from rnnkit.training import checkpoint as ckpt
    from rnnkit.training.callbacks import Callback

    if mode == "step":
        class Pause(Callback):
            def on_step_end(self, state, record):
                if state.step == at:
                    _wait_for_parent()

        real_fit = api.fit_from_config

        def fit(*args, callbacks=(), **kwargs):
            return real_fit(*args, callbacks=[*callbacks, Pause()], **kwargs)

        api.fit_from_config = fit
    elif mode == "save":
        real_save = torch.save
        calls = []

        def save(obj, f, *args, **kwargs):
            calls.append(f)
            if len(calls) != at:
                return real_save(obj, f, *args, **kwargs)
            real_save(obj, f, *args, **kwargs)
            data = Path(f).read_bytes()
            with open(f, "wb") as fh:  # a torn file: the first half of the bytes reached the disk
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            _wait_for_parent()
            raise AssertionError("the parent should have killed this process")

        ckpt.torch.save = save
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return cli.main(argv)


if __name__ == "__main__":
    sep = sys.argv.index("--")
    sys.exit(_child(sys.argv[1], int(sys.argv[2]), sys.argv[sep + 1:]))
