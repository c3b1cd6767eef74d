"""Estimators (`fit` / `predict` / `score`, `get_params` / `set_params`) over the run directory, one per family.

They let scikit-learn code (`clone`, `cross_val_score`, `GridSearchCV`, `Pipeline`) and tuners (Optuna)
drive rnnkit without knowing the CLI. Parameters are the config's keys with `__` for the dot
(`model__hidden_size=64`, `optim__lr=3e-3`), as in scikit-learn's nested parameters. Data are files
(any format rnnkit reads) or in-memory sequences:

* `SequenceClassifier` (task classify): X a list of strings / token lists / (T, C) or (T,) arrays, y any
  1-D labels (ints, strings, ...); `classes_`, `predict_proba`; `score` is accuracy.
* `SequenceRegressor` (task regress): the same X, y floats (n,) or an (n, k) array; `score` is R^2.
* `SequenceTagger` (task tag): X a list of token lists (or whitespace-separated strings), y a list of tag
  lists of the same lengths; `predict` returns tag lists; `score` is token accuracy.
* `Estimator(task=...)`: any family; in-memory X, y for the classifier families only (as a
  `SequenceClassifier`), files for the others.

X may also be a numeric (n, T) array (n univariate sequences of length T) or (n, T, C) array, or a pandas
DataFrame / Series (duck-typed, pandas is never imported): one column of strings, token lists or arrays,
the column named by the config (`data.text_column`, `data.sequence_column`, `tag.token_column`), or else
all-numeric columns read as the (n, T) array. In-memory data still make a round trip through a temporary
JSONL file that the readers read (removed after use).

scikit-learn is optional: this module never imports it, except `__sklearn_tags__`, which only
scikit-learn itself calls.
"""

from __future__ import annotations

import contextlib
import csv
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

# In a fixed `out`: what the estimator found there before it wrote anything and what it wrote, so a
# refit replaces its own run and nothing else; the token tells a stale estimator its run was replaced.
MARK = ".rnnkit-estimator.json"
FITTED = ("run_dir_", "summary_", "classes_", "_labels", "_token", "_y_shape", "_tags")


class InputError(ConfigError, ValueError):
    """In-memory X or y an estimator cannot use (a ConfigError, and a ValueError as scikit-learn expects)."""


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


def _labels_of(y) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(classes_, their label strings in the run, y's class indices): classes sorted as scikit-learn sorts
    them (np.unique of np.asarray(y): 1 and 1.0 are one class, the dtype is y's)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"y must hold one label per sequence (1-D), got shape {arr.shape}.")
    if arr.dtype.kind in "UO":
        kinds = {isinstance(v, str) for v in (arr.tolist() if isinstance(y, np.ndarray) else y)}
        if len(kinds) > 1:
            raise InputError("y mixes strings and other values (e.g. 1 and '1'); give labels of one type.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError("y holds NaN or infinite labels.")
    if arr.dtype.kind == "f" and (arr != np.round(arr)).any():
        raise InputError("Unknown label type: continuous (floats that are not whole numbers); a classifier needs "
                         "class labels (use SequenceRegressor for real targets).")
    if arr.dtype.kind == "c":
        raise InputError("Unknown label type: complex; give class labels.")
    try:
        classes, index = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise InputError(f"Unknown label type: y's labels cannot be sorted ({exc}); give labels of one type."
                         ) from None
    names = [str(c).strip() for c in classes]  # the readers keep labels as stripped strings
    if "" in names or len(set(names)) < len(names):
        raise InputError(f"y's labels {classes.tolist()!r} do not have distinct non-blank string forms.")
    return classes, names, index.reshape(-1)


def _classifier_tasks() -> str:
    """The families whose estimator is a scikit-learn classifier, for messages."""
    return ", ".join(n for n in available() if get_task(n).is_classifier)


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _as_list(X, columns: tuple[str, ...]) -> list:
    """In-memory X -> a list with one sequence per item (see the module's docstring for what is read)."""
    if X is None:
        raise InputError("give the sequences X (or a file with data=).")
    if hasattr(X, "nnz") and hasattr(X, "toarray"):
        raise InputError("sparse input is not supported: give a list of sequences or a dense array.")
    if not hasattr(X, "__len__") and hasattr(X, "__array__"):
        X = np.asarray(X)
    if _is_frame(X):  # a pandas DataFrame, without importing pandas
        if len(X.columns) == 1:
            X = X.iloc[:, 0]
        elif (named := next((c for c in columns if c in X.columns), None)) is not None:
            X = X[named]
        else:
            try:
                X = X.to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise InputError(f"a DataFrame X needs one column, a column named {' or '.join(columns)}, or only "
                                  f"numeric columns (read as an (n, T) array); its columns are {list(X.columns)}."
                                  ) from None
    if hasattr(X, "iloc") and hasattr(X, "tolist"):  # a pandas Series
        X = X.tolist()
    if isinstance(X, (str, bytes)):
        raise InputError("X must hold several sequences (a list of strings, token lists or arrays), not one string.")
    if isinstance(X, np.ndarray) and (X.ndim == 0 or (X.ndim == 1 and X.dtype.kind in "biufc")):
        raise InputError(f"X is a {X.ndim}-D numeric array; Reshape your data: one sequence per row, an (n, T) "
                         "array of n univariate sequences, an (n, T, C) array, or a list of (T,) / (T, C) arrays.")
    if isinstance(X, np.ndarray) and np.iscomplexobj(X):
        raise InputError("Complex data not supported: X holds complex numbers.")
    if isinstance(X, np.ndarray) and X.ndim >= 2 and 0 in X.shape:
        raise InputError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required." if X.shape[0] else
                         f"X has no sequences (shape={X.shape}).")
    try:
        X = list(X)
    except TypeError:
        raise InputError(f"X ({type(X).__name__}) is not a collection of sequences.") from None
    if not X:
        raise InputError("X has no sequences.")
    return X


def _count(y) -> int:
    try:
        return len(y)
    except TypeError:
        return len(np.asarray(y))


def _numbers(x, i: int) -> list:
    if np.iscomplexobj(x):
        raise InputError(f"Complex data not supported: X[{i}] holds complex numbers.")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"X[{i}] is neither text, tokens nor a numeric (T,) / (T, C) array.") from None
    if arr.ndim not in (1, 2) or len(arr) == 0:
        raise InputError(f"X[{i}] has shape {arr.shape}; a sequence is a non-empty (T,) or (T, C) array.")
    if not np.isfinite(arr).all():
        raise InputError(f"X[{i}] holds NaN or infinite values.")
    return arr.tolist()


def _r2(y: np.ndarray, pred: np.ndarray, sample_weight=None) -> float:
    """R^2 averaged over the targets, as scikit-learn's `r2_score` (a constant target: 1 if fitted exactly, else 0)."""
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float).reshape(-1)
    sse = (w[:, None] * (y - pred) ** 2).sum(axis=0)
    sst = (w[:, None] * (y - np.average(y, axis=0, weights=w)) ** 2).sum(axis=0)
    r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse > 0, 0.0, 1.0))
    return float(r2.mean())


def _prediction_rows(out: Path) -> list[dict]:
    """The rows of a prediction file, JSONL or CSV (by its extension)."""
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


class _RunEstimator:
    """What every rnnkit estimator shares: parameters (`section__key`), the run directory it trains into and owns,
    the refit rules, pickling. A family class fixes `task` and says how in-memory X, y become rows of a JSONL file
    and how predictions come back (the `_targets` ... `_score_in_memory` hooks)."""

    task: str = DEFAULT_TASK
    _prediction_file = "predictions.jsonl"
    _y_noun = "targets"

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

    def _kind(self) -> str | None:
        """scikit-learn's estimator type: "classifier", "regressor" or None."""
        return None

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

    def _input_tags(self, InputTags):  # noqa: N803 - scikit-learn's class, passed in
        return InputTags(two_d_array=True, three_d_array=True, string=True)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_dir_")

    def _family(self):
        """The task family's hooks (what kind of estimator this is, its headline score)."""
        return get_task(self.task)

    def config(self) -> C.Config:
        """The resolved config these parameters give (raises ConfigError on a bad key or value)."""
        return _resolve(self.task, self.params)

    # -- family hooks (in-memory data) -----------------------------------------------------
    def _in_memory(self) -> bool:
        """Whether fit / predict / score take in-memory X, y."""
        return True

    def _columns(self, cfg: C.Config) -> tuple[str, ...]:
        """The DataFrame columns that hold the sequences, by preference."""
        return (cfg.data.sequence_column, cfg.data.text_column)

    def _sequences(self, X, cfg: C.Config) -> list:
        if not self._in_memory():
            raise ConfigError(f"in-memory X, y is supported for {_classifier_tasks()} only with Estimator(task=...) "
                              f"(or use SequenceRegressor / SequenceTagger); for {self.task} pass files.")
        return _as_list(X, self._columns(cfg))

    def _input_row(self, x, i: int, cfg: C.Config) -> dict:
        if isinstance(x, str):
            return {cfg.data.text_column: x}
        if np.ndim(x) == 0:
            raise InputError(f"X[{i}] is {x!r}, not a sequence (text, tokens or a (T,) / (T, C) array).")
        if len(x) and isinstance(x[0], str):
            return {cfg.data.text_column: " ".join(x)}
        return {cfg.data.sequence_column: _numbers(x, i)}

    def _check_length(self, X: list, y) -> None:
        if len(X) != _count(y):
            raise InputError(f"X has {len(X)} sequences but y has {_count(y)} {self._y_noun}.")

    def _targets(self, X: list, y):
        """y checked and prepared for `_target_row` (raises ConfigError)."""
        raise NotImplementedError

    def _target_row(self, targets, i: int, cfg: C.Config) -> dict:
        raise NotImplementedError

    def _fit_overrides(self, targets) -> dict:
        """Config overrides an in-memory fit needs (e.g. the target columns it wrote)."""
        return {}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        """Attributes a fit sets besides run_dir_ and summary_ (targets: None for a fit on files)."""
        return {}

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        raise NotImplementedError

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
        for name in FITTED:
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


class _Classification(_RunEstimator):
    """Classification's hooks: labels in y's dtype, `classes_`, `predict_proba`, accuracy."""

    _y_noun = "labels"

    def _kind(self) -> str | None:
        return "classifier"

    def _targets(self, X: list, y):
        self._check_length(X, y)
        labels = _labels_of(y)
        if len(labels[0]) < 2:
            raise InputError(f"y has one class only ({labels[0].tolist()!r}); a classifier needs at least 2 classes.")
        return labels

    def _target_row(self, targets, i: int, cfg: C.Config) -> dict:
        names, index = targets[1], targets[2]
        return {cfg.data.label_column: names[index[i]]}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        classes, names = targets[:2] if targets is not None else self._run_classes(run_dir)
        return {"classes_": classes, "_labels": names}

    @staticmethod
    def _run_classes(run_dir: Path) -> tuple[np.ndarray, list[str]]:
        """classes_ of a fit on files: the run's labels (strings), sorted as scikit-learn sorts them."""
        from rnnkit.data.pipeline import LABELS_FILE
        from rnnkit.data.vocab import LabelMap

        classes = np.unique(np.array(LabelMap.load(run_dir / LABELS_FILE).labels, dtype=str))
        return classes, classes.tolist()

    @staticmethod
    def _read_classes(out: Path) -> tuple[list[dict], list[str]]:
        """Per sequence: {label string: probability} and the predicted label string."""
        rows = _prediction_rows(out)
        if out.suffix == ".jsonl":
            return [r["probabilities"] for r in rows], [r["prediction"] for r in rows]
        return ([{k[2:]: float(v) for k, v in r.items() if k.startswith("p_")} for r in rows],  # CSV: p_<label>
                [r["prediction"] for r in rows])

    def predict(self, X=None, *, data=None, output=None):
        """Labels for a file (`data=`) or in-memory X: a numpy array in `classes_`'s dtype. `output` also keeps
        the file api.predict writes."""
        _, predicted = self._run_predict(X, data, output, self._read_classes)
        index = {name: k for k, name in enumerate(self._labels)}
        return self.classes_[np.array([index[p] for p in predicted], dtype=int)]

    def predict_proba(self, X=None, *, data=None):
        """Class probabilities, (n_sequences, n_classes), columns in `classes_` order."""
        proba_rows, _ = self._run_predict(X, data, None, self._read_classes)
        proba = np.array([[row.get(name, 0.0) for name in self._labels] for row in proba_rows], dtype=float
                         ).reshape(len(proba_rows), len(self._labels))
        return proba / proba.sum(axis=1, keepdims=True)  # float32 softmax: rows summed to 1 +- 1e-7

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        pred = self.predict(X).tolist()
        right = np.array([p == t for p, t in zip(pred, np.asarray(y).tolist(), strict=True)], dtype=float)
        return float(np.average(right, weights=sample_weight))


class SequenceClassifier(_Classification):
    """A scikit-learn classifier that trains an rnnkit classification model (task classify) on whole sequences.

    Args:
        out: run directory. None: a temporary one that the estimator owns and removes when it is refit or
            garbage-collected (a pickle carries the run with it). A fixed `out` is replaced by each fit,
            as scikit-learn's `fit` starts over, but only a run an estimator wrote there: another run
            (e.g. from the CLI) is refused and files that were there before are kept. Estimators that
            fit in parallel (n_jobs > 1) need out=None.
        **params: config overrides, e.g. model__cell="gru", train__max_epochs=20, train__seed=1,
            train__threads=2. Progress output is off unless train__progress is given.

    `fit(X, y)`: X a list of strings / token lists / (T,) or (T, C) arrays (lengths may differ), an (n, T) or
    (n, T, C) array, or a DataFrame (see the module); y one label per sequence (ints, strings, ...); or files
    (`fit(train=..., val=..., test=...)`, `fit(dataset=...)`). Attributes after `fit`: `run_dir_`, `summary_`
    (the run's summary.json), `classes_` (y's labels, sorted, in y's dtype; strings for a file fit).
    """

    task = "classify"


class SequenceRegressor(_RunEstimator):
    """A scikit-learn regressor that trains an rnnkit regression model (task regress): real targets per sequence.

    Args: as `SequenceClassifier`. `fit(X, y)`: X as for `SequenceClassifier`; y floats (n,) or an (n, k)
    array of k targets. `predict` returns floats in y's shape ((n,) or (n, k); for a fit on files: (n,) for
    one target, else (n, k)); `score` is R^2 (averaged over the targets, as scikit-learn's `r2_score`).
    """

    task = "regress"

    def _kind(self) -> str | None:
        return "regressor"

    def _targets(self, X: list, y):
        self._check_length(X, y)
        try:
            arr = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise InputError("Unknown label type: y must hold numbers, one float per sequence or an (n, k) array of "
                             "k targets.") from None
        if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] == 0):
            raise InputError(f"y has shape {arr.shape}; give (n,) floats or an (n, k) array of k targets.")
        if not np.isfinite(arr).all():
            raise InputError("y holds NaN or infinite targets.")
        if len(arr) < 2:
            raise InputError(f"got {len(arr)} sample; regression needs at least 2 sequences.")
        return arr

    @staticmethod
    def _names(targets: np.ndarray) -> list[str] | None:
        """The columns the targets are written to: None for one (data.label_column), target_0... for several."""
        k = 1 if targets.ndim == 1 else targets.shape[1]
        return None if k == 1 else [f"target_{j}" for j in range(k)]

    def _target_row(self, targets, i: int, cfg: C.Config) -> dict:
        names = self._names(targets)
        if names is None:
            return {cfg.data.label_column: float(targets.reshape(len(targets))[i])}
        return {n: float(v) for n, v in zip(names, targets[i], strict=True)}

    def _fit_overrides(self, targets) -> dict:
        return {"regress__target_columns": self._names(targets)}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        return {"_y_shape": None if targets is None else targets.shape[1:]}

    @staticmethod
    def _read_values(out: Path) -> np.ndarray:
        rows = _prediction_rows(out)
        values = [[float(v) for k, v in r.items() if k.startswith("prediction")] for r in rows]
        return np.array(values, dtype=float).reshape(len(rows), -1)

    def predict(self, X=None, *, data=None, output=None) -> np.ndarray:
        """Predicted targets for a file (`data=`) or in-memory X, in the targets' own units."""
        values = self._run_predict(X, data, output, self._read_values)
        shape = self._y_shape if self._y_shape is not None else (() if values.shape[1] == 1 else values.shape[1:])
        return values.reshape(len(values), *shape)

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        return _r2(np.asarray(y, dtype=float), self.predict(X), sample_weight)


class SequenceTagger(_RunEstimator):
    """An rnnkit tagger (task tag) with scikit-learn's interface: one tag per token.

    Args: as `SequenceClassifier`. `fit(X, y)`: X a list of token lists (or strings, split on whitespace), y a
    list of tag lists, one tag per token; or files (CoNLL, CoNLL-U, JSONL). `predict` returns a list of tag
    lists (the tags as y gave them; strings for a fit on files); `score` is token accuracy.
    """

    task = "tag"
    _prediction_file = "predictions.conll"
    _y_noun = "tag lists"

    def _input_tags(self, InputTags):  # noqa: N803 - scikit-learn's class, passed in
        return InputTags(two_d_array=False, string=True)

    def _columns(self, cfg: C.Config) -> tuple[str, ...]:
        return (cfg.tag.token_column,)

    def _sequences(self, X, cfg: C.Config) -> list:
        out = []
        for i, x in enumerate(super()._sequences(X, cfg)):
            tokens = x.split() if isinstance(x, str) else [str(t) for t in x] if np.ndim(x) == 1 else None
            if not tokens or any(not t.strip() or any(c.isspace() for c in t) for t in tokens):
                raise InputError(f"X[{i}] must be a non-empty list of tokens without whitespace, got {x!r}.")
            out.append(tokens)
        return out

    def _input_row(self, x, i: int, cfg: C.Config) -> dict:
        return {cfg.tag.token_column: x}

    def _targets(self, X: list, y):
        self._check_length(X, y)
        tags = [list(t) for t in y]
        for i, (tokens, t) in enumerate(zip(X, tags, strict=True)):
            if len(t) != len(tokens):
                raise InputError(f"y[{i}] has {len(t)} tags for {len(tokens)} tokens; give one tag per token.")
        return tags

    def _target_row(self, targets, i: int, cfg: C.Config) -> dict:
        return {cfg.tag.tag_column: [str(t).strip() for t in targets[i]]}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        return {"_tags": None if targets is None else {str(t).strip(): t for tags in targets for t in tags}}

    @staticmethod
    def _read_tags(out: Path) -> list[list[str]]:
        """CoNLL `token<TAB>tag[<TAB>gold]` lines, a blank line after each sentence -> the tags per sentence."""
        sentences, tags = [], []
        for line in out.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                tags.append(line.split("\t")[1])
            elif tags:
                sentences.append(tags)
                tags = []
        return sentences + ([tags] if tags else [])

    def predict(self, X=None, *, data=None, output=None) -> list[list]:
        """The tags of each sentence of a file (`data=`) or of in-memory X."""
        sentences = self._run_predict(X, data, output, self._read_tags)
        if self._tags is None:
            return sentences
        return [[self._tags.get(t, t) for t in tags] for tags in sentences]

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        pred = self.predict(X)
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float).reshape(-1)
        right = total = 0.0
        for p, t, wi in zip(pred, y, w, strict=True):
            t = list(t)
            if len(t) != len(p):
                raise InputError(f"y has {len(t)} tags for a sentence of {len(p)} tokens; give one tag per token.")
            right += wi * sum(a == b for a, b in zip(p, t, strict=True))
            total += wi * len(t)
        return float(right / total)


class Estimator(_Classification):
    """Train and use one rnnkit model of any family (a scikit-learn classifier for a classification task).

    Args:
        task: task family (`rnnkit.tasks.available()`; default `DEFAULT_TASK`).
        out, **params: as `SequenceClassifier`.

    In-memory X, y for a classifier family (`Task.is_classifier`), as `SequenceClassifier`; files for the others
    (whose `predict` returns the prediction file's lines): `SequenceRegressor` and `SequenceTagger` take
    in-memory data for regression and tagging. Attributes after `fit`: `run_dir_`, `summary_`; for a classifier
    family `classes_` (y's labels, sorted, in y's dtype; strings for a file fit).
    """

    def __init__(self, task: str = DEFAULT_TASK, out: str | Path | None = None, **params):
        self.task = task
        super().__init__(out, **params)

    def _own_params(self) -> dict:
        return {"task": self.task, "out": self.out}

    def _kind(self) -> str | None:
        return "classifier" if self._family().is_classifier else None

    def _in_memory(self) -> bool:
        return self._family().is_classifier

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        return super()._fitted_state(targets, run_dir) if self._family().is_classifier else {}

    def predict(self, X=None, *, data=None, output=None):
        """Predictions for a file (`data=`) or in-memory X. Classification: a numpy array of labels in
        `classes_`'s dtype; other tasks: the prediction lines. `output` also keeps the file api.predict writes."""
        if not self._family().is_classifier:
            return self._run_predict(X, data, output, lambda out: out.read_text().splitlines())
        return super().predict(X, data=data, output=output)

    def predict_proba(self, X=None, *, data=None):
        """Class probabilities, (n_sequences, n_classes), columns in `classes_` order (classify only)."""
        if not self._family().is_classifier:
            raise ConfigError(f"predict_proba is for {_classifier_tasks()}; this estimator's task is {self.task}.")
        return super().predict_proba(X, data=data)
