"""Shared pieces of the reliability suite, and the child process the kill/signal tests drive.

Every resume test trains the same tiny run (`BASE` on the same data file), so each one can compare
its final weights and per-step sample order with one uninterrupted reference run, bit for bit.

Run as a script, this module is `rnnkit` itself with one pause point added for the parent to aim
at (nothing else changes; the signal or kill comes from the parent process):

    python relsupport.py step K -- train ...   pause after optimizer step K
    python relsupport.py save N -- train ...   pause in the N-th checkpoint write, after half of
                                               state.pt is on disk

At the pause the child prints ``PAUSED`` and waits for a line on stdin; the parent then sends
SIGKILL/SIGINT/SIGTERM (and, for a catchable signal, writes a line so that the child goes on).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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

    from rnnkit.train import checkpoint as ckpt

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
    """relative path -> sha256 of every file under root (to prove a command changed nothing)."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


# --------------------------------------------------------------------------- the child process


def _wait_for_parent() -> None:
    print("PAUSED", flush=True)
    sys.stdin.readline()  # a signal arriving here runs its handler; the read then goes on


def _child(mode: str, at: int, argv: list[str]) -> int:
    import torch

    from rnnkit import api, cli
    from rnnkit.train import checkpoint as ckpt
    from rnnkit.train.callbacks import Callback

    if mode == "step":
        class Pause(Callback):
            def on_step_end(self, state, record):
                if state.step == at:
                    _wait_for_parent()

        real_fit = api.fit

        def fit(*args, callbacks=(), **kwargs):
            return real_fit(*args, callbacks=[*callbacks, Pause()], **kwargs)

        api.fit = fit
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
