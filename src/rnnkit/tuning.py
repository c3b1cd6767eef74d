"""Hyperparameter search with Optuna: `rnnkit tune`, on one machine or many sharing one storage.

    tune(cfg, out, trials=..., storage=..., study=..., space=...) -> dict (also OUT/tune.json)

Each trial is an ordinary run (`rnnkit.api.train`) in OUT/trials/NNNN with the trial's values set
on top of the base config; its validation metric per epoch is reported to Optuna, whose pruner
stops unpromising trials early (median rule). Before the median rule, the doctor looks at the trial's log
after every epoch (`rnnkit.doctor.live`): a trial whose training loss diverged, or that a NaN/Inf stopped, is
pruned at once; tune.json records who pruned each trial and why (`pruned`). The objective is the best
validation value of the run (after its best weights are restored), `--metric loss` by default.

Several machines: start `rnnkit tune` on each with the same `--storage` and `--study`; Optuna
hands every worker different trials. Storage: an SQLAlchemy URL (`postgresql://user@host/db`,
`mysql://...`, `sqlite:///tune.db`) or a file path ending in `.log` (Optuna's journal file, for
workers on one machine or a shared file system). Without `--storage`, OUT/study.log. `postgresql://` goes
through psycopg (3, from `rnnkit[tune]`) unless psycopg2 is installed; tests/test_tune_postgres.py runs
workers on a real server (`.ci/postgres.sh`).

Invariants (issue 8, items 2 and 3):
1. Workers draw different trials: the sampler is unseeded unless `seed` (`--seed`) is given; then it is
   seeded with `seed` + the number of trials the study already holds, so a fresh single-worker search is
   reproducible and a restart does not draw its predecessor's trials again. Workers started together
   with one `--seed` on one study would draw alike: give each its own seed, or none.
2. A trial whose worker died is FAIL and its parameters run again as a new trial (at most `MAX_RETRIES`
   times): every trial records its worker (host, boot, pid namespace, pid, process start time); before each
   trial a worker fails the RUNNING trials whose worker on *this* machine is gone (`kill -9` included) and
   enqueues them again. A worker stopped by SIGINT/SIGTERM enqueues its own trial again. On an RDB storage
   (SQLite, PostgreSQL, MySQL) Optuna's heartbeat also catches workers that died on *other* machines, after
   `HEARTBEAT[1]` seconds of silence. A journal file has no heartbeat: a trial of a worker that died on
   another machine stays RUNNING until a worker on that machine starts a trial.
3. No two processes train into one directory: a trial claims OUT/trials/NNNN with an exclusive mkdir (NNNN-1,
   ... when a leftover directory holds the name); a retry is a new trial, so it gets a fresh directory.
4. OUT/tune.json is written under an exclusive lock (OUT/.tune.lock) from a snapshot of the storage taken
   inside it, so a later write never holds less than an earlier one; it belongs to one study (another
   study with the same OUT is refused).
5. No two trials train the same settings unless the space is exhausted (issue 14). A finite space (choices,
   integer ranges, float ranges with a step) of at most `EXHAUSTIVE_MAX` settings is searched exhaustively in
   random order (Optuna's `BruteForceSampler`), and a worker stops when every setting is tried or running; a
   larger or continuous space uses TPE. Either way a trial whose settings an earlier-numbered live trial
   (running, complete or pruned) already holds is PRUNED before training, at its start and again after its
   first epoch (two workers that drew alike at the same moment: the later number gives way), with
   `pruned: {"by": "duplicate", "of": N}` in tune.json, and does not count toward `--trials`.

Optuna is an optional extra (`pip install 'rnnkit[tune]'`), imported only here.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from rnnkit import config as C
from rnnkit.errors import ConfigError, MissingExtra, TrainingError
from rnnkit.training.callbacks import Callback
from rnnkit.training.checkpoint import write_json_atomic
from rnnkit.training.schedules import LOWER_IS_BETTER

INSTALL_HINT = "pip install 'rnnkit[tune]'"
TUNE_FILE = "tune.json"
TRIAL_FILE = "trial.json"
LOCK_FILE = ".tune.lock"
MAX_RETRIES = 2  # a trial whose worker died runs again at most this many times (a trial that kills its worker)
HEARTBEAT = (30, 300)  # RDB storages: seconds between heartbeats, and of silence before a trial counts as dead
EXHAUSTIVE_MAX = 1024  # a finite space of at most this many settings is searched exhaustively (invariant 5)
SCHEMA_ATTEMPTS = 5  # RDB storages: tries at creating Optuna's tables while other workers create them too
# The guide's ranges (config.GUIDE_RANGES) as the default search space.
DEFAULT_SPACE: dict[str, Any] = {
    "optim.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "model.hidden_size": [64, 128, 256],
    "model.num_layers": [1, 2],
    "model.dropout": {"low": 0.0, "high": 0.5},
    "data.batch_size": [16, 32, 64],
}


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


def make_storage(storage: str | None, out: Path, heartbeat: tuple[int, int] = HEARTBEAT):
    """An Optuna storage: a `.log` path (or none: OUT/study.log) as a journal file; an SQLAlchemy URL as an
    RDB storage with a heartbeat every `heartbeat[0]` s, whose trials silent for `heartbeat[1]` s are FAIL
    and enqueued again (any worker checks, before each trial). `postgresql://` uses psycopg (3) when psycopg2
    is not installed (`_with_driver`). Workers that start together on an empty database race to create
    Optuna's tables; a loser tries again (`SCHEMA_ATTEMPTS` times), the tables being there by then.

    Raises:
        ConfigError: not a database URL, or the database cannot be opened (the password is not shown).
        MissingExtra: the URL's database driver is not installed.
    """
    optuna = _optuna()
    if storage is None or storage.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(storage) if storage else out / "study.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    import sqlalchemy.exc

    shown = _shown_url(storage)
    url = _with_driver(storage)
    # Optuna >= 4.9 names the callback argument heartbeat_stale_trial_callback (failed_trial_callback before)
    key = "heartbeat_stale_trial_callback" if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback") \
        else "failed_trial_callback"
    attempt = 0
    while True:
        attempt += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat[0], grace_period=heartbeat[1],
                                                  **{key: _retry_callback()})
        except ImportError as exc:
            raise MissingExtra(f"--storage {shown}: the database driver is not installed ({exc.__cause__ or exc}); "
                               f"install it (postgresql://: {INSTALL_HINT}, which brings psycopg; mysql://: pip "
                               "install pymysql and use mysql+pymysql://).") from None
        except sqlalchemy.exc.ArgumentError:
            raise ConfigError(f"--storage {shown} is not a database URL; give postgresql://user@host/db, "
                              "mysql+pymysql://user@host/db, sqlite:///tune.db or a journal file FILE.log.") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # Workers started together on an empty database all create Optuna's tables; on PostgreSQL the
            # losers of that race get a duplicate key (pg_type) or "already exists": the tables are there now
            raced = isinstance(exc, sqlalchemy.exc.IntegrityError) or (
                isinstance(exc, sqlalchemy.exc.ProgrammingError) and "already exists" in str(exc.orig))
            if not raced:
                raise ConfigError(f"cannot open --storage {shown}: {getattr(exc, 'orig', None) or exc}; check the "
                                  "host, database, user and password.") from None
            if attempt == SCHEMA_ATTEMPTS:
                raise ConfigError(f"cannot create Optuna's tables in --storage {shown}: other workers kept "
                                  "creating them at the same time; start this worker again.") from None
            time.sleep(0.2 * attempt)


def _with_driver(url: str) -> str:
    """`postgresql://` (and `postgres://`) with the PostgreSQL driver that is installed: SQLAlchemy picks
    psycopg2 for a URL without a driver, while `rnnkit[tune]` installs psycopg (3); so without psycopg2 and
    with psycopg the URL becomes `postgresql+psycopg://`. Any other URL, or one naming its driver, is kept."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return url if scheme == "postgresql" else f"postgresql://{rest}"  # SQLAlchemy >= 1.4 refuses postgres://


def _shown_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: the caller says so
        return url


def _retry_callback():
    """Optuna's callback that enqueues a failed trial's parameters again (a WAITING trial), `MAX_RETRIES` times."""
    optuna = _optuna()
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(max_retry=MAX_RETRIES)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3... of /proc/PID/stat (state, ppid, ...; index 19 is the start time), or None without /proc."""
    text = _read(f"/proc/{pid}/stat")
    return None if text is None else text[text.rindex(")") + 2:].split()


def _machine() -> dict:
    """What makes a pid meaningful: the host name, its boot, and the pid namespace (containers differ)."""
    here = {"host": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id")}
    with contextlib.suppress(OSError):
        here["pidns"] = os.readlink("/proc/self/ns/pid")
    return here


def _worker(number: int) -> dict:
    """The user attribute `worker` of trial `number`: this process, to be found dead or alive later."""
    stat = _proc_stat(os.getpid())
    return {**_machine(), "pid": os.getpid(), "start": stat[19] if stat else None, "trial": number}


def _worker_gone(worker: dict) -> bool:
    """True when `worker` ran on this machine (same host, boot and pid namespace) and is no longer running
    (no such pid, a zombie, or the pid now belongs to a process started later). False when it lives or
    cannot be judged from here (another machine)."""
    here = _machine()
    if any(worker.get(k) != here.get(k) for k in ("host", "boot", "pidns")) or not isinstance(worker.get("pid"), int):
        return False
    try:
        os.kill(worker["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists (another user's process)
    stat = _proc_stat(worker["pid"])
    if stat is None:
        return False
    return stat[0] in ("Z", "X") or (worker.get("start") is not None and stat[19] != worker["start"])


def fail_dead_trials(study) -> list[int]:
    """Mark FAIL each RUNNING trial whose worker on this machine is gone, and enqueue its parameters again
    (at most `MAX_RETRIES` times per trial). Returns their numbers. Safe with several workers checking at
    once: only the one whose FAIL lands enqueues the retry."""
    optuna = _optuna()
    failed = []
    for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        # `worker` is bound to its trial number: a retry copies the dead trial's attributes until it sets its own
        if not isinstance(worker, dict) or worker.get("trial") != t.number or not _worker_gone(worker):
            continue
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # finished meanwhile, or another worker failed it first
        failed.append(t.number)
        _requeue(study, t, f"its worker (pid {worker['pid']} on {worker['host']}) is gone")
    return failed


def _requeue(study, trial, why: str) -> None:
    tries = len(trial.system_attrs.get("retry_history", [])) + 1
    _retry_callback()(study, trial)
    then = "queued again" if tries <= MAX_RETRIES else f"not queued again: it ran {tries} times"
    print(f"trial {trial.number}: {why}; marked failed, {then}", file=sys.stderr, flush=True)


def _claim_dir(root: Path, number: int) -> Path:
    """A new directory for trial `number`, made by this process alone (mkdir fails when it exists):
    root/NNNN, or NNNN-1, NNNN-2 ... when a leftover directory (e.g. of a removed study) holds that name."""
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = root / (f"{number:04d}" if k == 0 else f"{number:04d}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{root} holds 1000 directories named for trial {number}; clean it up or choose another --out.")


@contextlib.contextmanager
def _locked(out: Path):
    """OUT/.tune.lock, exclusively: one worker at a time reads the study and writes tune.json."""
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def _write_tune(study, out: Path, metric: str, base: list[str]) -> dict:
    with _locked(out):  # the snapshot is taken under the lock: a later write never holds less
        result = describe(study, out, metric, base)
        write_json_atomic(out / TUNE_FILE, result)
    return result


class _Report(Callback):
    """Report each epoch's validation value to Optuna; stop the run when the doctor finds it lost (diverged,
    `rnnkit.doctor.live`) or the pruner says so. Why goes into the trial's user attribute `pruned`."""

    def __init__(self, trial, key: str, run_dir: Path | None = None, cfg=None, study=None):
        self.trial, self.key, self.run_dir, self.cfg = trial, key, run_dir, cfg  # run_dir None: no doctor
        self.study = study  # not None: look again for a duplicate after the first epoch (invariant 5)

    def on_epoch_end(self, state, record: dict) -> None:
        if self.study is not None:
            study, self.study = self.study, None
            _prune_duplicate(study, self.trial)
        value = record.get(self.key)
        if not isinstance(value, (int, float)):
            return
        epoch = int(record["epoch"])
        self.trial.report(float(value), step=epoch)
        if self.run_dir is not None:
            _prune_if_hopeless(self.trial, self.run_dir, epoch, self.cfg)
        if self.trial.should_prune():
            _prune(self.trial, {"by": "median", "epoch": epoch,
                                "reason": f"{self.key} {value:.4g} after epoch {epoch}: worse than the median of "
                                          "the earlier trials at that epoch"})


def _prune_if_hopeless(trial, run_dir: Path, epoch: int | None, cfg=None) -> None:
    """Prune `trial` (raise TrialPruned) when the doctor's live findings on its run say it is lost."""
    from rnnkit.doctor.live import hopeless

    finding = hopeless(run_dir, cfg)
    if finding is not None:
        where = {"epoch": epoch} if epoch is not None else {"step": finding.evidence.get("step")}
        _prune(trial, {"by": "doctor", "code": finding.code, **where, "reason": finding.explanation})


def _prune(trial, why: dict) -> None:
    trial.set_user_attr("pruned", why)
    raise _optuna().TrialPruned(f"pruned by the {why['by']}: {why['reason']}")


def describe(study, out: Path, metric: str, base: list[str]) -> dict:
    """tune.json's content: every trial, and the best with the command that trains it again."""
    optuna = _optuna()
    trials = []
    for t in study.trials:
        entry = {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                 "run_dir": None if t.state == optuna.trial.TrialState.WAITING else t.user_attrs.get("run_dir"),
                 "epochs": len(t.intermediate_values)}
        if t.state == optuna.trial.TrialState.PRUNED and t.user_attrs.get("pruned"):
            entry["pruned"] = t.user_attrs["pruned"]  # by the doctor (which finding) or the median rule, and why
        if t.system_attrs.get("retry_history"):
            entry["retry_of"] = t.system_attrs["retry_history"][-1]  # a dead or interrupted trial run again
        trials.append(entry)
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


def space_size(space: dict[str, Any]) -> int | None:
    """How many distinct settings `space` holds, or None when a range is continuous (a float without a step)."""
    size = 1
    for spec in space.values():
        if isinstance(spec, list):
            size *= len({json.dumps(v, sort_keys=True) for v in spec})
            continue
        low, high, step = spec["low"], spec["high"], spec.get("step")
        integer = isinstance(low, int) and isinstance(high, int) and not spec.get("log") and not isinstance(step, float)
        if integer:
            size *= (high - low) // (step or 1) + 1
        elif step is not None:
            size *= int((float(high) - float(low)) / float(step) + 1e-9) + 1
        else:
            return None
    return size


def _settings(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def duplicate_of(study, trial) -> int | None:
    """The lowest-numbered other live trial (running, complete, pruned, not a duplicate itself) holding
    `trial`'s settings, when its number is below `trial`'s; else None."""
    states = _optuna().trial.TrialState
    mine = _settings(trial.params)
    for t in study.get_trials(deepcopy=False, states=(states.RUNNING, states.COMPLETE, states.PRUNED)):
        if t.number < trial.number and _settings(t.params) == mine and \
                t.user_attrs.get("pruned", {}).get("by") != "duplicate":
            return t.number
    return None


def tried_settings(study) -> int:
    """Distinct settings of the study's live trials (running, complete, pruned), waiting ones included."""
    states = _optuna().trial.TrialState
    return len({_settings(t.params) for t in study.get_trials(
        deepcopy=False, states=(states.RUNNING, states.COMPLETE, states.PRUNED, states.WAITING))
        if t.user_attrs.get("pruned", {}).get("by") != "duplicate"})


def _prune_duplicate(study, trial) -> None:
    first = duplicate_of(study, trial)
    if first is not None:
        _prune(trial, {"by": "duplicate", "of": first,
                       "reason": f"trial {first} already holds these settings ({_settings(trial.params)})"})


def tune(base: list[str], config_file: str | None, out: str | Path, *, trials: int, timeout: float | None = None,
         storage: str | None = None, study_name: str | None = None, space: dict[str, Any] | None = None,
         metric: str = "loss", prune: bool = True, doctor: bool = True, seed: int | None = None,
         enqueue: list[dict] | None = None, heartbeat: tuple[int, int] = HEARTBEAT) -> dict:
    """Run `trials` trials (this worker's share) of a study and return tune.json's content.

    Args:
        base: `key=value` overrides every trial starts from (data, task...); config_file likewise.
        out: the tune directory: tune.json, trials/NNNN run directories, study.log by default.
        metric: "loss" or one of the task's validation metrics (accuracy, wer, mse...).
        prune: stop unpromising trials early: the doctor's live findings (with `doctor`) and the median rule;
            False: every trial runs to its end.
        doctor: with `prune`, a trial the doctor finds lost after an epoch (its training loss diverged) or
            that a NaN/Inf stopped is PRUNED at once (`rnnkit.doctor.live`), the finding's code and explanation
            in tune.json (`pruned`); the median rule judges the others. False: the median rule alone (a NaN/Inf
            trial is then FAIL).
        seed: seeds the sampler (with the number of trials the study holds); None: unseeded, so that every
            worker draws its own trials.
        enqueue: settings ({key: value} over the space's keys) to try first, e.g. known good ones.
        heartbeat: RDB storages: (seconds between heartbeats, seconds of silence before a trial is dead).

    Before each trial, RUNNING trials whose worker on this machine died are FAIL and queued again; they
    run first (see the module's invariants).

    Raises:
        ConfigError / DataError: before the first trial's training (a bad space, metric, data or storage;
            OUT holding another study's results).
        MissingExtra: Optuna is not installed.
    """
    optuna = _optuna()
    from rnnkit import api
    from rnnkit.errors import Interrupted
    from rnnkit.tasks import get_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    probe = C.resolve(config_file, base)
    names = ("loss", *get_task(probe.task).metric_names)
    if metric not in names:
        raise ConfigError(f"--metric {metric!r} is not a validation metric of task {probe.task!r}; "
                          f"choose one of {', '.join(names)}.")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials {trials!r}: give the number of trials for this worker, 1 or more.")
    space = dict(DEFAULT_SPACE if space is None else space)
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3) if prune else \
        optuna.pruners.NopPruner()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name or out.name
    backend = make_storage(storage, out, heartbeat)
    with _locked(out):  # one study per OUT: its tune.json would otherwise flip between the studies
        held = _study_of(out / TUNE_FILE)
        if held not in (None, name):
            raise ConfigError(f"{out} holds the results of study {held!r} ({out / TUNE_FILE}); study {name!r} "
                              f"would overwrite them. Give --study {held} to continue it, or another --out.")
        study = optuna.create_study(storage=backend, study_name=name, direction=direction, pruner=pruner,
                                    load_if_exists=True)
        if study.direction.name.lower() != direction:
            raise ConfigError(f"study {study.study_name!r} in this storage {study.direction.name.lower()}s; "
                              f"--metric {metric} needs {direction}. Use another --study.")
        # unseeded: every worker draws its own trials; seeded: reproducible, and not the trials already drawn
        sampler_seed = None if seed is None else seed + len(study.get_trials(deepcopy=False))
        size = space_size(space)
        exhaustive = size is not None and size <= EXHAUSTIVE_MAX
        study.sampler = optuna.samplers.BruteForceSampler(seed=sampler_seed) if exhaustive else \
            optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=5)
        for params in enqueue or ():
            study.enqueue_trial(params, skip_if_exists=True)
        write_json_atomic(out / TUNE_FILE, describe(study, out, metric, base))
    if exhaustive:
        print(f"tune: the space holds {size} settings: each is tried once, in random order (exhaustive search); "
              "this worker stops when all are tried or running", file=sys.stderr, flush=True)

    live = prune and doctor
    lost: list[int] = []  # trials another worker took for dead (a late heartbeat) while this one ran them

    last: list[int] = []  # the number of the trial this worker ran last

    def objective(trial) -> float:
        last.append(trial.number)
        trial.set_user_attr("worker", _worker(trial.number))  # first: the window before it is a stranded trial
        # a trial is judged on validation, which a refit on train + validation never changes: trials do not refit
        # (the best trial's command below leaves train.refit as the base sets it)
        run_only = ["train.refit=false", "train.progress=none"]
        overrides = [*base, *suggest(trial, space), *run_only]
        _prune_duplicate(study, trial)  # before any directory or training: settings an earlier trial holds
        cfg = C.resolve(config_file, overrides)
        run_dir = _claim_dir(out / "trials", trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", overrides[len(base):-len(run_only)])
        write_json_atomic(run_dir / TRIAL_FILE, {"study": study.study_name, "number": trial.number,
                                                 "params": trial.params, "tune_dir": str(out)})
        try:
            report = _Report(trial, f"val_{metric}", run_dir if live else None, cfg, study)
            summary = api.train(cfg, run_dir, callbacks=[report])
        except TrainingError:
            if live:  # a NaN/Inf stopped it: pruned, the doctor's explanation kept (otherwise FAIL, as before)
                _prune_if_hopeless(trial, run_dir, None, cfg)
            raise
        except (Interrupted, KeyboardInterrupt):
            _requeue(study, study.get_trials()[trial.number], "interrupted")  # the next worker runs it first
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            lost.append(trial.number)
            raise
        if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            lost.append(trial.number)
        return float(summary["metrics"]["val"][metric])

    def progress(study, trial) -> None:
        _write_tune(study, out, metric, base)
        last = trial.value if trial.value is not None else (
            trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None)
        shown = "-" if last is None else f"{last:.4g}"
        why = trial.user_attrs.get("pruned") if trial.state.name == "PRUNED" else None
        by = "" if why is None else f" by the {why['by']}" + (f" ({why['code']})" if "code" in why else "")
        if why is not None and why["by"] == "duplicate":
            by = f" as a duplicate of trial {why['of']} (not counted)"
        print(f"trial {trial.number}: {trial.state.name.lower()}{by}, val {metric} {shown}"
              f"{' (last epoch reported)' if trial.state.name != 'COMPLETE' else ''} {trial.params}",
              file=sys.stderr, flush=True)

    deadline = None if timeout is None else time.monotonic() + timeout
    counted = 0
    while counted < trials:
        if deadline is not None and time.monotonic() >= deadline:
            break
        fail_dead_trials(study)  # RDB storages also fail the trials whose heartbeat stopped (Optuna, in optimize)
        if exhaustive and tried_settings(study) >= size and not _waiting(study):
            print(f"tune: all {size} settings of the space are tried or running; this worker stops after {counted} "
                  f"of its {trials} trial(s)", file=sys.stderr, flush=True)
            break
        last.clear()
        try:
            study.optimize(objective, n_trials=1, catch=(TrainingError,), callbacks=[progress])
        except Exception:
            if not lost:
                raise
            # Optuna cannot record a result for a trial that is already FAIL; its retry runs it again
            print(f"trial {lost.pop()}: another worker marked it failed (its heartbeat was late) and queued it "
                  "again; this worker's result for it is dropped", file=sys.stderr, flush=True)
        counted += not _was_duplicate(study, last[0] if last else None)
    return _write_tune(study, out, metric, base)


def _waiting(study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.WAITING,)))


def _was_duplicate(study, number: int | None) -> bool:
    """Whether trial `number` (this worker's last) gave way as a duplicate."""
    if number is None:
        return False
    return study.get_trials(deepcopy=False)[number].user_attrs.get("pruned", {}).get("by") == "duplicate"


def _study_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("study")
    except (OSError, ValueError, AttributeError):
        return None


__all__ = ["DEFAULT_SPACE", "HEARTBEAT", "INSTALL_HINT", "MAX_RETRIES", "TRIAL_FILE", "TUNE_FILE", "describe",
           "fail_dead_trials", "load_space", "make_storage", "suggest", "tune"]
