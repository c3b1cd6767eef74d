"""The public functions behind every CLI command: `train`, `evaluate`, `predict`, `load_run`, `repair`.

Each reads or writes the run directory (see DESIGN.md): config.yaml, metrics.jsonl,
summary.json, checkpoints/, vocab/labels/standardizer, splits.json, rejects.jsonl.

The pieces they use live in `rnnkit._api`: the run directory's paths and checks (`rundirs`), the repair
loop (`repairs`), the text printed before training (`console`). `fit_from_config`, `preflight` and
`MIN_FREE_BYTES` are looked up here when a run starts, so a test may replace them on this module.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from pathlib import Path

import torch

from rnnkit import config as C
from rnnkit._api.console import describe_run, print_run
from rnnkit._api.repairs import MAX_REPAIRS, LogRepairs, planned_repair, train_with_repairs
from rnnkit._api.rundirs import (
    CONFIG_FILE,
    MIN_FREE_BYTES,
    PATH_KEYS,
    SaveConfigOnStart,
    check_saved_paths,
    check_writable,
    default_run_dir,
    holds_run,
    resume_scratch,
    with_absolute_paths,
)
from rnnkit.data.chunked import CHUNK_ROWS, stream_predictions
from rnnkit.data.datasets import get_builtin
from rnnkit.doctor.preflight import preflight
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.rundir import Claims
from rnnkit.tasks import get_task
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed, refit
from rnnkit.training.evaluation import evaluate as evaluate_dataset
from rnnkit.training.precision import resolve_device, resolve_precision
from rnnkit.training.setup import fit_from_config


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
            return train_with_repairs(functools.partial(_train_once, claims=claims), cfg, out, resume=resume,
                                      overrides=overrides, callbacks=callbacks)
    finally:
        distributed.shutdown()


def repair(run_dir: str | Path) -> dict | None:
    """Apply the doctor's safe repair to a run (`rnnkit diagnose --repair`); None when it has none."""
    run_dir = Path(run_dir)
    planned = planned_repair(run_dir)
    if planned is None:
        return None
    (cfg, out, resume, overrides), event = planned
    return train(cfg, out, resume=resume, overrides=overrides, callbacks=[LogRepairs(run_dir, [event])])


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
        check_saved_paths(cfg, run_dir, overrides)
    else:
        cfg = cfg or C.Config()
        run_dir = Path(out) if out is not None else default_run_dir(cfg)
    dist = distributed.init_from_env(cfg.train.device)  # torchrun: the process group; otherwise nothing
    run_dir = dist.broadcast_object(run_dir)  # a default run directory is named by the time: rank 0's

    def claim() -> None:
        created = not run_dir.exists()
        check_writable(run_dir, MIN_FREE_BYTES)
        claims.claim(run_dir, created=created)
        if resume is None and not placed and holds_run(run_dir):
            raise ConfigError(f"{run_dir} already holds a run; continue it with `rnnkit train --resume {run_dir}` "
                              "or choose another --out.")

    task = get_task(cfg.task)
    if cfg.model.frontend in ("conv", "patch") and not task.uses_pooling:
        raise ConfigError(f"config key 'model.frontend': {cfg.model.frontend} shortens the sequence before the "
                          f"recurrent layers, which only families that pool the encoder into one vector per "
                          f"sequence can use; task {cfg.task} reads the encoder at every "
                          "step. Use model.frontend auto or none.")
    if cfg.data.long_sequences not in ("auto", *task.long_sequences):
        raise ConfigError(f"config key 'data.long_sequences': {cfg.data.long_sequences} is not available for task "
                          f"{cfg.task}, which takes {', '.join(('auto', *task.long_sequences))}; use "
                          "data.long_sequences auto or truncate.")
    if cfg.data.storage in ("disk", "stream") and not task.disk_storage:
        raise ConfigError(f"config key 'data.storage': {cfg.data.storage} is not available for task {cfg.task}, "
                          "whose data is held in memory; use data.storage memory (disk keeps the token ids of a "
                          "classifier's text rows on disk; stream reads a classifier's Parquet or Arrow IPC file by "
                          "row groups).")
    dist.main_only(claim)
    show = cfg.train.progress != "none" and dist.is_main
    if resume is None:
        def prepare():
            started = time.perf_counter()
            data = task.prepare(cfg, run_dir if dist.is_main else None)  # every data error surfaces here
            # reading, validating, splitting and a family's own search (forecast.auto): not in wall_seconds
            data.report["prepare_seconds"] = round(time.perf_counter() - started, 2)
            if dist.is_main:
                with_absolute_paths(cfg).save(run_dir / CONFIG_FILE)
            return data

        data = dist.everywhere(prepare)
        placed.append(run_dir)
        if show:
            print_run(cfg, data.report, run_dir, dist)
        decision = refit.decide(cfg, data, dist)  # a refit that cannot be done fails before training
        summary = fit_from_config(cfg, data, task, run_dir, callbacks=callbacks,
                                  preflight=functools.partial(preflight, train_set=data.datasets["train"],
                                                              val_set=data.datasets["val"]))
        return refit.finish(cfg, data, task, run_dir, summary, decision, dist=dist)
    # A resume must not touch the run's vocabulary, splits or config before `fit` has accepted it (a
    # refused resume with other data would otherwise leave a vocabulary that no longer matches the
    # weights): prepare into a scratch directory, and save the new config once fit starts.
    scratch = dist.main_only(resume_scratch, run_dir)
    if not placed:
        placed.append(run_dir)
    try:
        data = dist.everywhere(task.prepare, cfg, scratch if dist.is_main else None)
        if data.report.get("rejects_file"):  # the run's own rejects file holds the same rows
            data.report["rejects_file"] = str(run_dir / Path(data.report["rejects_file"]).name)
        if show:
            print_run(cfg, data.report, run_dir, dist)
        decision = refit.decide(cfg, data, dist)
        # the first model is resumed (a refit model named by best.json steps aside until `refit.finish`)
        with refit.first_pointer_restored(run_dir) if dist.is_main else contextlib.nullcontext():
            summary = fit_from_config(cfg, data, task, run_dir, resume=True, preflight=preflight,
                                      callbacks=[SaveConfigOnStart(cfg, run_dir), *callbacks])
        return refit.finish(cfg, data, task, run_dir, summary, decision, dist=dist)
    finally:
        if dist.is_main:
            shutil.rmtree(scratch, ignore_errors=True)


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


def evaluate(run_dir: str | Path, data: str | Path, *, bad_rows: str | None = None) -> dict:
    """Score the run's best model on a labelled file; returns loss and metrics.

    Args:
        bad_rows: "error" or "skip" instead of the run's `data.bad_rows`.
    """
    cfg, prep, task, model, dev = load_run(run_dir)
    if bad_rows is not None:
        cfg = C.resolve(None, [f"data.bad_rows={bad_rows}"], base=cfg)
    dataset, _ = task.load_inference(cfg, prep, Path(data), True, None)
    metrics, _ = evaluate_dataset(model, dataset, task, prep, cfg, device=dev, precision=resolve_precision("fp32", dev))
    if task.file_baselines is not None and len(dataset):  # the simple rules on the same rows, to hold the model against
        metrics["baselines"] = task.file_baselines(dataset, prep, cfg)
    return {"data": str(data), "rows": len(dataset), **metrics}


def predict(run_dir: str | Path, data: str | Path, output: str | Path, overrides: list[str] | None = None, *,
            chunk_rows: int = CHUNK_ROWS, progress: bool | None = None) -> int:
    """Write one prediction per input record to OUTPUT in the task's format; returns the row count.

    A CSV, TSV, JSONL, Parquet or Arrow IPC file whose rows are predicted one by one (not long format, not a
    forecast) is read, predicted and written `chunk_rows` rows at a time, so memory does not grow with the file
    (`rnnkit.data.chunked`); OUTPUT appears when every row is predicted.

    Args:
        overrides: key=value changes of inference options (e.g. "seq2seq.beam=5"); the model's
            architecture cannot change here.
        chunk_rows: rows per chunk.
        progress: a progress bar on stderr; None: when stderr is a terminal.
    """
    cfg, prep, task, model, dev = load_run(run_dir)
    if overrides:
        new = C.resolve(None, overrides, base=cfg)
        arch = [k for k, _, _ in C.diff(cfg, new) if C.is_architecture_key(k)]
        if arch:
            raise ConfigError(f"predict cannot change the model: {', '.join(arch)}.")
        cfg = new
    precision = resolve_precision("fp32", dev)

    def predict_file() -> tuple[list, list]:  # the whole file, or under `chunkscope.serving` one chunk of it
        dataset, records = task.load_inference(cfg, prep, Path(data), False, None)
        if len(dataset) == 0:  # a chunk whose rows were all skipped as bad
            return records, []
        with torch.inference_mode():
            _, preds = evaluate_dataset(model, dataset, task, prep, cfg, device=dev, precision=precision)
        return records, preds

    fmt = cfg.data.format
    if cfg.data.dataset:
        fmt = get_builtin(cfg.data.dataset).reader_options.get("format", fmt)

    def write(path: Path, records: list, preds: list) -> int:
        return task.write_predictions(path, records, preds, prep, cfg)

    return stream_predictions(data, output, predict=predict_file, write=write,
                              max_bad_fraction=cfg.data.max_bad_fraction, fmt=fmt, delimiter=cfg.data.delimiter,
                              in_chunks=task.rows_independent, chunk_rows=chunk_rows, progress=progress)


__all__ = ["CONFIG_FILE", "MAX_REPAIRS", "MIN_FREE_BYTES", "PATH_KEYS", "check_writable", "default_run_dir",
           "describe_run", "evaluate", "holds_run", "load_run", "predict", "repair", "train", "with_absolute_paths"]
