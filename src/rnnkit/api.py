"""The public functions behind every CLI command: `train`, `evaluate`, `predict`.

Each reads or writes the run directory (see DESIGN.md): config.yaml, metrics.jsonl,
summary.json, checkpoints/, vocab/labels/standardizer, splits.json, rejects.jsonl.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.doctor.preflight import preflight
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.rundir import Claims
from rnnkit.tasks import get_task
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed
from rnnkit.training.callbacks import Callback
from rnnkit.training.evaluation import evaluate as evaluate_dataset
from rnnkit.training.precision import resolve_device, resolve_precision
from rnnkit.training.setup import fit_from_config

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


def _check_saved_paths(cfg: C.Config, run_dir: Path, overrides: list[str] | None) -> None:
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


def check_writable(run_dir: Path) -> None:
    """Fail before training when the run directory cannot be written or the disk is nearly full."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"x" * 4096)
        os.fsync(os.open(probe, os.O_RDONLY))
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output directory {run_dir} is not writable ({exc.strerror}); choose another --out "
                          "or fix its permissions.") from None
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(f"output directory {run_dir} has only {free / 2**20:.0f} MiB free; checkpoints need "
                          f"at least {MIN_FREE_BYTES / 2**20:.0f} MiB. Free space or choose another --out.")


MAX_REPAIRS = 2  # train.nonfinite=repair: at most this many automatic repairs with a lower learning rate


def train(cfg: C.Config | None = None, out: str | Path | None = None, *, resume: str | Path | None = None,
          overrides: list[str] | None = None, callbacks=()) -> dict:
    """Train a model and return the summary (also written to OUT/summary.json).

    The doctor then diagnoses the run (OUT/findings.json, OUT/checklist.json), also when a NaN/Inf
    stops it. With `train.nonfinite=repair`, a NaN/Inf stop is repaired automatically with the
    doctor's repair (a 10x lower learning rate): the run continues from its last valid checkpoint,
    or starts again when the NaN came before the first one; at most `MAX_REPAIRS` times, each
    logged in metrics.jsonl as a "repair" event.

    Args:
        cfg: the resolved config (ignored when resuming: the run's saved config is used).
        out: run directory; a new one under runs/ when None.
        resume: a run directory to continue from its latest valid checkpoint.
        overrides: key=value changes applied on top of the saved config when resuming.

    Under torchrun (WORLD_SIZE > 1) every process calls this alike: the process group is created here
    (gloo on CPU, nccl on CUDA) and destroyed at the end, also on errors; rank 0 alone writes the run
    directory and runs the doctor, and every rank returns the same summary. See docs/distributed.md.
    """
    try:
        with Claims() as claims:
            return _train(cfg, out, resume=resume, overrides=overrides, callbacks=callbacks, claims=claims)
    finally:
        distributed.shutdown()


def _train(cfg, out, *, resume, overrides, callbacks, claims: Claims) -> dict:
    from rnnkit.doctor import diagnose, summary_line
    from rnnkit.errors import TrainingError

    placed: list[Path] = []
    history: list[dict] = []
    while True:
        try:
            summary = _train_once(cfg, out, resume=resume, overrides=overrides, placed=placed, claims=claims,
                                  callbacks=[*callbacks, _LogRepairs(placed[0], history)] if history else callbacks)
            if summary.get("already_finished"):
                return summary  # nothing was done, so nothing to diagnose again (its doctor's files stay)
            break
        except TrainingError:
            # a TrainingError reaches every rank at the same step (the loop agrees on it), so all are here
            if not placed:
                raise
            run_dir = placed[0]
            dist = distributed.current()
            repair_event = dist.main_only(_repair_decision, run_dir, history)
            if repair_event is None:
                raise
            history.append(repair_event)
            saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
            cfg, out, resume, overrides = _repair_plan(run_dir, saved, repair_event["mode"], repair_event["set"])
    run_dir = placed[0]

    def doctor() -> tuple[list[str], str]:
        diag = diagnose(run_dir)
        return diag.codes, summary_line(diag)

    # in the returned summary only (the files are findings.json, checklist.json)
    summary["findings"], summary["doctor"] = distributed.current().main_only(doctor)
    return summary


def _repair_decision(run_dir: Path, history: list[dict]) -> dict | None:
    """After a NaN/Inf stop: the doctor's repair event to apply next (announced on stderr), or None
    (with the doctor's line printed) when the run is not to be repaired."""
    from rnnkit.doctor import diagnose, summary_line

    diag = diagnose(run_dir)
    saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
    finding = next((f for f in diag.findings if f.code == "nonfinite" and f.repair), None)
    if saved.train.nonfinite != "repair" or finding is None or len(history) >= MAX_REPAIRS:
        print(f"rnnkit: {summary_line(diag)}", file=sys.stderr, flush=True)
        return None
    mode, changes = finding.repair["mode"], finding.repair["set"]
    event = {"event": "repair", "attempt": len(history) + 1, "mode": mode, "set": changes,
             "finding": "nonfinite", "evidence": finding.evidence}
    print(f"rnnkit: repair {len(history) + 1}/{MAX_REPAIRS}: non-finite {finding.evidence.get('what')} at step "
          f"{finding.evidence.get('step')}; "
          f"{'continuing from the last valid checkpoint' if mode == 'resume' else 'starting again'} with "
          f"{' '.join(changes)}", file=sys.stderr, flush=True)
    return event


def _repair_plan(run_dir: Path, saved: C.Config, mode: str, changes: list[str]):
    """(cfg, out, resume, overrides) for `_train_once` that apply a repair to the run in `run_dir`."""
    if mode == "resume":
        return None, None, run_dir, list(changes)
    # none valid was written (the repair's premise); every rank waits for the removal
    distributed.current().main_only(shutil.rmtree, run_dir / "checkpoints", ignore_errors=True)
    return C.resolve(None, list(changes), base=saved), run_dir, None, None


def repair(run_dir: str | Path) -> dict | None:
    """Apply the doctor's safe repair to a run (`rnnkit diagnose --repair`); None when it has none."""
    from rnnkit.doctor import diagnose

    run_dir = Path(run_dir)
    found = [f for f in diagnose(run_dir).findings if f.repair]
    if not found:
        return None
    fix = found[0]
    saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
    event = {"event": "repair", "attempt": 1, "mode": fix.repair["mode"], "set": fix.repair["set"],
             "finding": fix.code, "evidence": fix.evidence, "by": "rnnkit diagnose --repair"}
    cfg, out, resume, overrides = _repair_plan(run_dir, saved, fix.repair["mode"], fix.repair["set"])
    return train(cfg, out, resume=resume, overrides=overrides, callbacks=[_LogRepairs(run_dir, [event])])


class _LogRepairs(Callback):
    """Write the repair events into metrics.jsonl when the repaired attempt starts (a restart begins a
    new log; a resume keeps the earlier step-less events), each once."""

    def __init__(self, run_dir: Path, events: list[dict]):
        self.run_dir, self.events = Path(run_dir), events

    def on_fit_start(self, state) -> None:
        from rnnkit.doctor.evidence import load_evidence

        if not distributed.current().is_main:
            return
        log = self.run_dir / "metrics.jsonl"
        logged = {(e.get("attempt"), tuple(e.get("set", []))) for e in load_evidence(self.run_dir).events
                  if e.get("event") == "repair"}
        with open(log, "a") as fh:
            for e in self.events:
                if (e["attempt"], tuple(e["set"])) not in logged:
                    fh.write(json.dumps(e) + "\n")


def _train_once(cfg: C.Config | None, out: str | Path | None, *, resume: str | Path | None,
                overrides: list[str] | None, callbacks, placed: list[Path], claims: Claims) -> dict:
    """One `fit` (new or resumed); appends the run directory to `placed` once it is known to hold a run.

    Under torchrun every rank prepares the data (deterministic, so identical everywhere) but only rank 0
    writes the run directory; a failure on any rank stops every rank (`Dist.everywhere`, `main_only`).
    Rank 0 claims the directory (`rnnkit.rundir`) before anything is read: a second process on it stops."""
    if resume is not None:
        run_dir = Path(resume)
        saved = run_dir / CONFIG_FILE
        if not saved.exists():
            raise CheckpointError(f"cannot resume {run_dir}: {CONFIG_FILE} not found; is this a run directory?")
        cfg = C.resolve(None, overrides, base=C.from_dict(C.load_yaml(saved)))
        _check_saved_paths(cfg, run_dir, overrides)
    else:
        cfg = cfg or C.Config()
        run_dir = Path(out) if out is not None else default_run_dir(cfg)
    dist = distributed.init_from_env(cfg.train.device)  # torchrun: the process group; otherwise nothing
    run_dir = dist.broadcast_object(run_dir)  # a default run directory is named by the time: rank 0's

    def claim() -> None:
        created = not run_dir.exists()
        check_writable(run_dir)
        claims.claim(run_dir, created=created)
        if resume is None and not placed and holds_run(run_dir):
            raise ConfigError(f"{run_dir} already holds a run; continue it with `rnnkit train --resume {run_dir}` "
                              "or choose another --out.")

    dist.main_only(claim)
    task = get_task(cfg.task)
    show = cfg.train.progress != "none" and dist.is_main
    if resume is None:
        def prepare():
            data = task.prepare(cfg, run_dir if dist.is_main else None)  # every data error surfaces here
            if dist.is_main:
                with_absolute_paths(cfg).save(run_dir / CONFIG_FILE)
            return data

        data = dist.everywhere(prepare)
        placed.append(run_dir)
        if show:
            for line in describe_run(cfg, data.report, run_dir, dist):
                print(f"rnnkit: {line}", file=sys.stderr, flush=True)
        return fit_from_config(cfg, data, task, run_dir, callbacks=callbacks, preflight=preflight)
    # A resume must not touch the run's vocabulary, splits or config before `fit` has accepted it (a
    # refused resume with other data would otherwise leave a vocabulary that no longer matches the
    # weights): prepare into a scratch directory, and save the new config once fit starts.
    def make_scratch() -> Path:
        for stale in run_dir.glob(".tmp-resume-*"):
            shutil.rmtree(stale, ignore_errors=True)
        scratch = run_dir / f".tmp-resume-{os.getpid()}"
        scratch.mkdir()
        return scratch

    scratch = dist.main_only(make_scratch)
    if not placed:
        placed.append(run_dir)
    try:
        data = dist.everywhere(task.prepare, cfg, scratch if dist.is_main else None)
        if data.report.get("rejects_file"):  # the run's own rejects file holds the same rows
            data.report["rejects_file"] = str(run_dir / Path(data.report["rejects_file"]).name)
        if show:
            for line in describe_run(cfg, data.report, run_dir, dist):
                print(f"rnnkit: {line}", file=sys.stderr, flush=True)
        return fit_from_config(cfg, data, task, run_dir, resume=True, preflight=preflight,
                               callbacks=[_SaveConfigOnStart(cfg, run_dir), *callbacks])
    finally:
        if dist.is_main:
            shutil.rmtree(scratch, ignore_errors=True)


class _SaveConfigOnStart(Callback):
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
        for stale in ("summary.json", "findings.json", "checklist.json"):
            (self.run_dir / stale).unlink(missing_ok=True)


def describe_run(cfg: C.Config, report: dict, run_dir: Path,
                 dist: distributed.Dist = distributed.SINGLE) -> list[str]:
    """What the user should know before the first step: data sizes, skipped and truncated rows, the model
    (and, under torchrun, the processes and what a batch means there)."""
    sizes = ", ".join(f"{k} {v}" for k, v in report.get("sizes", {}).items())
    lines = [f"run directory {run_dir} (resolved config in {run_dir / CONFIG_FILE})",
             f"data: {sizes}" + (f"; {report['num_classes']} {get_task(cfg.task).label_noun}"
                                 if report.get("num_classes") else "")
             + (f"; vocabulary {report['vocab_size']}" if "vocab_size" in report else "")]
    if report.get("rejected"):
        lines.append(f"skipped {report['rejected']} bad rows (--bad-rows skip); each is listed with its problems "
                     f"in {report.get('rejects_file')}")
    truncated = {k: v for k, v in report.get("truncated", {}).items() if v}
    if truncated:
        lines.append(f"truncated to data.max_length={cfg.data.max_length} ({cfg.data.truncate_keep} kept): "
                     + ", ".join(f"{v} {k} rows" for k, v in truncated.items()))
    if report.get("constant_channels"):
        lines.append(f"constant input channels {report['constant_channels']} carry no information")
    m, o = cfg.model, cfg.optim
    lines.append(f"model: {m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}{m.cell.upper()} "
                 f"hidden {m.hidden_size}, dropout {m.dropout}, recurrent dropout {m.recurrent_dropout}"
                 + (f", pooling {m.pooling}; " if get_task(cfg.task).uses_pooling else "; ")
                 + f"AdamW lr {o.lr:g}, clip {o.clip_norm}, batch {cfg.data.batch_size}"
                 + (" per process" if dist.enabled else ""))
    if dist.enabled:
        per_step = cfg.data.batch_size * dist.world * o.accumulate
        lines.append(f"distributed: {dist.world} processes ({dist.backend}, DistributedDataParallel); each takes "
                     f"batches of data.batch_size={cfg.data.batch_size}, so an optimizer step averages "
                     f"{per_step} examples ({dist.world} x {cfg.data.batch_size}"
                     + (f" x accumulate {o.accumulate}" if o.accumulate > 1 else "")
                     + "); rank 0 writes the run directory")
    return lines


def load_run(run_dir: str | Path, *, which: str = "best", device: str = "auto"):
    """Config, preprocessing and model (best weights by default) of a finished or running run."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise CheckpointError(f"{run_dir} is not a run directory ({CONFIG_FILE} missing).")
    cfg = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
    task = get_task(cfg.task)
    prep = task.load_prep(run_dir)
    dev = resolve_device(device)
    path = ckpt.read_pointer(run_dir / "checkpoints", which) or ckpt.read_pointer(run_dir / "checkpoints", "last")
    if path is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to load (checkpoints/{which}.json missing).")
    loaded = ckpt.load_checkpoint(path)
    model = task.build_model(cfg, prep)
    model.load_state_dict(loaded.model_state)
    model.to(dev).eval()
    return cfg, prep, task, model, dev


def evaluate(run_dir: str | Path, data: str | Path) -> dict:
    """Score the run's best model on a labelled file; returns loss and metrics."""
    cfg, prep, task, model, dev = load_run(run_dir)
    dataset, _ = task.load_inference(cfg, prep, Path(data), True, None)
    metrics, _ = evaluate_dataset(model, dataset, task, prep, cfg, device=dev, precision=resolve_precision("fp32", dev))
    return {"data": str(data), "rows": len(dataset), **metrics}


def predict(run_dir: str | Path, data: str | Path, output: str | Path, overrides: list[str] | None = None) -> int:
    """Write one prediction per input record to OUTPUT in the task's format; returns the row count.

    Args:
        overrides: key=value changes of inference options (e.g. "seq2seq.beam=5"); the model's
            architecture cannot change here.
    """
    cfg, prep, task, model, dev = load_run(run_dir)
    if overrides:
        new = C.resolve(None, overrides, base=cfg)
        arch = [k for k, _, _ in C.diff(cfg, new) if C.is_architecture_key(k)]
        if arch:
            raise ConfigError(f"predict cannot change the model: {', '.join(arch)}.")
        cfg = new
    dataset, records = task.load_inference(cfg, prep, Path(data), False, None)
    _, preds = evaluate_dataset(model, dataset, task, prep, cfg, device=dev, precision=resolve_precision("fp32", dev))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    return task.write_predictions(out, records, preds, prep, cfg)
