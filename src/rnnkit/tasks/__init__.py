"""Task families as bundles of functions (composition, not a class tree).

The training loop, `evaluate`, `predict` and the CLI only ever call the functions of a `Task`;
a family (classify, tag, seq2seq, forecast) lives in its own module here and registers one
`Task`. To add a family: write its module with the functions below and add it to `_FAMILIES`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from rnnkit.errors import ConfigError


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
        baselines: (PreparedData, cfg) -> dict for summary["metrics"]["test"]["baselines"], or None.
        metric_names: metrics printed on the epoch line (first is the headline).
        chance_loss: (prep) -> the loss of a prediction that knows nothing (uniform over C classes:
            ln C; zero in z-scored units: about 1), the doctor's yardstick for the loss; or None.
        defaults: (dataset name|None, user-set flat keys) -> nested dict of config defaults for this
            task (and data set), layered under the user's file and --set by `config.resolve`; or None.
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


_FAMILIES = {"classify": "rnnkit.tasks.classify", "tag": "rnnkit.tasks.tag", "seq2seq": "rnnkit.tasks.seq2seq",
             "forecast": "rnnkit.tasks.forecast"}


def available() -> list[str]:
    """Families whose module is present (a family lands when its module does)."""
    return [name for name, mod in _FAMILIES.items() if importlib.util.find_spec(mod) is not None]


def get_task(name: str) -> Task:
    if name not in _FAMILIES or importlib.util.find_spec(_FAMILIES[name]) is None:
        raise ConfigError(f"unknown task {name!r}; tasks: {', '.join(available())}.")
    return importlib.import_module(_FAMILIES[name]).TASK


def load_all() -> None:
    """Import every family, so that each registers its built-in data sets."""
    for name in available():
        get_task(name)


