"""Estimators (`fit` / `predict` / `score`, `get_params` / `set_params`) over the run directory, one per family.

They let scikit-learn code (`clone`, `cross_val_score`, `GridSearchCV`, `Pipeline`) and tuners (Optuna)
drive rnnkit without knowing the CLI. Parameters are the config's keys with `__` for the dot
(`model__hidden_size=64`, `optim__lr=3e-3`), as in scikit-learn's nested parameters. Data are files
(any format rnnkit reads) or in-memory sequences.

The classes are built here from the families: a family that declares `Task(estimator=EstimatorSpec(name,
hooks, doc))` gets the public class `name` (its hooks, `rnnkit.tasks._estimating.Hooks`, mixed with the run
machinery below), so adding a family adds its estimator with no edit here. The built-in ones:

* `SequenceClassifier`: X a list of strings / token lists / (T, C) or (T,) arrays, y any 1-D labels (ints,
  strings, ...); `classes_`, `predict_proba`; `score` is accuracy.
* `SequenceRegressor`: the same X, y floats (n,) or an (n, k) array; `score` is R^2.
* `SequenceTagger`: X a list of token lists (or whitespace-separated strings), y a list of tag lists of the
  same lengths; `predict` returns tag lists; `score` is token accuracy.
* `Estimator(task=...)`: any family, with that family's hooks (the same behaviour as its own class); files
  only for a family without an estimator spec (its `predict` returns the prediction file's lines).

X may also be a numeric (n, T) array (n univariate sequences of length T) or (n, T, C) array, or a pandas
DataFrame / Series (duck-typed, pandas is never imported): one column of strings, token lists or arrays,
the column named by the config (`data.text_column`, `data.sequence_column`, the tagger's token column), or
else all-numeric columns read as the (n, T) array. In-memory training data are written into the run
directory (`input/train.jsonl`) so that the run stays what every run is: resumable, reportable and
checkable by the doctor from its directory alone; data to predict make a round trip through a temporary
JSONL file that the readers read (removed after use), so one reader checks every input.

scikit-learn is optional: this module never imports it, except `__sklearn_tags__`, which only
scikit-learn itself calls.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import sys
import tempfile
import uuid
import weakref
from pathlib import Path

import numpy as np

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.tasks import DEFAULT_TASK, available, get_task
from rnnkit.tasks._estimating import Hooks, InputError

# In a fixed `out`: what the estimator found there before it wrote anything and what it wrote, so a
# refit replaces its own run and nothing else; the token tells a stale estimator its run was replaced.
MARK = ".rnnkit-estimator.json"
FITTED = ("run_dir_", "summary_", "_token")  # and the family hooks' `_fitted_names`


@functools.cache
def _not_fitted_class(base: type) -> type:
    return type("NotFittedError", (ConfigError, base), {"__module__": __name__})


def _not_fitted(message: str) -> ConfigError:
    """A ConfigError that is also scikit-learn's NotFittedError when scikit-learn is loaded (never imported here)."""
    base = getattr(sys.modules.get("sklearn.exceptions"), "NotFittedError", None)
    return _not_fitted_class(base)(message) if isinstance(base, type) else ConfigError(message)


def _json_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a config value")


def _to_override(key: str, value) -> str:
    return f"{key.replace('__', '.')}={json.dumps(value, default=_json_value)}"


def _resolve(task: str, params: dict, extra: dict | None = None) -> C.Config:
    for key in params:
        if "__" not in key:
            raise ConfigError(f"estimator parameter {key!r}: use section__key, e.g. optim__lr.")
    # quiet by default, as in a scikit-learn loop: no bar, no per-epoch lines (train__progress to change it)
    quiet = [] if "train__progress" in params else ["train.progress=none"]
    return C.resolve(None, [f"task={task}", *quiet, *(_to_override(k, v) for k, v in params.items()),
                            *(_to_override(k, v) for k, v in (extra or {}).items())])


@contextlib.contextmanager
def _threads(n: int | None):
    """torch's intra-op threads at `train.threads` (when set) for the call; the process's own setting
    is restored afterwards, also after training chose a count itself (`train.threads: null`)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class _RunEstimator(Hooks):
    """What every rnnkit estimator shares: parameters (`section__key`), the run directory it trains into and owns,
    the refit rules, pickling. A family class fixes `task` and says how in-memory X, y become rows of a JSONL file
    and how predictions come back (the `_targets` ... `_score_in_memory` hooks)."""

    task: str = DEFAULT_TASK

    def __init__(self, out: str | Path | None = None, **params):
        self.out = out
        self.params = dict(params)
        self.config()  # validate now: a typo fails at construction, not after loading data

    # -- scikit-learn protocol -------------------------------------------------------------
    def _own_params(self) -> dict:
        """The constructor's arguments that are not config keys."""
        return {"out": self.out}

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments, as given (scikit-learn's `clone` rebuilds the estimator from them)."""
        return {**self._own_params(), **self.params}

    def set_params(self, **params):
        """Change parameters (checked first: a bad one changes nothing); takes effect at the next `fit`."""
        own, new = self._own_params(), dict(self.params)
        for key, value in params.items():
            if key in own:
                own[key] = value
            else:
                new[key] = value
        _resolve(own.get("task", self.task), new)
        for key, value in own.items():
            setattr(self, key, value)
        self.params = new
        return self

    def __repr__(self) -> str:
        shown = {**{k: v for k, v in self._own_params().items() if v != self._shown_default(k)}, **self.params}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @staticmethod
    def _shown_default(key: str):
        return DEFAULT_TASK if key == "task" else None

    def __sklearn_tags__(self):
        try:
            from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
        except ImportError as exc:  # scikit-learn before 1.6 does not ask for tags
            raise ImportError("rnnkit's estimators need scikit-learn >= 1.6 here: pip install 'scikit-learn>=1.6'"
                              ) from exc
        kind = self._kind()
        targets = TargetTags(required=self._in_memory(), multi_output=kind == "regressor")  # y may be (n, k)
        return Tags(estimator_type=kind, target_tags=targets,
                    classifier_tags=ClassifierTags() if kind == "classifier" else None,
                    regressor_tags=RegressorTags() if kind == "regressor" else None,
                    input_tags=self._input_tags(InputTags))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_dir_")

    def _family(self):
        """The task family's hooks (what kind of estimator this is, its headline score)."""
        return get_task(self.task)

    def config(self) -> C.Config:
        """The resolved config these parameters give (raises ConfigError on a bad key or value)."""
        return _resolve(self.task, self.params)

    # -- training and use ------------------------------------------------------------------
    def fit(self, X=None, y=None, *, train=None, val=None, test=None, dataset=None):
        """Train on files (`train=`, `val=`, `test=`), a built-in `dataset=`, or in-memory X, y.

        A fit starts over: the previous fit's run (a temporary one, or this estimator's run in `out`) is
        removed first, and a failed fit leaves the estimator unfitted."""
        cfg = self.config()
        targets = None
        if X is not None:
            if train is not None or dataset is not None:
                raise ConfigError("give either X, y or train=/dataset=, not both.")
            if y is None:
                raise InputError(f"fit(X, y) requires y to be passed, but the target y is None: give the "
                                 f"{self._y_noun}.")
            X = self._sequences(X, cfg)
            targets = self._targets(X, y)
        self._forget()
        if self.out is None:
            run_dir = Path(tempfile.mkdtemp(prefix="rnnkit-"))
            finalizer = weakref.finalize(self, shutil.rmtree, str(run_dir), ignore_errors=True)
            token = None
        else:
            run_dir, finalizer, token = Path(self.out).absolute(), None, uuid.uuid4().hex
            before = self._clear_out(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / MARK).write_text(json.dumps({"token": token, "before": before}))
        try:
            extra = {}
            if targets is not None:
                train = self._write(run_dir / "input" / "train.jsonl", X, targets, cfg)
                extra.update(self._fit_overrides(targets))
            extra.update({k: str(v) for k, v in (("data__train", train), ("data__val", val), ("data__test", test),
                                                 ("data__dataset", dataset)) if v is not None})
            cfg = _resolve(self.task, self.params, extra)
            with _threads(cfg.train.threads):
                summary = api.train(cfg, run_dir)
            fitted = self._fitted_state(targets, run_dir)
        except BaseException:
            if finalizer is not None:
                finalizer()
            raise
        if token is not None:
            wrote = sorted(p.name for p in run_dir.iterdir() if p.name not in before and p.name != MARK)
            (run_dir / MARK).write_text(json.dumps({"token": token, "before": before, "wrote": wrote}))
        self.run_dir_, self.summary_, self._token = run_dir, summary, token
        if finalizer is not None:
            self._finalizer = finalizer
        self.__dict__.update(fitted)
        return self

    def _run_predict(self, X, data, output, parse):
        """api.predict on a file (`data=`) or in-memory X; returns `parse(prediction file)`."""
        self._check_fitted()
        cfg = self.config()
        if data is None:
            X = self._sequences(X, cfg)
        with tempfile.TemporaryDirectory(prefix="rnnkit-pred-") as tmp:
            path = Path(data) if data is not None else self._write(Path(tmp) / "x.jsonl", X, None, cfg)
            out = Path(output) if output is not None else Path(tmp) / self._prediction_file
            with _threads(cfg.train.threads):
                api.predict(self.run_dir_, path, out)
            return parse(out)

    def score(self, X=None, y=None, *, data=None, sample_weight=None) -> float:
        """The headline metric on labelled data, higher is better (the family's `headline_score`: accuracy
        for classification and tagging, R^2 for regression, 1 - WER for generation, -MSE for forecasting).
        For in-memory data it is scikit-learn's metric (accuracy, R^2, token accuracy) computed from `predict`
        (labels or tags unseen in fit count as errors)."""
        self._check_fitted()
        family = self._family()
        if data is None:
            X = self._sequences(X, self.config())
            if y is None:
                raise InputError(f"score(X, y) requires y to be passed, but the target y is None: give the "
                                 f"{self._y_noun}.")
            self._check_length(X, y)
            return self._score_in_memory(X, y, sample_weight)
        if sample_weight is not None:
            raise ConfigError("sample_weight is for in-memory data (score(X, y, sample_weight=...)).")
        if family.headline_score is None:
            raise ConfigError(f"task {self.task} has no headline score for score(); read api.evaluate's "
                              "metrics instead.")
        with _threads(self.config().train.threads):
            metrics = api.evaluate(self.run_dir_, Path(data))
        return family.headline_score(metrics)

    # -- the run directory -----------------------------------------------------------------
    def _forget(self) -> None:
        """Drop the fitted state; a temporary run directory this estimator owns is removed."""
        finalizer = self.__dict__.pop("_finalizer", None)
        if finalizer is not None:
            finalizer()
        for name in (*FITTED, *self._fitted_names):
            self.__dict__.pop(name, None)

    @staticmethod
    def _clear_out(run_dir: Path) -> list[str]:
        """Remove from `run_dir` what an earlier estimator fit wrote there; returns the names left there
        (the user's). A run no estimator wrote is refused, never removed."""
        if not run_dir.exists():
            return []
        if not run_dir.is_dir():
            raise ConfigError(f"out={run_dir} is a file, not a directory.")
        mark = run_dir / MARK
        if mark.exists():
            try:
                info = json.loads(mark.read_text())
                before = [str(n) for n in info["before"]]
                wrote = info.get("wrote")
            except (OSError, ValueError, KeyError, TypeError):
                raise ConfigError(f"{mark} is unreadable; remove {run_dir} or choose another out.") from None
            for p in run_dir.iterdir():  # a fit that stopped early did not record what it wrote: all but before
                if p.name != MARK and (p.name in wrote if wrote is not None else p.name not in before):
                    _remove(p)
            mark.unlink()
            return sorted(p.name for p in run_dir.iterdir())
        ckpts = run_dir / "checkpoints"
        if (run_dir / api.CONFIG_FILE).exists() or (ckpts.is_dir() and any(ckpts.iterdir())):
            raise ConfigError(f"{run_dir} holds an rnnkit run that no Estimator wrote (e.g. from the CLI); an "
                              "Estimator replaces only its own runs: choose another out, or remove that run.")
        return sorted(p.name for p in run_dir.iterdir())

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_dir_"):
            raise _not_fitted("this estimator is not fitted yet; call fit() first.")
        if self._token is not None:
            try:
                token = json.loads((self.run_dir_ / MARK).read_text()).get("token")
            except (OSError, ValueError, AttributeError):
                token = None
            if token != self._token:
                raise ConfigError(f"{self.run_dir_} no longer holds this estimator's fit (another fit with the "
                                  "same out replaced it); refit this one, or give each estimator its own out.")

    def _write(self, path: Path, X: list, targets, cfg: C.Config) -> Path:
        """In-memory data -> JSONL the readers understand (targets: `_targets`' result, or None to predict)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            for i, x in enumerate(X):
                row = self._input_row(x, i, cfg)
                if targets is not None:
                    row.update(self._target_row(targets, i, cfg))
                fh.write(json.dumps(row) + "\n")
        return path

    # -- pickling: a temporary run travels with the estimator ------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        finalizer = state.pop("_finalizer", None)
        if finalizer is not None and finalizer.alive:
            root = self.run_dir_
            state["_run_files"] = {p.relative_to(root).as_posix(): p.read_bytes()
                                   for p in sorted(root.rglob("*")) if p.is_file()}
        return state

    def __setstate__(self, state: dict) -> None:
        files = state.pop("_run_files", None)
        self.__dict__.update(state)
        if files is not None:
            root = Path(tempfile.mkdtemp(prefix="rnnkit-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(root), ignore_errors=True)
            for rel, content in files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(content)
            self.run_dir_ = root


def _family_class(task: str, spec) -> type:
    """The public estimator class of family `task` from its EstimatorSpec: its hooks over the run machinery."""
    return type(spec.name, (spec.hooks, _RunEstimator), {"task": task, "__module__": __name__,
                                                         "__qualname__": spec.name, "__doc__": spec.doc})


class Estimator(_RunEstimator):
    """Train and use one rnnkit model of any family, with that family's estimator hooks.

    Args:
        task: task family (`rnnkit.tasks.available()`; default `DEFAULT_TASK`).
        out, **params: as `SequenceClassifier`.

    `Estimator(task=NAME)` behaves as NAME's own class (`SequenceClassifier`, `SequenceRegressor`,
    `SequenceTagger`, ...): a scikit-learn classifier for a classification family, in-memory X, y where the
    family takes them; a family without estimator hooks takes files, and its `predict` returns the lines of
    the prediction file. Attributes after `fit`: `run_dir_`, `summary_`, and the family's (`classes_`, ...).
    """

    def __init__(self, task: str = DEFAULT_TASK, out: str | Path | None = None, **params):
        self.__class__ = _generic_class(task)
        self.task = task
        super().__init__(out, **params)

    def _own_params(self) -> dict:
        return {"task": self.task, "out": self.out}

    def set_params(self, **params):
        super().set_params(**params)
        self.__class__ = _generic_class(self.task)  # another family's hooks from the next call on
        return self

    def __reduce__(self):
        return (_new_estimator, (self.task,), self.__getstate__())


def _generic_class(task: str) -> type:
    """`Estimator` with family `task`'s hooks mixed in (still named Estimator); `Estimator` itself for a family
    without an estimator spec."""
    spec = get_task(task).estimator
    return Estimator if spec is None else _hooked_estimator(spec.hooks)


@functools.cache
def _hooked_estimator(hooks: type) -> type:
    return type("Estimator", (hooks, Estimator), {"__module__": __name__, "__qualname__": "Estimator",
                                                  "__doc__": Estimator.__doc__})


def _new_estimator(task: str) -> Estimator:
    """An empty Estimator of family `task`, for unpickling (its state comes next, through __setstate__)."""
    return object.__new__(_generic_class(task))


def _family_classes() -> dict[str, type]:
    classes = {}
    for name in available():
        spec = get_task(name).estimator
        if spec is not None:
            classes[spec.name] = _family_class(name, spec)
    return classes


_FAMILY_CLASSES = _family_classes()
globals().update(_FAMILY_CLASSES)  # SequenceClassifier, SequenceRegressor, SequenceTagger, ...
__all__ = ["Estimator", "InputError", *_FAMILY_CLASSES]
