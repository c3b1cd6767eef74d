"""Where the loop's output goes: `Run` writes a run directory, `MemoryRun` (what `fit(run=None)` uses) keeps
it in memory. The loop writes through one of these and never touches a path itself.

A run directory (see DESIGN.md) as the loop writes it: `metrics.jsonl` (one record per logged step, epoch and
event; on resume the lines after the checkpoint's step are dropped first), `checkpoints/step-*` (atomic,
checksummed: `rnnkit.training.checkpoint`) with the `last` and `best` pointers, and the progress shown on
stderr. Under torchrun only rank 0 writes (`dist.main_only`); the other ranks' logs are no-ops.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

from rnnkit.errors import CheckpointError
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed


class MetricsLog:
    """Append-only metrics.jsonl; on resume, lines after the checkpoint's step are dropped first."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                if rec.get("step", 0) <= resume_step:
                    kept.append(line)
            path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


class TensorBoardLog:
    """metrics.jsonl with a TensorBoard mirror (`train.tensorboard`): every record is written to the file first
    (the source of truth), then each of its numbers becomes a scalar `KIND/NAME` (step, epoch, probe; an event's
    numbers under `event/NAME`) at the record's step, in DIR/tensorboard/. A resume purges the events after the
    checkpoint's step, as metrics.jsonl drops its lines.

    Raises:
        MissingExtra: the tensorboard package is not installed (before the first step).
    """

    def __init__(self, inner: MetricsLog, log_dir: Path, resume_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            from rnnkit.errors import MissingExtra

            raise MissingExtra("train.tensorboard=true needs the tensorboard package: pip install "
                               "'rnnkit[tensorboard]' (or set train.tensorboard=false)") from exc
        self.inner, self.path = inner, inner.path
        self.writer = SummaryWriter(str(log_dir), purge_step=resume_step + 1 if resume_step is not None else None)

    def write(self, record: dict) -> None:
        self.inner.write(record)
        kind = record.get("kind") or ("event" if "event" in record else None)
        step = record.get("step")
        if kind is None or not isinstance(step, int):
            return
        for name, value in _scalars(record):
            self.writer.add_scalar(f"{kind}/{name}", value, global_step=step)
        if kind == "epoch":
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _scalars(record: dict, prefix: str = ""):
    """(name, number) for every number in a record, nested dicts flattened with dots (probes hold per-layer dicts)."""
    for key, value in record.items():
        if key in ("kind", "step", "event") and not prefix:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, (int, float)):  # bool included (e.g. "improved": 0 or 1)
            yield name, float(value)
        elif isinstance(value, dict):
            yield from _scalars(value, name + ".")


class _NoLog:
    """metrics.jsonl on ranks other than 0: they never write the run directory."""

    def write(self, record: dict) -> None:
        pass


class Progress:
    """A tqdm bar on a terminal; plain lines (one per epoch) otherwise."""

    def __init__(self, mode: str, total: int):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)

    def step(self, n: int, loss: float, lr: float, tps: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}", refresh=False)

    def line(self, text: str) -> None:
        if self.mode == "none":
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Run:
    """A run directory that the loop writes: metrics, progress, checkpoints and their pointers.

    Args:
        run_dir: the directory (it exists; `rnnkit.rundir` holds its lock).
        resume_step: the step of the checkpoint a resume continues from (later log lines are dropped);
            None for a new run, whose metrics.jsonl starts empty.
        progress: auto | bar | plain | none (rank 0 only).
    """

    def __init__(self, run_dir: Path, *, resume_step: int | None = None, progress: str = "auto",
                 dist: distributed.Dist = distributed.SINGLE, tensorboard: bool = False):
        self.dir, self.dist = Path(run_dir), dist
        self.ckpt_dir = self.dir / "checkpoints"
        self.log: MetricsLog | TensorBoardLog | _NoLog = _NoLog()
        if dist.is_main:
            self.log = MetricsLog(self.dir / "metrics.jsonl", resume_step=resume_step)
            if resume_step is None:
                self.log.path.write_text("")
            if tensorboard:
                self.log = TensorBoardLog(self.log, self.dir / "tensorboard", resume_step)
        self.progress_mode = progress if dist.is_main else "none"
        self.progress = Progress("none", 0)
        self.epoch_word = "epoch"  # what a progress line counts: "pass" when a small data set's epoch is several

    def start(self, total_steps: int) -> None:
        self.progress = Progress(self.progress_mode, total=total_steps)

    def close(self) -> None:
        self.progress.close()
        if isinstance(self.log, TensorBoardLog):
            self.log.close()  # a later record (the "finished" event) opens a new event file

    def save(self, model, payload: dict, step: int, epoch: int, carried: dict | None = None) -> Path:
        """Checkpoint `step-NNNNNNNN` with the unwrapped model's weights (no DDP prefix, so it loads with any
        number of processes), `payload` and the `carried` recurrent state of truncated BPTT (tensors; None:
        none), then point `last` at it. Every rank waits for rank 0."""
        return self.dist.main_only(self._write, model.state_dict(), payload, step, epoch, carried)

    def _write(self, weights: dict, payload: dict, step: int, epoch: int, carried: dict | None = None) -> Path:
        path = self.ckpt_dir / f"step-{step:08d}"
        try:
            ckpt.save_checkpoint(self.ckpt_dir, path.name, weights, payload, step=step, epoch=epoch, carried=carried)
            ckpt.write_pointer(self.ckpt_dir, "last", path, step=step, epoch=epoch)
        except Exception as exc:  # noqa: BLE001 - a full disk surfaces as OSError, SafetensorError or RuntimeError
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with contextlib.suppress(OSError):  # torch.save reports a full disk as "unexpected pos ...": show the room
                why += f" ({shutil.disk_usage(self.ckpt_dir).free / 2**20:.1f} MiB free there)"
            raise CheckpointError(f"cannot write checkpoint step-{step:08d} in {self.ckpt_dir}: {why}. Earlier "
                                  "checkpoints are untouched; free disk space (or fix permissions), then continue "
                                  f"with `rnnkit train --resume {self.dir}`.") from exc
        return path

    def mark_best(self, path: Path, **info) -> None:
        self.dist.main_only(ckpt.write_pointer, path.parent, "best", path, **info)

    def prune(self, keep: int) -> None:
        self.dist.main_only(ckpt.prune, self.ckpt_dir, keep)

    def best_weights(self) -> dict | None:
        best = ckpt.read_pointer(self.ckpt_dir, "best")
        return None if best is None else ckpt.load_checkpoint(best).model_state

    def resume_hint(self) -> str:
        return f"`rnnkit train --resume {self.dir} --set optim.lr=...`"

    def write_stopped(self, summary: dict) -> None:
        """summary.json of a run that stopped on an error (a non-finite loss): why, where, and the advice."""
        if self.dist.is_main:
            (self.dir / "summary.json").write_text(json.dumps(summary, indent=1))


class MemoryRun:
    """`fit(run=None)`: nothing on disk. Log records are kept in `records`; a "checkpoint" keeps a copy of
    the weights, so that the best epoch's weights can be restored at the end."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.log = self  # `run.log.write(...)` as with a directory
        self.progress = Progress("none", 0)
        self._last: tuple[str, dict] | None = None
        self._best: dict | None = None

    def write(self, record: dict) -> None:
        self.records.append(record)

    def start(self, total_steps: int) -> None:
        pass

    def close(self) -> None:
        pass

    def save(self, model, payload: dict, step: int, epoch: int, carried: dict | None = None) -> Path:
        name = f"step-{step:08d}"
        self._last = (name, {k: v.detach().clone() for k, v in model.state_dict().items()})
        return Path(name)

    def mark_best(self, path: Path, **info) -> None:
        if self._last is not None and self._last[0] == Path(path).name:
            self._best = self._last[1]

    def prune(self, keep: int) -> None:
        pass

    def best_weights(self) -> dict | None:
        return self._best

    def resume_hint(self) -> str:
        return "a lower learning rate"

    def write_stopped(self, summary: dict) -> None:
        self.stopped = summary
