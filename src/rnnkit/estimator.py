"""An estimator facade (`fit` / `predict` / `score`, `get_params` / `set_params`) over the run directory.

It lets scikit-learn code (`clone`, `cross_val_score`, `GridSearchCV`, `Pipeline`) and tuners (Optuna)
drive rnnkit without knowing the CLI. Parameters are the config's keys with `__` for the dot
(`model__hidden_size=64`, `optim__lr=3e-3`), as in scikit-learn's nested parameters. Data are files
(any format rnnkit reads) or, for classification, in-memory sequences: `fit(X, y)` with X a list of
token lists / strings / (T, C) or (T,) arrays, y any 1-D labels (ints, strings, ...).

scikit-learn is optional: this module never imports it, except `__sklearn_tags__`, which only
scikit-learn itself calls.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
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
FITTED = ("run_dir_", "summary_", "classes_", "_labels", "_token")


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
        raise ConfigError(f"y must hold one label per sequence (1-D), got shape {arr.shape}.")
    if arr.dtype.kind in "UO":
        kinds = {isinstance(v, str) for v in (arr.tolist() if isinstance(y, np.ndarray) else y)}
        if len(kinds) > 1:
            raise ConfigError("y mixes strings and other values (e.g. 1 and '1'); give labels of one type.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ConfigError("y holds NaN or infinite labels.")
    try:
        classes, index = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise ConfigError(f"y's labels cannot be sorted ({exc}); give labels of one type.") from None
    names = [str(c).strip() for c in classes]  # the readers keep labels as stripped strings
    if "" in names or len(set(names)) < len(names):
        raise ConfigError(f"y's labels {classes.tolist()!r} do not have distinct non-blank string forms.")
    return classes, names, index.reshape(-1)


def _classifier_tasks() -> str:
    """The families whose estimator is a scikit-learn classifier, for messages."""
    return ", ".join(n for n in available() if get_task(n).is_classifier)


class Estimator:
    """Train and use one rnnkit model (a scikit-learn classifier for a classification task).

    Args:
        task: task family (`rnnkit.tasks.available()`; default `DEFAULT_TASK`).
        out: run directory. None: a temporary one that the estimator owns and removes when it is refit or
            garbage-collected (a pickle carries the run with it). A fixed `out` is replaced by each fit,
            as scikit-learn's `fit` starts over, but only a run an Estimator wrote there: another run
            (e.g. from the CLI) is refused and files that were there before are kept. Estimators that
            fit in parallel (n_jobs > 1) need out=None.
        **params: config overrides, e.g. model__cell="gru", train__max_epochs=20, train__seed=1,
            train__threads=2. Progress output is off unless train__progress is given.

    Attributes after `fit`: `run_dir_`, `summary_` (the run's summary.json); for a classifier family
    (`Task.is_classifier`) `classes_` (y's labels, sorted, in y's dtype; strings for a file fit).
    """

    def __init__(self, task: str = DEFAULT_TASK, out: str | Path | None = None, **params):
        self.task = task
        self.out = out
        self.params = dict(params)
        self.config()  # validate now: a typo fails at construction, not after loading data

    # -- scikit-learn protocol -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments, as given (scikit-learn's `clone` rebuilds the estimator from them)."""
        return {"task": self.task, "out": self.out, **self.params}

    def set_params(self, **params) -> Estimator:
        """Change parameters (checked first: a bad one changes nothing); takes effect at the next `fit`."""
        task, out, new = self.task, self.out, dict(self.params)
        for key, value in params.items():
            if key == "task":
                task = value
            elif key == "out":
                out = value
            else:
                new[key] = value
        _resolve(task, new)
        self.task, self.out, self.params = task, out, new
        return self

    def __repr__(self) -> str:
        shown = {**({"task": self.task} if self.task != DEFAULT_TASK else {}),
                 **({"out": self.out} if self.out is not None else {}), **self.params}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __sklearn_tags__(self):
        try:
            from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        except ImportError as exc:  # scikit-learn before 1.6 does not ask for tags
            raise ImportError("rnnkit's Estimator needs scikit-learn >= 1.6 here: pip install 'scikit-learn>=1.6'"
                              ) from exc
        classify = self._family().is_classifier
        return Tags(estimator_type="classifier" if classify else None,
                    target_tags=TargetTags(required=classify),
                    classifier_tags=ClassifierTags() if classify else None,
                    input_tags=InputTags(two_d_array=True, three_d_array=True, string=True))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_dir_")

    def _family(self):
        """The task family's hooks (what kind of estimator this is, its headline score)."""
        return get_task(self.task)

    def config(self) -> C.Config:
        """The resolved config these parameters give (raises ConfigError on a bad key or value)."""
        return _resolve(self.task, self.params)

    # -- training and use ------------------------------------------------------------------
    def fit(self, X=None, y=None, *, train=None, val=None, test=None, dataset=None) -> Estimator:
        """Train on files (`train=`, `val=`, `test=`), a built-in `dataset=`, or in-memory X, y.

        A fit starts over: the previous fit's run (a temporary one, or this estimator's run in `out`) is
        removed first, and a failed fit leaves the estimator unfitted."""
        cfg = self.config()
        labels = None
        if X is not None:
            if train is not None or dataset is not None:
                raise ConfigError("give either X, y or train=/dataset=, not both.")
            if y is None:
                raise ConfigError("fit(X, y) needs the labels y.")
            self._check_in_memory(X, y)
            labels = _labels_of(y)
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
            if labels is not None:
                names, index = labels[1], labels[2]
                train = self._write(run_dir / "input" / "train.jsonl", X, [names[k] for k in index], cfg)
            extra = {k: str(v) for k, v in (("data__train", train), ("data__val", val), ("data__test", test),
                                            ("data__dataset", dataset)) if v is not None}
            cfg = _resolve(self.task, self.params, extra)
            with _threads(cfg.train.threads):
                summary = api.train(cfg, run_dir)
            if self._family().is_classifier:
                classes, names = labels[:2] if labels is not None else self._run_classes(run_dir)
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
        if self._family().is_classifier:
            self.classes_, self._labels = classes, names
        return self

    def predict(self, X=None, *, data=None, output=None):
        """Predictions for a file (`data=`) or in-memory X. Classification: a numpy array of labels in
        `classes_`'s dtype; other tasks: the prediction lines. `output` also keeps the file api.predict writes."""
        if not self._family().is_classifier:
            return self._predict_file(X, data, output)
        proba_rows, predicted = self._predict_classify(X, data, output)
        index = {name: k for k, name in enumerate(self._labels)}
        return self.classes_[np.array([index[p] for p in predicted], dtype=int)]

    def predict_proba(self, X=None, *, data=None):
        """Class probabilities, (n_sequences, n_classes), columns in `classes_` order (classify only)."""
        if not self._family().is_classifier:
            raise ConfigError(f"predict_proba is for {_classifier_tasks()}; this estimator's task is {self.task}.")
        proba_rows, _ = self._predict_classify(X, data, None)
        proba = np.array([[row.get(name, 0.0) for name in self._labels] for row in proba_rows], dtype=float
                         ).reshape(len(proba_rows), len(self._labels))
        return proba / proba.sum(axis=1, keepdims=True)  # float32 softmax: rows summed to 1 +- 1e-7

    def score(self, X=None, y=None, *, data=None, sample_weight=None) -> float:
        """The headline metric on labelled data, higher is better (the family's `headline_score`: accuracy
        for classification and tagging, 1 - WER for generation, -MSE for forecasting). For in-memory
        classification it is scikit-learn's accuracy (labels unseen in fit count as errors)."""
        self._check_fitted()
        family = self._family()
        if data is None and family.is_classifier:
            if y is None:
                raise ConfigError("score(X, y) needs the labels y.")
            self._check_in_memory(X, y)
            pred = self.predict(X).tolist()
            right = np.array([p == t for p, t in zip(pred, np.asarray(y).tolist(), strict=True)], dtype=float)
            return float(np.average(right, weights=sample_weight))
        if sample_weight is not None:
            raise ConfigError("sample_weight is for in-memory classification data (score(X, y, sample_weight=...)).")
        with tempfile.TemporaryDirectory(prefix="rnnkit-score-") as tmp:
            path = Path(data) if data is not None else self._write(Path(tmp) / "xy.jsonl", X, y, self.config())
            with _threads(self.config().train.threads):
                metrics = api.evaluate(self.run_dir_, path)
        if family.headline_score is None:
            raise ConfigError(f"task {self.task} has no headline score for Estimator.score; read api.evaluate's "
                              "metrics instead.")
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
        """Remove from `run_dir` what an earlier Estimator fit wrote there; returns the names left there
        (the user's). A run no Estimator wrote is refused, never removed."""
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
            raise ConfigError("this estimator is not fitted yet; call fit() first.")
        if self._token is not None:
            try:
                token = json.loads((self.run_dir_ / MARK).read_text()).get("token")
            except (OSError, ValueError, AttributeError):
                token = None
            if token != self._token:
                raise ConfigError(f"{self.run_dir_} no longer holds this estimator's fit (another fit with the "
                                  "same out replaced it); refit this one, or give each estimator its own out.")

    @staticmethod
    def _run_classes(run_dir: Path) -> tuple[np.ndarray, list[str]]:
        """classes_ of a fit on files: the run's labels (strings), sorted as scikit-learn sorts them."""
        from rnnkit.data.pipeline import LABELS_FILE
        from rnnkit.data.vocab import LabelMap

        classes = np.unique(np.array(LabelMap.load(run_dir / LABELS_FILE).labels, dtype=str))
        return classes, classes.tolist()

    def _predict_file(self, X, data, output) -> list[str]:
        self._check_fitted()
        with tempfile.TemporaryDirectory(prefix="rnnkit-pred-") as tmp:
            path = Path(data) if data is not None else self._write(Path(tmp) / "x.jsonl", X, None, self.config())
            out = Path(output) if output is not None else Path(tmp) / "predictions.jsonl"
            with _threads(self.config().train.threads):
                api.predict(self.run_dir_, path, out)
            return out.read_text().splitlines()

    def _predict_classify(self, X, data, output) -> tuple[list[dict], list[str]]:
        """Per sequence: {label string: probability} and the predicted label string."""
        self._check_fitted()
        if data is None:
            self._check_in_memory(X, None)
        with tempfile.TemporaryDirectory(prefix="rnnkit-pred-") as tmp:
            path = Path(data) if data is not None else self._write(Path(tmp) / "x.jsonl", X, None, self.config())
            out = Path(output) if output is not None else Path(tmp) / "predictions.jsonl"
            with _threads(self.config().train.threads):
                api.predict(self.run_dir_, path, out)
            if out.suffix == ".jsonl":
                rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
                return [r["probabilities"] for r in rows], [r["prediction"] for r in rows]
            with open(out, newline="") as fh:  # CSV: prediction, probability, p_<label>...
                rows = list(csv.DictReader(fh))
            return ([{k[2:]: float(v) for k, v in r.items() if k.startswith("p_")} for r in rows],
                    [r["prediction"] for r in rows])

    def _check_in_memory(self, X, y) -> None:
        if not self._family().is_classifier:
            raise ConfigError(f"in-memory X, y is supported for {_classifier_tasks()} only; for {self.task} pass "
                              "files.")
        if X is None:
            raise ConfigError("give the sequences X (or a file with data=).")
        if y is not None and len(X) != len(y):
            raise ConfigError(f"X has {len(X)} sequences but y has {len(y)} labels.")

    def _write(self, path: Path, X, y, cfg: C.Config) -> Path:
        """In-memory classification data -> JSONL the readers understand (y: the label strings)."""
        self._check_in_memory(X, y)
        path.parent.mkdir(parents=True, exist_ok=True)
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
