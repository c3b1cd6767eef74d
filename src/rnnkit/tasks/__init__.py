"""Task families as bundles of functions (composition, not a class tree).

The training loop, `evaluate`, `predict`, the doctor, the report and the CLI only ever call the
functions and read the attributes of a `Task`; nothing outside this package names a family.

A family is one module here (a public name: modules whose name starts with `_` are helpers, not
families) that defines `TASK = Task(...)`. It is found by listing this package (`pkgutil`, without
importing anything), so adding `tasks/regress.py` needs no edit anywhere else. At import the module
also registers what it owns elsewhere:

* its config section, if it has settings of its own: the section dataclass lives in the module and
  `rnnkit.config.register_section(name, cls, task=..., choices=..., ranges=..., architecture=...)`
  adds it (then `cfg.<name>` exists on every Config, and `rnnkit config --task NAME` prints it);
* its built-in data sets: `rnnkit.data.datasets.register(BuiltinDataset(..., task=NAME))`.

`rnnkit.config` imports this package lazily (`config.load_families`), which imports every family
through `load_all`, so a config never lacks a family's section whichever entry point ran first.
A family defined elsewhere (a plugin, a test) can be added with `register(task)`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from rnnkit.errors import ConfigError

DEFAULT_TASK = "classify"  # the task of a config that names none


@dataclass(frozen=True)
class Task:
    """What a task family must provide.

    Attributes:
        name: the `--task` name.
        prepare: (cfg, run_dir|None) -> PreparedData. Reads, validates (DataError before training),
            splits, fits preprocessing on train only, saves it to run_dir, encodes every split.
        load_prep: (run_dir) -> the preprocessing object `prepare` saved (vocabularies, scalers...).
        build_model: (cfg, prep) -> nn.Module.
        collate: (list[Example]) -> Batch. Dynamic padding of inputs AND targets.
        forward: (model, batch, step) -> outputs. `step` is the optimizer step in training (for
            schedules such as teacher forcing) and None in evaluation.
        loss: (outputs, batch) -> (mean loss over real targets, number of real targets).
        predict: (model, batch, outputs, cfg) -> list of per-example predictions (eval mode).
        score: (predictions, examples, prep, cfg) -> dict of metrics for summary.json.
        load_inference: (cfg, prep, path, with_targets, run_dir|None) -> (SequenceDataset, records).
        write_predictions: (output path, records, predictions, prep, cfg) -> rows written.
        baselines: (PreparedData, cfg, split) -> dict for summary["metrics"][split]["baselines"] (split "test",
            and "val" where it has rows: the doctor compares both), or None; a function without `split`
            (data, cfg) is called for test only.
        metric_names: metrics printed on the epoch line (first is the headline).
        defaults: (dataset name|None, user-set flat keys) -> nested dict of config defaults for this
            task (and data set), layered under the user's file and --set by `config.resolve`; or None.
        chance_loss: (prep) -> the loss of a prediction that knows nothing (uniform over C classes:
            ln C; zero in z-scored units: about 1), the doctor's yardstick for the loss; or None.
        baseline: (test metric, key in the test metrics' "baselines", higher is better): the doctor's
            "Predictions sensible?" check passes when the model beats that trivial baseline; or None.
        config_notes: "section.key" -> the comment `rnnkit config --task TASK` prints for that key instead of the
            generic one (forecasting: data.val is not a file it reads, data.id_column is forecast.series_column).
        baseline_trivial: the baseline ignores the input (the majority class, the training mean), so a model
            must beat it by a margin (a tenth of its distance to a perfect score) to pass; False for a baseline
            that is a real method (the naive forecast), which any gain beats.
        baseline_metrics: further metrics of the split the model must beat the baseline on too (forecast: mase, the
            scale-free figure, beside mse); a value that is not a finite number is left out.
        file_baselines: (SequenceDataset from load_inference with targets, prep, cfg) -> the `baselines` dict for a
            file `evaluate` scores (the same rules on the same rows), or None where the baseline needs the training
            data.
        baseline_alternatives: other keys of the metrics' "baselines" that are the same kind of yardstick (the
            seasonal naive forecast beside the naive one): the doctor compares with the strongest of them present
            on each metric, so a model that beats the weaker rule but not the stronger one is not sensible.
        judge_predictions: (test metrics dict) -> (verdict "pass"|"fail"|"unknown", detail, evidence dict):
            that check for a family without a trivial `baseline` (seq2seq: some sequence generated
            exactly); or None. With neither, the check is "unknown".
        headline_score: (metrics dict of `api.evaluate`) -> float, higher is better: what `Estimator.score`
            returns (accuracy, 1 - WER, -MSE); or None (the estimator's `score` then refuses).
        label_noun: what the run's `num_classes` labels are called in messages ("classes", "tags").
        uses_pooling: the model pools the encoder states into one vector (`model.pooling` applies and is
            shown in the model's description).
        describe_model: (cfg) -> text appended to the report's model line (the family's own settings,
            e.g. ", CRF on, char features off"); or None.
        metric_notes: notes printed under the report's metrics table (e.g. the loss's units).
        long_sequence_advice: the doctor's advice when training sequences are very long; () for the
            generic advice (truncate with data.max_length).
        long_sequences: the `data.long_sequences` modes the family trains: ("truncate",), or ("truncate",
            "window") for a many-to-one family whose model reads a document in windows (`auto` may pick either;
            `rnnkit.data.longseq.choose_long_sequences`). Another forced mode is a config error at start.
        monitor: (cfg, PreparedData) -> (validation metric name, why) that `train.monitor=auto` selects on (the
            family's headline); or None (the loss).
        search_advice: the doctor's advice, after a larger budget, when the family's protocol search (summary
            data.auto) found nothing better than the seasonal-naive baseline on validation; or ().
        estimator: the family's scikit-learn estimator (`tasks._estimating.EstimatorSpec`: its public name and
            the hooks for in-memory X, y), built by `rnnkit.estimator`; or None (`Estimator(task=...)` on files).
        onnx: the family's ONNX export (`tasks._onnx.OnnxSpec`), read by `rnnkit export`; or None (not exported).
        title: what the family does, in words, for the model card ("sequence classification").
        hub_tasks: the Hugging Face Hub task names of the model card for (text, numeric) input; None: none fits.
        test_samples: (model, PreparedData, test predictions, cfg, device) -> list of the report's panels of the
            test split (sample predictions, a heat map, predicted against actual...), in the family-neutral
            vocabulary of `rnnkit.training.samples`, written at the end of training as DIR/test_samples.json
            and drawn by `rnnkit report`; small and bounded (a few hundred points); or None (nothing to show).
        rows_independent: each record of an inference file is predicted on its own, from its own row(s), so
            `rnnkit predict` may read, predict and write a table file in chunks (`rnnkit.data.chunked`); False
            for a family whose predictions need the whole file (a forecast reads each series' history).
        disk_storage: the family's `prepare` honours `data.storage: disk` (`rnnkit.data.spill`: text rows' token
            ids in memory-mapped files) and `stream` (`rnnkit.data.rowstream`: a Parquet or Arrow IPC file read by
            row groups);
            for any other family those settings are a config error at start.
        loss_count: (collated Batch) -> the number `loss` divides by for that batch (a tagger's real tokens), from
            the batch alone; or None: its rows. The loop weighs the pieces of a batch cut by
            `train.max_batch_positions` by it, so that their gradients add up to the whole batch's mean.
    """

    name: str
    prepare: Callable
    load_prep: Callable
    build_model: Callable
    collate: Callable
    forward: Callable
    loss: Callable
    predict: Callable
    score: Callable
    load_inference: Callable
    write_predictions: Callable
    baselines: Callable | None = None
    metric_names: tuple[str, ...] = ()
    defaults: Callable | None = None
    chance_loss: Callable | None = None
    baseline: tuple[str, str, bool] | None = None
    baseline_trivial: bool = True
    baseline_alternatives: tuple[str, ...] = ()
    baseline_metrics: tuple[str, ...] = ()
    file_baselines: Callable | None = None
    config_notes: dict[str, str] = field(default_factory=dict)
    judge_predictions: Callable | None = None
    headline_score: Callable | None = None
    label_noun: str = "classes"
    uses_pooling: bool = False
    describe_model: Callable | None = None
    metric_notes: tuple[str, ...] = ()
    long_sequence_advice: tuple[str, ...] = ()
    long_sequences: tuple[str, ...] = ("truncate",)
    search_advice: tuple[str, ...] = ()
    estimator: object = None
    monitor: Callable | None = None
    onnx: object = None
    title: str = ""
    hub_tasks: tuple[str | None, str | None] = (None, None)
    test_samples: Callable | None = None
    rows_independent: bool = False
    disk_storage: bool = False
    loss_count: Callable | None = None


_REGISTERED: dict[str, Task] = {}  # families added with `register` (not modules of this package)


def _module_names() -> list[str]:
    """The family modules of this package, by name (found without importing them)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and not m.ispkg)


def available() -> list[str]:
    """Every family's name: the modules of this package (sorted), then those added with `register`."""
    names = _module_names()
    return names + [n for n in _REGISTERED if n not in names]


def register(task: Task) -> Task:
    """Add a family that is not a module of this package (a plugin, a test); returns `task`.

    Its config section, if any, is registered apart, with `rnnkit.config.register_section`.

    Raises:
        ValueError: a module of this package has that name (a programming error).
    """
    if task.name in _module_names():
        raise ValueError(f"task {task.name!r} is a module of rnnkit.tasks already")
    _REGISTERED[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The family `name` (its module's `TASK`, read at each call, so a test may replace it).

    Raises:
        ConfigError: no such family; the message lists the families.
        TypeError: the module defines no `TASK` Task (a programming error).
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if not isinstance(name, str) or name not in _module_names():
        raise ConfigError(f"unknown task {name!r}; tasks: {', '.join(available())}.")
    task = getattr(importlib.import_module(f"{__name__}.{name}"), "TASK", None)
    if not isinstance(task, Task):
        raise TypeError(f"{__name__}.{name} is a family module but defines no TASK = Task(...); a helper "
                        "module's name starts with '_'.")
    return task


def load_all() -> None:
    """Import every family, so that each registers its config section and built-in data sets."""
    for name in _module_names():
        get_task(name)
