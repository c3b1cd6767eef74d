"""An estimator facade (`fit` / `predict` / `score`, `get_params` / `set_params`) over the run directory.

It lets scikit-learn style code and tuners (Optuna) drive rnnkit without knowing the CLI. Parameters
are the config's keys with `__` for the dot (`model__hidden_size=64`, `optim__lr=3e-3`), as in
scikit-learn's nested parameters. Data are files (any format rnnkit reads) or, for classification,
in-memory sequences: `fit(X, y)` with X a list of token lists / strings / (T, C) arrays.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError


def _to_override(key: str, value) -> str:
    return f"{key.replace('__', '.')}={json.dumps(value)}"


class Estimator:
    """Train and use one rnnkit model.

    Args:
        task: task family (classify, tag, seq2seq, forecast).
        out: run directory (a temporary one when None; kept as `run_dir_`).
        **params: config overrides, e.g. model__cell="gru", train__max_epochs=20.

    Attributes after `fit`: `run_dir_`, `summary_` (the run's summary.json).
    """

    def __init__(self, task: str = "classify", out: str | Path | None = None, **params):
        self.task = task
        self.out = out
        self.params = dict(params)
        self.config()  # validate now: a typo fails at construction, not after loading data

    # -- scikit-learn protocol -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {"task": self.task, "out": self.out, **self.params}

    def set_params(self, **params) -> Estimator:
        for key, value in params.items():
            if key in ("task", "out"):
                setattr(self, key, value)
            else:
                self.params[key] = value
        self.config()
        return self

    def config(self) -> C.Config:
        """The resolved config these parameters give (raises ConfigError on a bad key or value)."""
        for key in self.params:
            if "__" not in key:
                raise ConfigError(f"estimator parameter {key!r}: use section__key, e.g. optim__lr.")
        return C.resolve(None, [f"task={self.task}", *(_to_override(k, v) for k, v in self.params.items())])

    # -- training and use ------------------------------------------------------------------
    def fit(self, X=None, y=None, *, train=None, val=None, test=None, dataset=None) -> Estimator:
        """Train on files (`train=`, `val=`, `test=`), a built-in `dataset=`, or in-memory X, y."""
        run_dir = Path(self.out) if self.out is not None else Path(tempfile.mkdtemp(prefix="rnnkit-"))
        extra = {}
        if X is not None:
            if train is not None or dataset is not None:
                raise ConfigError("give either X, y or train=/dataset=, not both.")
            train = self._write(run_dir / "input" / "train.jsonl", X, y)
        for key, value in (("data.train", train), ("data.val", val), ("data.test", test),
                           ("data.dataset", dataset)):
            if value is not None:
                extra[key] = str(value)
        cfg = C.resolve(None, [f"task={self.task}", *(_to_override(k, v) for k, v in self.params.items()),
                               *(f"{k}={json.dumps(v)}" for k, v in extra.items())])
        self.summary_ = api.train(cfg, run_dir)
        self.run_dir_ = run_dir
        return self

    def predict(self, X=None, *, data=None, output=None) -> list:
        """Predictions for a file (`data=`) or in-memory X. Classification returns labels."""
        self._check_fitted()
        path = Path(data) if data is not None else self._write(
            Path(tempfile.mkdtemp(prefix="rnnkit-pred-")) / "x.jsonl", X, None)
        out = Path(output) if output is not None else path.with_suffix(".predictions.jsonl")
        if self.task == "classify":
            out = out.with_suffix(".jsonl")
        api.predict(self.run_dir_, path, out)
        if self.task == "classify":
            return [json.loads(line)["prediction"] for line in out.read_text().splitlines()]
        return out.read_text().splitlines()

    def score(self, X=None, y=None, *, data=None) -> float:
        """The headline metric on labelled data: accuracy (classify, tag), 1 - WER (seq2seq), -MSE (forecast)."""
        self._check_fitted()
        path = Path(data) if data is not None else self._write(
            Path(tempfile.mkdtemp(prefix="rnnkit-score-")) / "xy.jsonl", X, y)
        metrics = api.evaluate(self.run_dir_, path)
        if "accuracy" in metrics:
            return metrics["accuracy"]
        if "wer" in metrics:
            return 1.0 - metrics["wer"]
        return -metrics["mse"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_dir_"):
            raise ConfigError("this estimator is not fitted yet; call fit() first.")

    def _write(self, path: Path, X, y) -> Path:
        """In-memory classification data -> JSONL the readers understand (provenance: this file)."""
        if self.task != "classify":
            raise ConfigError(f"in-memory X, y is supported for classify only; for {self.task} pass files.")
        if y is not None and len(X) != len(y):
            raise ConfigError(f"X has {len(X)} sequences but y has {len(y)} labels.")
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        with open(path, "w") as fh:
            for i, x in enumerate(X):
                if isinstance(x, str):
                    row = {cfg.data.text_column: x}
                elif len(x) and isinstance(x[0], str):
                    row = {cfg.data.text_column: " ".join(x)}
                else:
                    row = {cfg.data.sequence_column: np.asarray(x, dtype=float).tolist()}
                if y is not None:
                    row[cfg.data.label_column] = str(y[i])
                fh.write(json.dumps(row) + "\n")
        return path
