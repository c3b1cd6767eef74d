"""rnnkit as sktime estimators: `RNNClassifier` (a `BaseClassifier`) and `RNNRegressor` (a `BaseRegressor`).

They wrap rnnkit's scikit-learn estimators (`rnnkit.SequenceClassifier`, `rnnkit.SequenceRegressor`): sktime
checks and converts the panel X, these classes turn it into a list of `(T, C)` arrays (T may differ from one
series to the next) and hand it to the wrapped estimator, which trains a whole rnnkit run (bucketed batches,
masking, early stopping, the doctor) in a temporary run directory, or in `out` when given.

Contract:

1. Unequal lengths and several channels are native (`capability:unequal_length`, `capability:multivariate`):
   nothing is padded, resampled or truncated here (rnnkit's own `data.max_length` still applies).
2. X reaches `_fit` / `_predict` as "df-list", "nested_univ" or "numpy3D" without conversion; any other Panel
   mtype sktime converts to "df-list" first. Missing values are refused (sktime's own check, before training).
3. The hyper-parameters are the rnnkit config keys users change most, each `None` by default, meaning rnnkit's
   default (one source of truth: `rnnkit config`'s commented YAML); `params` takes any other config key as
   `section__key` (or `section.key`). A key given twice is an error that names both.
4. Unlike `rnnkit train`, no test share is carved from the training data (`data.test_fraction=0` unless `params`
   says otherwise): in sktime the caller holds the test data. The validation share stays: it stops training early.
5. `random_state` sets `train.seed`; with it (or without: rnnkit's seed defaults to 0) fits on one thread are
   repeatable.

sktime is an optional extra (`pip install 'rnnkit[sktime]'`); importing this module without it raises an
ImportError (also an rnnkit MissingExtra) that says so. `import rnnkit` never imports sktime.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import ConfigError, MissingExtra
from rnnkit.estimator import InputError, SequenceClassifier, SequenceRegressor

INSTALL_HINT = "pip install 'rnnkit[sktime]'"


class MissingSktime(MissingExtra, ImportError):
    """sktime (or a package it needs) is not installed."""


try:
    from sktime.classification.base import BaseClassifier
    from sktime.regression.base import BaseRegressor
except ImportError as exc:  # sktime itself, or one of its own dependencies (pandas, scikit-base, ...)
    missing = (exc.name or "sktime").split(".")[0]
    raise MissingSktime(f"rnnkit.contrib.sktime needs sktime ({missing} is not installed): {INSTALL_HINT}") from exc

__all__ = ["INSTALL_HINT", "RNNClassifier", "RNNRegressor", "to_sequences"]

# hyper-parameter -> the rnnkit config key it sets
KEYS = {
    "cell": "model__cell",
    "hidden_size": "model__hidden_size",
    "num_layers": "model__num_layers",
    "bidirectional": "model__bidirectional",
    "max_epochs": "train__max_epochs",
    "batch_size": "data__batch_size",
    "lr": "optim__lr",
    "threads": "train__threads",
}

# Fast settings for sktime's check_estimator (and for trying things out): a 4-unit one-layer network, one epoch.
_FAST = {"hidden_size": 4, "num_layers": 1, "bidirectional": False, "max_epochs": 1, "threads": 1,
         "params": {"model__embedding_dim": 4, "train__probe_every": 0, "train__min_epoch_steps": 1}}

_TAGS = {
    "authors": "rnnkit developers",
    "maintainers": "rnnkit developers",
    "python_dependencies": ["torch"],
    "X_inner_mtype": ["df-list", "nested_univ", "numpy3D"],  # the first is what sktime converts other mtypes to
    "y_inner_mtype": "numpy1D",
    "capability:multivariate": True,
    "capability:unequal_length": True,
    "capability:missing_values": False,
    "capability:multioutput": False,  # sktime fits one estimator per column of a 2-D y
    "capability:random_state": True,
    "property:randomness": "derandomized",
}


def to_sequences(X) -> list[np.ndarray]:
    """A panel in one of the inner mtypes -> one float `(T, C)` array per series (T may vary, C may not).

    Args:
        X: "numpy3D" (an `(n, C, T)` array), "df-list" (a list of DataFrames, rows = time points, columns =
            channels) or "nested_univ" (a DataFrame with one row per series and one pd.Series per cell).

    Raises:
        InputError: the channels of one series differ in length (nested_univ), or X is of another kind.
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 3:
            raise InputError(f"a numpy3D panel is (n, channels, time points); got shape {X.shape}.")
        return [np.ascontiguousarray(x.T, dtype=float) for x in X]  # (C, T) -> (T, C)
    if isinstance(X, list):
        return [np.asarray(df.to_numpy(dtype=float)).reshape(len(df), -1) for df in X]  # (T, C) each
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # nested_univ
        out = []
        for i in range(len(X)):
            channels = [np.asarray(X.iloc[i, j], dtype=float).reshape(-1) for j in range(X.shape[1])]
            lengths = {len(c) for c in channels}
            if len(lengths) > 1:
                raise InputError(f"series {X.index[i]!r} (row {i} of X) has channels of different lengths "
                                 f"{sorted(lengths)}; rnnkit reads one time axis per series: give each series' "
                                 "channels the same time points.")
            out.append(np.stack(channels, axis=1))  # (T, C)
        return out
    raise InputError(f"X of type {type(X).__name__} is not a df-list, nested_univ or numpy3D panel.")


def _seed(random_state, *, draw: bool = True) -> int | None:
    """random_state as rnnkit's train.seed: an int as it is; a RandomState / Generator draws one (as scikit-learn
    does; `draw=False` only checks the type and returns 0, so that the constructor leaves the generator alone)."""
    if random_state is None:
        return None
    if isinstance(random_state, (bool, np.bool_)):
        raise ConfigError(f"random_state={random_state!r}: give an int seed, a numpy RandomState / Generator, "
                          "or None.")
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max)) if draw else 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int32).max)) if draw else 0
    raise ConfigError(f"random_state={random_state!r} ({type(random_state).__name__}): give an int seed, a numpy "
                      "RandomState / Generator, or None.")


class _RNNPanel:
    """What RNNClassifier and RNNRegressor share: the hyper-parameters, the wrapped rnnkit estimator, the data."""

    _rnnkit_class: type  # the wrapped scikit-learn estimator

    def __init__(self, cell=None, hidden_size=None, num_layers=None, bidirectional=None, max_epochs=None,
                 batch_size=None, lr=None, threads=None, random_state=None, params=None, out=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.threads = threads
        self.random_state = random_state
        self.params = params
        self.out = out
        super().__init__()

    def __post_init__(self):
        # a bad key or value fails here, at construction (and at set_params), not after loading data
        self._rnnkit_class(**self._rnnkit_params(seed=False))

    def _rnnkit_params(self, *, seed: bool = True) -> dict:
        """The wrapped estimator's `section__key` parameters (seed=False: a RandomState is not drawn from)."""
        given = {} if self.params is None else self.params
        if not isinstance(given, dict):
            raise ConfigError(f"params={given!r}: give a dict of rnnkit config keys, e.g. "
                              "{'model__dropout': 0.1} (or {'model.dropout': 0.1}).")
        extra, written = {}, {}  # section__key -> value; -> the key as the user wrote it
        for key, value in given.items():
            if not isinstance(key, str):
                raise ConfigError(f"params key {key!r} is not a config key; use 'section__key', e.g. 'optim__lr'.")
            name = key.replace(".", "__")
            if name in extra:
                raise ConfigError(f"params[{written[name]!r}] and params[{key!r}] set the same rnnkit key "
                                  f"{name.replace('__', '.')}; give it once.")
            extra[name], written[name] = value, key
        out = {"data__test_fraction": 0.0}  # contract 4
        out.update(extra)
        mine = {KEYS[name]: getattr(self, name) for name in KEYS if getattr(self, name) is not None}
        if self.random_state is not None:
            mine["train__seed"] = _seed(self.random_state, draw=seed)
        for key, value in mine.items():
            if key in extra:
                name = next((n for n, k in KEYS.items() if k == key), "random_state")
                raise ConfigError(f"{name}={value!r} and params[{written[key]!r}]={extra[key]!r} set the same rnnkit "
                                  f"key {key.replace('__', '.')}; give it once.")
            out[key] = value
        return out

    def _new_rnnkit(self):
        return self._rnnkit_class(out=self.out, **self._rnnkit_params())

    def _fit(self, X, y):
        self.estimator_ = self._new_rnnkit().fit(to_sequences(X), y)
        self.run_dir_ = self.estimator_.run_dir_
        return self

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny fast settings for sktime's estimator checks: 4 hidden units, one layer, one epoch, one thread.

        Returns:
            list of dict: two parameter sets (an LSTM, and a GRU with rnnkit config keys through `params`).
        """
        gru = {**_FAST, "cell": "gru", "lr": 1e-2, "random_state": 1,
               "params": {**_FAST["params"], "data.bucketing": False}}
        return [dict(_FAST), gru]


class RNNClassifier(_RNNPanel, BaseClassifier):
    """Recurrent network (LSTM or GRU) time series classifier, trained by rnnkit; unequal lengths welcome.

    Wraps `rnnkit.SequenceClassifier`: each series becomes one variable-length `(T, C)` sequence, trained with
    rnnkit's defaults (bucketed, masked batches, a bidirectional 2-layer LSTM, early stopping on a validation
    share of the training data, the doctor's checks). The run, with its report and checkpoints, is kept in `out`
    when given (`rnnkit report OUT` reads it), else in a temporary directory that goes with the estimator.

    Parameters
    ----------
    cell : {"lstm", "gru"} or None
        The recurrent cell (`model.cell`). None, here and below: rnnkit's default.
    hidden_size : int or None
        Hidden units per direction (`model.hidden_size`).
    num_layers : int or None
        Stacked recurrent layers (`model.num_layers`).
    bidirectional : bool or None
        Read each series both ways (`model.bidirectional`).
    max_epochs : int or None
        Upper bound on epochs (`train.max_epochs`); early stopping usually ends training first.
    batch_size : int or None
        Series per batch (`data.batch_size`).
    lr : float or None
        Peak learning rate of AdamW (`optim.lr`).
    threads : int or None
        torch intra-op threads while fitting and predicting (`train.threads`).
    random_state : int, numpy RandomState / Generator, or None
        The training seed (`train.seed`; rnnkit's default seed is 0).
    params : dict or None
        Any other rnnkit config key, as `{"section__key": value}` or `{"section.key": value}`, e.g.
        `{"model.pooling": "attention", "train.patience": 5}` (`rnnkit config` lists the keys).
    out : str, path or None
        Directory to keep the rnnkit run in; None: a temporary one.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    estimator_ : rnnkit.SequenceClassifier
        The fitted rnnkit estimator (its `summary_` holds the run's metrics).
    run_dir_ : pathlib.Path
        The run directory.

    Examples
    --------
    >>> from rnnkit.contrib.sktime import RNNClassifier
    >>> from sktime.datasets import load_unit_test
    >>> X_train, y_train = load_unit_test(split="train", return_type="nested_univ")
    >>> X_test, y_test = load_unit_test(split="test", return_type="nested_univ")
    >>> clf = RNNClassifier(hidden_size=8, num_layers=1, max_epochs=2, threads=1)
    >>> clf = clf.fit(X_train, y_train)
    >>> y_pred = clf.predict(X_test)
    >>> proba = clf.predict_proba(X_test)
    """

    _rnnkit_class = SequenceClassifier
    _tags = {**_TAGS, "capability:predict_proba": True}

    def _predict_proba(self, X) -> np.ndarray:
        proba = self.estimator_.predict_proba(to_sequences(X))  # (n, classes), columns in estimator_.classes_
        order = [self.estimator_.classes_.tolist().index(c) for c in self.classes_]
        return proba[:, order]

    def _predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self._predict_proba(X), axis=1)]


class RNNRegressor(_RNNPanel, BaseRegressor):
    """Recurrent network (LSTM or GRU) time series regressor, trained by rnnkit; unequal lengths welcome.

    Wraps `rnnkit.SequenceRegressor` (one real target per series, trained on a standardized scale, mean squared
    error): the same parameters and attributes as `RNNClassifier`, without `classes_`.

    Parameters
    ----------
    cell, hidden_size, num_layers, bidirectional, max_epochs, batch_size, lr, threads, random_state, params, out
        As in `RNNClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnkit.contrib.sktime import RNNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 1, 12))  # numpy3D: 20 series, 1 channel, 12 time points
    >>> y = X[:, 0, :].mean(axis=1)
    >>> reg = RNNRegressor(hidden_size=8, num_layers=1, max_epochs=2, threads=1).fit(X, y)
    >>> reg.predict(X).shape
    (20,)
    """

    _rnnkit_class = SequenceRegressor
    _tags = dict(_TAGS)

    def _predict(self, X) -> np.ndarray:
        return np.asarray(self.estimator_.predict(to_sequences(X)), dtype=float).reshape(-1)
