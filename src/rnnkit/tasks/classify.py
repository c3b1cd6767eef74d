"""Sequence classification (many-to-one): one label per sequence."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.config import Config
from rnnkit.data.collate import Batch, collate, stacked_targets
from rnnkit.data.datasets import BuiltinDataset, get_builtin, register
from rnnkit.data.outputs import write_class_predictions
from rnnkit.data.pipeline import LABELS_FILE, Preprocessing, input_files, load_file_for_inference, prepare_data
from rnnkit.data.spamassassin import ENV_VAR, INSTALL, PACKAGE, SpamAssassinDataset
from rnnkit.data.tables import format_of
from rnnkit.data.ts_format import label_declaration
from rnnkit.data.vocab import LabelMap
from rnnkit.errors import ConfigError, DataError, Problem
from rnnkit.tasks import Task
from rnnkit.tasks._estimating import EstimatorSpec, Hooks, InputError, labels_of, prediction_rows
from rnnkit.tasks._onnx import sequence_spec
from rnnkit.training import metrics as M
from rnnkit.training.schedules import FIT_LOSS

register(
    BuiltinDataset(
        name="japanese_vowels",
        task="classify",
        package="sktime",
        install="pip install --no-deps sktime",
        description=(
            "UEA JapaneseVowels: 9 speakers saying /ae/, 12 LPC cepstrum channels, variable length "
            "7-29 steps; classify the speaker (270 train / 370 test cases, 9 classes)"
        ),
        reference=(
            "LSTM-FCN 0.99, FCN 0.993, echo-state network 0.965 test accuracy (Karim et al. 2019; Fawaz et al. 2019)"
        ),
        data_files={
            "train": "datasets/data/JapaneseVowels/JapaneseVowels_TRAIN.ts",
            "test": "datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts",
        },
        reader_options={"format": "ts"},
    )
)

# Long raw e-mails (issue 12): the npm package's JSON messages, converted once into one JSONL file (see
# rnnkit.data.spamassassin). Sizes and lengths measured on version 0.2.3 (whitespace tokens, headers included).
register(
    SpamAssassinDataset(
        name="spamassassin",
        task="classify",
        package=PACKAGE,
        install=INSTALL,
        env_var=ENV_VAR,
        description=(
            "SpamAssassin public corpus (npm, 0.2.3): 6,046 raw e-mails with their headers, 4,150 ham / 1,896 spam; "
            "whitespace tokens per message: median 367, 90th percentile 891, max 15,164, 27% longer than the "
            "default data.max_length 512 (truncated, and counted); no canonical split: a seeded split stratified "
            "by label (data.val_fraction / data.test_fraction of each class, 10% each by default, data.split_seed)"
        ),
        reference=(
            "no canonical split, so no published figure on this split; indicative only: BERT 0.978-0.993 accuracy "
            "across four spam corpora, this one among them, each on its own split (Sahmoud & Mikki 2022, "
            "arXiv:2206.02443); compare with the majority-class baseline (ham, about 0.686)"
        ),
        data_files={"manifest": "data/file_list.json"},  # what must be there; files() gives the converted train file
    )
)


def prepare(cfg: Config, run_dir: Path | None = None):
    """`prepare_data`, and what `model.frontend` resolves to on these data (report["frontend"])."""
    refuse_regression_ts(*input_files(cfg))
    data = prepare_data(cfg, run_dir)
    data.report["frontend"] = frontend_choice(cfg, data.prep).to_dict()
    if data.prep.class_counts is None:  # (data.storage=stream counted every training row in its scan)
        targets = stacked_targets(data.datasets["train"].examples)
        data.prep.class_counts = torch.bincount(targets, minlength=len(data.prep.labels)).tolist()
    data.report["class_balance"] = class_balance(cfg, data.prep.class_counts)
    warn_numeric_labels(cfg, [str(x) for x in data.prep.labels.labels], sum(data.prep.class_counts))
    if cfg.data.dataset:
        data.report["reference"] = get_builtin(cfg.data.dataset).reference
    return data


def refuse_regression_ts(files: dict[str, Path], options: dict) -> None:
    """A regression .ts file (`@targetLabel true`) given to classify: its numbers would each become a class (110
    classes from 110 cases, or one 'label not seen' per test case); say so, with the header line and --task regress."""
    problems = []
    for path in files.values():
        if format_of(path, options.get("format", "auto")) == "ts" and path.is_file():
            kind, line = label_declaration(path)
            if kind == "target":
                problems.append(Problem(str(path), line, None, "@targetLabel true", "a regression .ts file: its "
                                        "labels are numeric targets, not class names",
                                        "train it with --task regress, or use a classification .ts file "
                                        "(@classLabel true followed by the class names)"))
    if problems:
        raise DataError(problems, header="cannot read class labels")


NUMERIC_CLASSES = 10  # more classes than this, every one a number with decimals or most seen once or twice: a
# regression target


def warn_numeric_labels(cfg, labels: list[str], rows: int) -> None:
    """Labels that are all numbers, nearly one per row (246 classes from 289 rows): each value became a class,
    and no test row can be right unless it repeats a training value; say so and name --task regress."""
    if len(labels) <= NUMERIC_CLASSES or cfg.data.dataset:
        return
    try:
        numbers = [float(x) for x in labels]
    except ValueError:
        return
    # decimals (2.7, 2.8, ...), or whole numbers with fewer than 3 rows a class: a quantity, not class codes
    if all(math.isfinite(x) for x in numbers) and (any(not x.is_integer() for x in numbers)
                                                   or len(labels) >= rows / 3):
        warnings.warn(f"the label column {cfg.data.label_column!r} holds numbers, {len(labels)} distinct values among "
                      f"{rows} training rows, and each became a class; if it is a quantity to predict, train with "
                      "--task regress", UserWarning, stacklevel=2)


def class_balance(cfg, counts: list[int]) -> dict:
    """What `train.class_balance` resolves to for these training class counts (report["class_balance"])."""
    seen = [c for c in counts if c > 0]
    ratio = max(seen) / min(seen) if seen else 1.0
    kind = cfg.train.class_balance
    if kind == "auto":
        kind = "logit_adjust" if ratio >= IMBALANCED else "none"
        reason = f"auto: classes {ratio:.0f}:1" if kind != "none" else "auto: classes balanced enough"
    else:
        reason = f"train.class_balance {kind}"
    return {"kind": kind, "ratio": ratio, "reason": reason}


def frontend_choice(cfg, prep):
    """What `model.frontend` means for this preprocessing (its input kind and median training length)."""
    from rnnkit.models.frontend import choose_frontend

    try:
        return choose_frontend(cfg.model.frontend, cfg.model.frontend_reduction, token_input=prep.kind == "text",
                               median_length=getattr(prep, "median_length", None))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_model(cfg, prep):
    """The classifier; it reads documents in windows when data.long_sequences resolved to window or hierarchical
    for this run (saved with the preprocessing, so `predict` / `evaluate` rebuild the same model)."""
    from rnnkit.data.longseq import WINDOWED
    from rnnkit.data.pipeline import windows_for
    from rnnkit.models.classifier import build_classifier

    mode = getattr(prep, "long_sequences", "truncate")
    windows = windows_for(cfg, mode) if mode in WINDOWED else None
    model = build_classifier(dataclasses.asdict(cfg.model), num_classes=len(prep.labels),
                             vocab_size=len(prep.vocab) if prep.vocab is not None else None,
                             num_features=prep.num_features, median_length=getattr(prep, "median_length", None),
                             **({"window_length": windows.length, "window_stride": windows.stride,
                                 "window_combine": windows.combine} if windows is not None else {}))
    counts = getattr(prep, "class_counts", None)
    if counts and class_balance(cfg, counts)["kind"] == "logit_adjust":
        share = torch.tensor(counts, dtype=torch.float32).clamp(min=1) / max(sum(counts), 1)
        # not saved with the weights: predictions use the plain logits, and a resume prepares the counts again
        model.register_buffer("class_log_prior", share.log(), persistent=False)
    return model


def forward(model, batch: Batch, step=None) -> torch.Tensor:
    """(B, K) logits; in training (`step` not None) with a logit-adjusted loss, plus the log class shares, so that
    the plain logits (evaluation, predictions) learn the class-balanced decision."""
    logits = model(batch.inputs, batch.lengths, batch.mask)
    prior = getattr(getattr(model, "module", model), "class_log_prior", None)  # under DDP: the wrapped module's
    return logits if step is None or prior is None else logits + prior.to(logits.dtype)


def loss(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int]:
    return F.cross_entropy(logits.float(), batch.targets), len(batch)


def predict(model, batch: Batch, logits: torch.Tensor, cfg) -> list[torch.Tensor]:
    """Per example: the class probabilities (K,)."""
    return list(torch.softmax(logits.float(), -1).cpu())


def score(preds: list[torch.Tensor], examples, prep, cfg) -> dict:
    pred = torch.stack([p.argmax() for p in preds])
    target = stacked_targets(examples)
    return {"accuracy": M.accuracy(pred, target), "macro_f1": M.macro_f1(pred, target, len(prep.labels)),
            **M.class_report(pred, target, prep.labels.labels)}


def baselines(data, cfg, split: str = "test") -> dict:
    """The majority-class baseline on a split (test, or val): every sequence gets the most frequent training
    label."""
    train = stacked_targets(data.datasets["train"].examples)
    majority = int(torch.bincount(train, minlength=len(data.prep.labels)).argmax())
    test = data.datasets[split].examples
    if not test:
        return {}
    target = stacked_targets(test)
    pred = torch.full_like(target, majority)
    return {"majority_class": {"label": data.prep.labels.labels[majority], "accuracy": M.accuracy(pred, target),
                               "macro_f1": M.macro_f1(pred, target, len(data.prep.labels))}}


def load_inference(cfg, prep, path, with_targets: bool, run_dir=None):
    if with_targets:  # a regression .ts file to evaluate: the train-time refusal, not a 'label not seen' per case
        refuse_regression_ts({"data": Path(path)}, {"format": cfg.data.format})
    dataset, records, _ = load_file_for_inference(cfg, prep, Path(path), with_targets=with_targets, run_dir=run_dir)
    return dataset, records


def write_predictions(output: Path, records, preds: list[torch.Tensor], prep, cfg) -> int:
    """CSV (default) or JSONL: id, file, line, prediction, probability, one p_<label> per class."""
    return write_class_predictions(output, records, [p.numpy() for p in preds], prep.labels.labels)


def uniform_class_loss(prep) -> float:
    """Cross-entropy of a uniform guess over the C labels: ln C (the doctor's yardstick)."""
    return math.log(len(prep.labels))


def accuracy_score(metrics: dict) -> float:
    """The estimator's `score`: accuracy."""
    return metrics["accuracy"]


class ClassifierHooks(Hooks):
    """The estimator of classification: labels in y's dtype, `classes_`, `predict_proba`, accuracy."""

    _y_noun = "labels"
    _fitted_names = ("classes_", "_labels")

    def _kind(self) -> str | None:
        return "classifier"

    def _in_memory(self) -> bool:
        return True

    def _targets(self, X: list, y):
        self._check_length(X, y)
        labels = labels_of(y)
        if len(labels[0]) < 2:
            raise InputError(f"y has one class only ({labels[0].tolist()!r}); a classifier needs at least 2 classes.")
        return labels

    def _target_row(self, targets, i: int, cfg: Config) -> dict:
        names, index = targets[1], targets[2]
        return {cfg.data.label_column: names[index[i]]}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        classes, names = targets[:2] if targets is not None else self._run_classes(run_dir)
        return {"classes_": classes, "_labels": names}

    @staticmethod
    def _run_classes(run_dir: Path) -> tuple[np.ndarray, list[str]]:
        """classes_ of a fit on files: the run's labels (strings), sorted as scikit-learn sorts them."""
        classes = np.unique(np.array(LabelMap.load(run_dir / LABELS_FILE).labels, dtype=str))
        return classes, classes.tolist()

    @staticmethod
    def _read_classes(out: Path) -> tuple[list[dict], list[str]]:
        """Per sequence: {label string: probability} and the predicted label string."""
        rows = prediction_rows(out)
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


ESTIMATOR_DOC = """A scikit-learn classifier that trains an rnnkit classification model (task classify) on whole
    sequences.

    Args:
        out: run directory. None: a temporary one that the estimator owns and removes when it is refit or
            garbage-collected (a pickle carries the run with it). A fixed `out` is replaced by each fit,
            as scikit-learn's `fit` starts over, but only a run an estimator wrote there: another run
            (e.g. from the CLI) is refused and files that were there before are kept. Estimators that
            fit in parallel (n_jobs > 1) need out=None.
        **params: config overrides, e.g. model__cell="gru", train__max_epochs=20, train__seed=1,
            train__threads=2. Progress output is off unless train__progress is given.

    `fit(X, y)`: X a list of strings / token lists / (T,) or (T, C) arrays (lengths may differ), an (n, T) or
    (n, T, C) array, or a DataFrame (see `rnnkit.estimator`); y one label per sequence (ints, strings, ...); or
    files (`fit(train=..., val=..., test=...)`, `fit(dataset=...)`). Attributes after `fit`: `run_dir_`,
    `summary_` (the run's summary.json), `classes_` (y's labels, sorted, in y's dtype; strings for a file fit).
    """


IMBALANCED = 3.0  # largest / smallest training class at or above this: macro-F1 picks the best epoch (auto)


RARE_IN_VAL = 10  # macro-F1 picks the best epoch only when validation holds this many of its rarest class


SMALL_VAL = 20  # numeric sequences: a validation split of fewer rows does not choose the epoch (FIT_LOSS does)


def monitor(cfg, data) -> tuple[str, str]:
    """`train.monitor=auto`: for numeric sequences whose validation split holds fewer than `SMALL_VAL` rows, the
    loss over the training rows in evaluation mode (`FIT_LOSS`: training runs until the fit stops improving, as
    FCN / ResNet / InceptionTime are trained on the UCR archive; 3 validation rows only add noise to the choice);
    else macro-F1 when the training classes are imbalanced (the loss and accuracy then reward the majority class)
    and validation holds enough of the rare classes to measure it; else the loss, a smoother guide than accuracy
    on a small validation split (measured: BENCHMARKS.md, "Model selection", "Small sets of long series")."""
    val_rows = len(data.datasets["val"])
    if data.prep.kind != "text" and val_rows < SMALL_VAL:
        return FIT_LOSS, (f"validation holds {val_rows} rows (< {SMALL_VAL}), too few to choose an epoch on; "
                          "train.monitor=loss chooses on them anyway")
    train = torch.bincount(stacked_targets(data.datasets["train"].examples),
                           minlength=len(data.prep.labels))
    seen = train[train > 0]
    ratio = float(seen.max() / seen.min()) if seen.numel() else 1.0
    if ratio < IMBALANCED:
        return "loss", "balanced classes: the loss, smoother than accuracy"
    val = data.datasets["val"].examples
    rare = int(torch.bincount(stacked_targets(val), minlength=len(data.prep.labels))[train > 0].min()) if val else 0
    if rare < RARE_IN_VAL:
        return "loss", (f"classes imbalanced {ratio:.0f}:1, but validation holds only {rare} of the rarest class, "
                        f"too few for macro-F1 (>= {RARE_IN_VAL})")
    return "macro_f1", f"the training classes are imbalanced, {ratio:.0f}:1 (largest to smallest)"


ONNX = sequence_spec("logits", "probabilities", lambda prep: {"labels": list(prep.labels.labels)})

TASK = Task(name="classify", prepare=prepare, load_prep=Preprocessing.load, build_model=build_model,
            collate=collate, forward=forward, loss=loss, predict=predict, score=score,
            load_inference=load_inference, write_predictions=write_predictions, baselines=baselines,
            metric_names=("accuracy", "macro_f1"), chance_loss=uniform_class_loss,
            baseline=("accuracy", "majority_class", True), headline_score=accuracy_score,
            uses_pooling=True, estimator=EstimatorSpec("SequenceClassifier", ClassifierHooks, ESTIMATOR_DOC),
            monitor=monitor, long_sequences=("truncate", "window", "hierarchical"), onnx=ONNX,
            title="sequence classification", hub_tasks=("text-classification", "time-series-classification"),
            rows_independent=True, disk_storage=True)
