"""The run directory's paths and checks, for `rnnkit.api.train` (see DESIGN.md for what a run holds)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.training import distributed
from rnnkit.training.callbacks import Callback
from rnnkit.training.samples import TEST_SAMPLES_FILE

CONFIG_FILE = "config.yaml"
MIN_FREE_BYTES = 200 * 1024 * 1024  # checkpoints of a large model need room; fail before training


def default_run_dir(cfg: C.Config) -> Path:
    stem = cfg.data.dataset or (Path(cfg.data.train).stem if cfg.data.train else "run")
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


PATH_KEYS = ("train", "val", "test")  # data.* keys that name input files


def with_absolute_paths(cfg: C.Config) -> C.Config:
    """A copy of `cfg` whose input files are absolute, for DIR/config.yaml: `--resume`, `evaluate` and the
    doctor then work from any directory, not only from where the run was started."""
    new = C.from_dict(cfg.to_dict())
    for key in PATH_KEYS:
        value = getattr(new.data, key)
        if value:
            setattr(new.data, key, str(Path(value).expanduser().resolve()))
    return new


def check_saved_paths(cfg: C.Config, run_dir: Path, overrides: list[str] | None) -> None:
    """Before a resume reads anything: every input file the run names must still be there."""
    given = C.parse_overrides(list(overrides or [])).get("data", {})
    for key in PATH_KEYS:
        value = getattr(cfg.data, key)
        if not value or Path(value).exists():
            continue
        if key in given:
            raise ConfigError(f"data.{key}: {value} does not exist (given with --set data.{key}=...).")
        relative = "" if Path(value).is_absolute() else (
            f" (a relative path, saved as given by an older rnnkit: it is read from the directory you run in, "
            f"{Path.cwd()})")
        raise ConfigError(f"cannot resume {run_dir}: its data.{key} file {value} does not exist{relative}. The "
                          f"path comes from the run's saved config {run_dir / CONFIG_FILE}; if the file moved, "
                          f"point at its new place: rnnkit train --resume {run_dir} --set data.{key}=NEW_PATH")


def holds_run(run_dir: Path) -> bool:
    """True when `run_dir` already has checkpoints (a run to continue with --resume, not to overwrite)."""
    return (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir())


def check_writable(run_dir: Path, min_free: int | None = None) -> None:
    """Fail before training when the run directory cannot be written or the disk is nearly full (under
    `min_free` bytes free; None: `MIN_FREE_BYTES`)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"x" * 4096)
        os.fsync(os.open(probe, os.O_RDONLY))
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output directory {run_dir} is not writable ({exc.strerror}); choose another --out "
                          "or fix its permissions.") from None
    min_free = MIN_FREE_BYTES if min_free is None else min_free
    free = shutil.disk_usage(run_dir).free
    if free < min_free:
        raise ConfigError(f"output directory {run_dir} has only {free / 2**20:.0f} MiB free; checkpoints need "
                          f"at least {min_free / 2**20:.0f} MiB. Free space or choose another --out.")


def resume_scratch(run_dir: Path) -> Path:
    """A fresh scratch directory in `run_dir` for a resume to prepare its data into (stale ones removed)."""
    for stale in run_dir.glob(".tmp-resume-*"):
        shutil.rmtree(stale, ignore_errors=True)
    scratch = run_dir / f".tmp-resume-{os.getpid()}"
    scratch.mkdir()
    return scratch


class SaveConfigOnStart(Callback):
    """Write the resumed run's config (with any accepted --set changes) once `fit` has accepted the resume,
    so that a later `--resume` continues with these values instead of silently reverting them."""

    def __init__(self, cfg: C.Config, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir

    def on_fit_start(self, state) -> None:
        if not distributed.current().is_main:
            return
        tmp = self.run_dir / f".tmp-{CONFIG_FILE}-{os.getpid()}"
        with_absolute_paths(self.cfg).save(tmp)
        os.replace(tmp, self.run_dir / CONFIG_FILE)  # atomic: a kill leaves the old or the new config
        # what described the run before this resume (e.g. a NaN stop) no longer does; the end rewrites them
        for stale in ("summary.json", "findings.json", "checklist.json", TEST_SAMPLES_FILE):
            (self.run_dir / stale).unlink(missing_ok=True)
