"""What a family's estimator hooks share (the estimator layer, `rnnkit.estimator`, sits above the families).

A family that takes in-memory data in its scikit-learn estimator gives `Task(estimator=EstimatorSpec(...))`:
the public class name, and a `Hooks` subclass that says how in-memory X, y become the rows a reader reads, what
a fit leaves on the estimator, and how predictions come back. `rnnkit.estimator` builds the public class from
those hooks and its run-directory machinery; this module holds the hooks' defaults (files only) and the
in-memory conversions every family uses. It imports neither scikit-learn nor the api.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.errors import ConfigError


class InputError(ConfigError, ValueError):
    """In-memory X or y an estimator cannot use (a ConfigError, and a ValueError as scikit-learn expects)."""


@dataclass(frozen=True)
class EstimatorSpec:
    """A family's scikit-learn estimator: its public name (in `rnnkit.estimator` and `rnnkit`), its hooks and
    its docstring."""

    name: str
    hooks: type
    doc: str = ""


def labels_of(y) -> tuple[np.ndarray, list[str], np.ndarray]:
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


def is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")


def as_list(X, columns: tuple[str, ...]) -> list:
    """In-memory X -> a list with one sequence per item (see the module's docstring for what is read)."""
    if X is None:
        raise InputError("give the sequences X (or a file with data=).")
    if hasattr(X, "nnz") and hasattr(X, "toarray"):
        raise InputError("sparse input is not supported: give a list of sequences or a dense array.")
    if not hasattr(X, "__len__") and hasattr(X, "__array__"):
        X = np.asarray(X)
    if is_frame(X):  # a pandas DataFrame, without importing pandas
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


def count(y) -> int:
    try:
        return len(y)
    except TypeError:
        return len(np.asarray(y))


def numbers(x, i: int) -> list:
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


def r2(y: np.ndarray, pred: np.ndarray, sample_weight=None) -> float:
    """R^2 averaged over the targets, as scikit-learn's `r2_score` (a constant target: 1 if fitted exactly, else 0)."""
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float).reshape(-1)
    sse = (w[:, None] * (y - pred) ** 2).sum(axis=0)
    sst = (w[:, None] * (y - np.average(y, axis=0, weights=w)) ** 2).sum(axis=0)
    r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse > 0, 0.0, 1.0))
    return float(r2.mean())


def prediction_rows(out: Path) -> list[dict]:
    """The rows of a prediction file, JSONL or CSV (by its extension)."""
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))




def in_memory_families() -> str:
    """The families whose estimator takes in-memory X, y, for messages."""
    from rnnkit.tasks import available, get_task

    return ", ".join(n for n in available() if get_task(n).estimator is not None)


class Hooks:
    """A family estimator's hooks, with the defaults of a family that takes files only.

    `rnnkit.estimator` calls them on the estimator itself (they are mixed into its class): `self.task`,
    `self.config()`, `self._run_predict(X, data, output, parse)` and the fitted attributes are there."""

    _prediction_file = "predictions.jsonl"  # the file `predict` asks api.predict for (its suffix: the format)
    _y_noun = "targets"
    _fitted_names: tuple[str, ...] = ()  # attributes `_fitted_state` sets (dropped before a refit)

    def _kind(self) -> str | None:
        """scikit-learn's estimator type: "classifier", "regressor" or None."""
        return None

    def _input_tags(self, InputTags):  # noqa: N803 - scikit-learn's class, passed in
        return InputTags(two_d_array=True, three_d_array=True, string=True)

    def _in_memory(self) -> bool:
        """Whether fit / predict / score take in-memory X, y."""
        return False

    def _columns(self, cfg) -> tuple[str, ...]:
        """The DataFrame columns that hold the sequences, by preference."""
        return (cfg.data.sequence_column, cfg.data.text_column)

    def _sequences(self, X, cfg) -> list:
        if not self._in_memory():
            raise ConfigError(f"in-memory X, y is supported for {in_memory_families()}; for {self.task} pass "
                              "files (fit(train=...), predict(data=...)).")
        return as_list(X, self._columns(cfg))

    def _input_row(self, x, i: int, cfg) -> dict:
        """One in-memory sequence -> the columns of its row (text, tokens joined by spaces, or numbers)."""
        if isinstance(x, str):
            return {cfg.data.text_column: x}
        if np.ndim(x) == 0:
            raise InputError(f"X[{i}] is {x!r}, not a sequence (text, tokens or a (T,) / (T, C) array).")
        if len(x) and isinstance(x[0], str):
            return {cfg.data.text_column: " ".join(x)}
        return {cfg.data.sequence_column: numbers(x, i)}

    def _check_length(self, X: list, y) -> None:
        if len(X) != count(y):
            raise InputError(f"X has {len(X)} sequences but y has {count(y)} {self._y_noun}.")

    def _targets(self, X: list, y):
        """y checked and prepared for `_target_row` (raises InputError)."""
        raise ConfigError(f"in-memory X, y is supported for {in_memory_families()}; for {self.task} pass files.")

    def _target_row(self, targets, i: int, cfg) -> dict:
        raise NotImplementedError

    def _fit_overrides(self, targets) -> dict:
        """Config overrides an in-memory fit needs (e.g. the target columns it wrote)."""
        return {}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        """Attributes a fit sets besides run_dir_ and summary_ (targets: None for a fit on files); their names
        are `_fitted_names`."""
        return {}

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        raise NotImplementedError

    def predict(self, X=None, *, data=None, output=None):
        """The lines of the prediction file api.predict writes for `data=` (`output` also keeps that file)."""
        return self._run_predict(X, data, output, lambda out: out.read_text().splitlines())
