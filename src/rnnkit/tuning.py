"""Hyperparameter search with Optuna: `rnnkit tune`, on one machine or many sharing one storage.

    tune(cfg, out, trials=..., storage=..., study=..., space=...) -> dict (also OUT/tune.json)

Each trial is an ordinary run (`rnnkit.api.train`) in OUT/trials/NNNN with the trial's values set
on top of the base config; its validation metric per epoch is reported to Optuna, whose pruner
stops unpromising trials early (median rule). The objective is the best validation value of the
run (after its best weights are restored), `--metric loss` by default.

Several machines: start `rnnkit tune` on each with the same `--storage` and `--study`; Optuna
hands every worker different trials. Storage: an SQLAlchemy URL (`postgresql://user@host/db`,
`mysql://...`, `sqlite:///tune.db`) or a file path ending in `.log` (Optuna's journal file, for
workers on one machine or a shared file system). Without `--storage`, OUT/study.log.

Optuna is an optional extra (`pip install 'rnnkit[tune]'`), imported only here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rnnkit import config as C
from rnnkit.errors import ConfigError, MissingExtra, TrainingError
from rnnkit.training.callbacks import Callback
from rnnkit.training.checkpoint import write_json_atomic

INSTALL_HINT = "pip install 'rnnkit[tune]'"
TUNE_FILE = "tune.json"
TRIAL_FILE = "trial.json"
# The guide's ranges (config.GUIDE_RANGES) as the default search space.
DEFAULT_SPACE: dict[str, Any] = {
    "optim.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "model.hidden_size": [64, 128, 256],
    "model.num_layers": [1, 2],
    "model.dropout": {"low": 0.0, "high": 0.5},
    "data.batch_size": [16, 32, 64],
}
_LOWER_IS_BETTER = {"loss", "wer", "per", "mse", "mae", "rmse", "mase", "smape"}


def _optuna():
    try:
        import optuna
    except ImportError:
        raise MissingExtra(f"`rnnkit tune` searches with Optuna, which is not installed; {INSTALL_HINT}") from None
    return optuna


def load_space(path: str | Path | None) -> dict[str, Any]:
    """The search space: DEFAULT_SPACE, or a YAML file mapping config keys to a list of choices or to
    {low, high, log?, step?} (integers when low and high are integers and log is not set).

    Raises:
        ConfigError: an unknown key (with the nearest valid one), or a malformed range, naming the file.
    """
    if path is None:
        return dict(DEFAULT_SPACE)
    raw = C.load_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: a search space maps config keys to choices or ranges, e.g. "
                          "'optim.lr: {low: 1e-4, high: 1e-2, log: true}'.")
    nested = all(isinstance(v, dict) and "." not in k and "low" not in v for k, v in raw.items())
    space = {f"{section}.{k}": v for section, keys in raw.items() for k, v in keys.items()} if nested else raw
    for key, spec in space.items():
        where = f"{path}: key {key!r}"
        if isinstance(spec, list):
            if not spec:
                raise ConfigError(f"{where}: an empty list of choices; give at least one value.")
            sample = spec[0]
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec) and set(spec) <= {"low", "high", "log", "step"}:
            if not spec["low"] < spec["high"]:
                raise ConfigError(f"{where}: low ({spec['low']}) must be below high ({spec['high']}).")
            sample = spec["low"]
        else:
            raise ConfigError(f"{where}: expected a list of choices or {{low, high, log?, step?}}, got "
                              f"{spec!r}.")
        C.resolve(None, [f"{key}={json.dumps(sample)}"])  # unknown keys and bad values: the config's own errors
    return space


def suggest(trial, space: dict[str, Any]) -> list[str]:
    """The trial's values as `key=value` overrides."""
    out = []
    for key, spec in space.items():
        if isinstance(spec, list):
            value = trial.suggest_categorical(key, spec)
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log") \
                and not isinstance(spec.get("step", 1), float):
            value = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1))
        else:
            value = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")),
                                        step=spec.get("step"))
        out.append(f"{key}={json.dumps(value)}")
    return out


def make_storage(storage: str | None, out: Path):
    """An Optuna storage: a URL as is; a `.log` path (or none: OUT/study.log) as a journal file."""
    optuna = _optuna()
    if storage is None or storage.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(storage) if storage else out / "study.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return storage


class _Report(Callback):
    """Report each epoch's validation value to Optuna; stop the run when the pruner says so."""

    def __init__(self, trial, key: str):
        self.trial, self.key = trial, key

    def on_epoch_end(self, state, record: dict) -> None:
        value = record.get(self.key)
        if isinstance(value, (int, float)):
            self.trial.report(float(value), step=int(record["epoch"]))
            if self.trial.should_prune():
                raise _optuna().TrialPruned(f"pruned after epoch {record['epoch']} ({self.key} {value:.4g})")


def describe(study, out: Path, metric: str, base: list[str]) -> dict:
    """tune.json's content: every trial, and the best with the command that trains it again."""
    optuna = _optuna()
    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "run_dir": t.user_attrs.get("run_dir"), "epochs": len(t.intermediate_values)}
              for t in study.trials]
    result: dict[str, Any] = {"study": study.study_name, "metric": f"val {metric}",
                              "direction": study.direction.name.lower(), "base": base, "trials": trials,
                              "counts": {s.name: sum(t["state"] == s.name for t in trials)
                                         for s in optuna.trial.TrialState}}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = study.best_trial
        sets = [*base, *best.user_attrs.get("overrides", [])]
        result["best"] = {"number": best.number, "value": best.value, "params": best.params,
                          "run_dir": best.user_attrs.get("run_dir"),
                          "command": "rnnkit train " + " ".join(f"--set {s}" for s in sets)}
    return result


def tune(base: list[str], config_file: str | None, out: str | Path, *, trials: int, timeout: float | None = None,
         storage: str | None = None, study_name: str | None = None, space: dict[str, Any] | None = None,
         metric: str = "loss", prune: bool = True, seed: int | None = None,
         enqueue: list[dict] | None = None) -> dict:
    """Run `trials` trials (this worker's share) of a study and return tune.json's content.

    Args:
        base: `key=value` overrides every trial starts from (data, task...); config_file likewise.
        out: the tune directory: tune.json, trials/NNNN run directories, study.log by default.
        metric: "loss" or one of the task's validation metrics (accuracy, wer, mse...).
        enqueue: settings ({key: value} over the space's keys) to try first, e.g. known good ones.

    Raises:
        ConfigError / DataError: before the first trial's training (a bad space, metric or data).
        MissingExtra: Optuna is not installed.
    """
    optuna = _optuna()
    from rnnkit import api
    from rnnkit.tasks import get_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    probe = C.resolve(config_file, base)
    names = ("loss", *get_task(probe.task).metric_names)
    if metric not in names:
        raise ConfigError(f"--metric {metric!r} is not a validation metric of task {probe.task!r}; "
                          f"choose one of {', '.join(names)}.")
    space = dict(DEFAULT_SPACE if space is None else space)
    direction = "minimize" if metric in _LOWER_IS_BETTER else "maximize"
    sampler = optuna.samplers.TPESampler(seed=probe.train.seed if seed is None else seed, n_startup_trials=5)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3) if prune else \
        optuna.pruners.NopPruner()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=make_storage(storage, out), study_name=study_name or out.name,
                                direction=direction, sampler=sampler, pruner=pruner, load_if_exists=True)
    for params in enqueue or ():
        study.enqueue_trial(params, skip_if_exists=True)
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study {study.study_name!r} in this storage {study.direction.name.lower()}s; --metric "
                          f"{metric} needs {direction}. Use another --study.")

    def objective(trial) -> float:
        overrides = [*base, *suggest(trial, space), "train.progress=none"]
        run_dir = out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", overrides[len(base):-1])
        cfg = C.resolve(config_file, overrides)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / TRIAL_FILE, {"study": study.study_name, "number": trial.number,
                                           "params": trial.params, "tune_dir": str(out)})
        summary = api.train(cfg, run_dir, callbacks=[_Report(trial, f"val_{metric}")])
        return float(summary["metrics"]["val"][metric])

    def progress(study, trial) -> None:
        write_json_atomic(out / TUNE_FILE, describe(study, out, metric, base))
        last = trial.value if trial.value is not None else (
            trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None)
        shown = "-" if last is None else f"{last:.4g}"
        print(f"trial {trial.number}: {trial.state.name.lower()}, val {metric} {shown}"
              f"{' (last epoch reported)' if trial.state.name != 'COMPLETE' else ''} {trial.params}",
              file=sys.stderr, flush=True)

    study.optimize(objective, n_trials=trials, timeout=timeout, catch=(TrainingError,), callbacks=[progress])
    result = describe(study, out, metric, base)
    write_json_atomic(out / TUNE_FILE, result)
    return result


__all__ = ["DEFAULT_SPACE", "INSTALL_HINT", "TRIAL_FILE", "TUNE_FILE", "describe", "load_space", "make_storage",
           "suggest", "tune"]
