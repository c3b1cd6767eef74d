"""Sequence regression (`--task regress`, many-to-one): one or several real-valued targets per sequence.

Inputs are read as for classification (`rnnkit.data.readers`: numeric sequences from JSONL / CSV /
Parquet / Arrow / .ts, long format, or text); the target is a numeric column. One target: the column
`data.label_column` (default "label", as for classification, and the value after the last ':' of a
regression .ts file, `@targetLabel true`). Several targets: `regress.target_columns: [a, b]`, which
then wins over `data.label_column` (a list cannot live in that one-name key). A target that is not a
finite number (text, empty, NaN, inf) is a row problem before training, named by file:line, column
and value, under the usual bad-row policy (`data.bad_rows`, rejects.jsonl).

Splits the files do not give are carved out of train at random (seeded by `data.split_seed`; every
target value is its own "class", so the classifier's stratified split does not apply), recorded in
splits.json. Inputs are encoded as for classification (vocabulary or per-channel z-score, fitted on
train). Targets are z-scored per target with the training split's mean and standard deviation; the
loss is the MSE in those units (the training objective; about 1 for a model that knows nothing),
and every metric (mse, rmse, mae, r2, averaged over the targets) and every prediction is in the
targets' own units. `summary.json` carries the training-mean baseline (every test sequence gets the
training targets' mean) under `metrics.test.baselines.training_mean`.

The model is the classifier's (input layer, `RNNEncoder`, pooling) with a linear output of one unit
per target; its bias starts at 0, the training mean in z-scored units, i.e. at the baseline.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.config import Config, register_section
from rnnkit.data.cells import MISSING, is_blank
from rnnkit.data.collate import Batch, SequenceDataset, collate
from rnnkit.data.datasets import BuiltinDataset, get_builtin, register
from rnnkit.data.longseq import cut_counts
from rnnkit.data.outputs import write_value_predictions
from rnnkit.data.pipeline import (
    SPLITS_FILE,
    STANDARDIZER_FILE,
    TINY_SPLIT,
    VOCAB_FILE,
    PreparedData,
    encode_dataset,
    fit_preprocessing,
    input_files,
    median_length,
    missing_split_fractions,
    reader_options,
    truncation_for,
)
from rnnkit.data.readers import read_records
from rnnkit.data.records import RAW_LIMIT, ReadResult, Record, raw_texts
from rnnkit.data.recordstore import Records, lengths_of, read_file
from rnnkit.data.splits import Splits, save_split
from rnnkit.data.standardize import Standardizer
from rnnkit.data.tables import TABLE_FORMATS, format_of, iter_tables, load_table
from rnnkit.data.ts_format import label_declaration
from rnnkit.data.validate import validate_splits
from rnnkit.data.vocab import Vocab
from rnnkit.errors import ConfigError, DataError, Problem, shorten
from rnnkit.tasks import Task
from rnnkit.tasks._estimating import EstimatorSpec, Hooks, InputError, prediction_rows, r2
from rnnkit.tasks._onnx import sequence_spec
from rnnkit.tasks._samples import regression_panels
from rnnkit.tasks.classify import frontend_choice

NAME = "regress"
PREP_FILE = "regress.json"
CONSTANT_TARGET = 1e-12  # a training target whose std is below this (relative to its scale) has nothing to learn


@dataclass
class RegressConfig:
    """Sequence regression (task regress)."""

    target_columns: list[str] | None = None  # the numeric target column(s); null: the one column data.label_column
    # (a .ts file: its @targetLabel value). Several: one model output and one prediction_<name> column each


register_section(NAME, RegressConfig, task=NAME, architecture=("target_columns",))

# Covid3Month (TSER archive, Tan et al. 2021): sktime ships the files; rnnkit reads them and never imports sktime.
register(BuiltinDataset(
    name="covid3month", task=NAME, package="sktime", install="pip install --no-deps sktime",
    description="TSER Covid3Month: daily confirmed COVID-19 cases of a country over 3 months (84 steps, 1 channel); "
                "predict its death rate on 1 April 2020 (140 train / 61 test series, one real target)",
    reference="predicting the training mean: test RMSE 0.0447 (computed from the files); compare with the TSER "
              "archive's published results (Tan et al. 2021)",
    data_files={"train": "datasets/data/Covid3Month/Covid3Month_TRAIN.ts",
                "test": "datasets/data/Covid3Month/Covid3Month_TEST.ts"},
    reader_options={"format": "ts"},
))


# --------------------------------------------------------------------------- preprocessing


@dataclass
class RegressPrep:
    """What turns records into model inputs and outputs back into units; fitted on train, saved as DIR/regress.json
    (plus vocab.json or standardizer.json). `kind`, `vocab`, `standardizer` and `num_features` are what
    `rnnkit.data.pipeline.encode_records` reads."""

    kind: str  # "text" | "numeric"
    target_columns: list[str]
    target_mean: list[float]  # per target, over the training split
    target_std: list[float]
    vocab: Vocab | None = None
    standardizer: Standardizer | None = None
    num_features: int | None = None
    median_length: float | None = None  # of the training split after truncation (the model's front-end rule)

    @property
    def num_targets(self) -> int:
        return len(self.target_columns)

    def to_units(self, z: np.ndarray) -> np.ndarray:
        """(..., K) z-scored values -> the targets' own units (float64)."""
        return np.asarray(z, dtype=np.float64) * np.asarray(self.target_std) + np.asarray(self.target_mean)

    def to_z(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - np.asarray(self.target_mean)) / np.asarray(self.target_std)

    def save(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        if self.vocab is not None:
            self.vocab.save(run_dir / VOCAB_FILE)
        if self.standardizer is not None:
            self.standardizer.save(run_dir / STANDARDIZER_FILE)
        d = {"kind": self.kind, "num_features": self.num_features, "median_length": self.median_length,
             "target_columns": self.target_columns,
             "target_mean": [float(v) for v in self.target_mean], "target_std": [float(v) for v in self.target_std]}
        (run_dir / PREP_FILE).write_text(json.dumps(d, indent=1) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> RegressPrep:
        run_dir = Path(run_dir)
        d = json.loads((run_dir / PREP_FILE).read_text())
        return cls(kind=d["kind"], num_features=d["num_features"], median_length=d.get("median_length"),
                   target_columns=list(d["target_columns"]),
                   target_mean=list(d["target_mean"]), target_std=list(d["target_std"]),
                   vocab=Vocab.load(run_dir / VOCAB_FILE) if (run_dir / VOCAB_FILE).exists() else None,
                   standardizer=(Standardizer.load(run_dir / STANDARDIZER_FILE)
                                 if (run_dir / STANDARDIZER_FILE).exists() else None))


def target_columns(cfg: Config) -> list[str]:
    """The target columns: `regress.target_columns`, else the one column `data.label_column`."""
    names = cfg.regress.target_columns
    if names is None:
        return [cfg.data.label_column]
    names = [str(n) for n in names]
    if not names:
        raise ConfigError("regress.target_columns is empty; name at least one numeric column, or set it to null "
                          "to use data.label_column.")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"regress.target_columns names {dup} more than once; list each target column once.")
    return names


# --------------------------------------------------------------------------- reading targets

_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_TARGET_FIX = "write the target as a plain number (e.g. 0.25, -3, 1e-4), or remove the row"


def _number(column: str, v: Any) -> tuple[float | None, tuple[str | None, str, str, str] | None]:
    """A target cell -> (its float, None) or (None, issue (column, value, rule, fix))."""
    if v is MISSING or is_blank(v):
        shown = "" if v is MISSING or v is None else shorten(v)
        return None, (column, shown, "missing target value", _TARGET_FIX)
    if isinstance(v, (bool, list, dict)):
        shown = shorten(json.dumps(v, default=str))
        return None, (column, shown, "a regression target must be one number", _TARGET_FIX)
    text = str(v).strip()
    try:
        x = float(v) if not isinstance(v, str) else float(text)
    except (TypeError, ValueError, OverflowError):
        fix = ("write the decimal separator as a point (e.g. 0.5, not 0,5)" if _DECIMAL_COMMA.match(text)
               else _TARGET_FIX)
        return None, (column, shorten(text), "a regression target must be a number", fix)
    if not math.isfinite(x):
        return None, (column, shorten(text), "a regression target must be a finite number (not NaN or infinite)",
                      "replace the value with a real number (or impute it in the source data), or remove the row")
    return x, None


def _read(path: Path, options: dict, targets: list[str], *, require: bool, chunked: bool = False) -> ReadResult:
    """Read one file with the classifier's readers; with `require`, every record gets `extra["targets"]`
    (float64, one per target) or, when a target is not a finite number, becomes a bad row with its problems.
    `chunked` (a training file of one target): read in chunks into a `RecordStore` where the file allows it
    (`rnnkit.data.recordstore.read_file`), the targets then held as one array in the store."""
    path = Path(path)
    file = str(path)
    fmt = format_of(path, options.get("format", "auto"))
    opts = dict(options, label_column=targets[0])
    table = None
    if fmt == "ts" and len(targets) > 1:
        raise ConfigError(f"{file}: a .ts file holds one target per case (after the last ':'); "
                          f"regress.target_columns names {len(targets)}.")
    once = path.exists() and not path.is_file() and not path.is_dir()  # a pipe or FIFO: it can be read only once
    if fmt in TABLE_FORMATS and ((len(targets) > 1 and path.is_file()) or once):
        # the whole table: the other targets' cells, or a pipe's rows kept for the rejects' raw text (`_raw_text`)
        table = load_table(path, file, fmt, delimiter=options.get("delimiter", "auto"))
    if table is not None and len(targets) > 1:
        if opts.get("feature_columns") is None and opts.get("id_column") and opts.get("time_column"):
            # long format: the other target columns are not input channels
            special = {opts["id_column"], opts["time_column"], *targets}
            opts["feature_columns"] = [c for c in table.columns if c not in special]
            if not opts["feature_columns"]:
                raise DataError([Problem(file, None, None, ", ".join(table.columns), "no feature columns left "
                                         "besides the id, time and target columns",
                                         "add at least one value column, or name them with "
                                         "--set data.feature_columns=[...]")], header=f"cannot read {file}")
        missing = [c for c in targets[1:] if c not in table.columns] if require else []
        if missing:
            found = shorten(", ".join(repr(c) for c in table.columns), 300)
            raise DataError([Problem(file, None, c, c, f"target column not found; columns found: {found}",
                                     "set regress.target_columns to columns of this file, or add the column")
                             for c in missing], header=f"cannot read {file}")
    if chunked and table is None:
        result = read_file(path, **opts, require_label=require)
    else:
        result = read_records(path, **opts, require_label=require, table=table)
    if not require:
        return result
    kind, line = label_declaration(path) if fmt == "ts" and path.is_file() else (None, None)
    if kind == "class":
        raise DataError([Problem(file, line, None, "@classLabel true", "a classification .ts file, not a "
                                 "regression one: its labels are class names",
                                 "use a regression .ts file (@targetLabel true), or train it with --task classify")],
                        header=f"cannot read targets from {file}")
    rows = {r.line: r for r in table.rows} if table is not None else {}
    groups: dict[str, list] = {}
    if table is not None and opts.get("id_column"):
        for r in table.rows:
            sid = r.fields.get(opts["id_column"], MISSING)
            if sid is not MISSING and not is_blank(sid):
                groups.setdefault(str(sid).strip(), []).append(r)
    good, problems, bad, kept = [], [], {}, []
    held = isinstance(result.records, Records)
    for position, rec in enumerate(result.records.headers() if held else result.records):  # (no payload needed)
        values, issues = [], []
        for k, col in enumerate(targets):
            if k == 0:
                cells = [(rec.line, rec.extra.get("raw_label", rec.label))]
            elif "sequence_id" in rec.extra:
                cells = [(r.line, r.fields.get(col, MISSING)) for r in groups.get(rec.extra["sequence_id"], [])]
            else:
                cells = [(rec.line, rows[rec.line].fields.get(col, MISSING))]
            parsed = []
            for line, cell in cells:
                x, issue = _number(col, cell)
                if issue is not None:
                    issues.append((line, issue))
                parsed.append((line, x))
            if len({x for _, x in parsed}) > 1 and all(x is not None for _, x in parsed):
                (l0, x0), (line, x) = parsed[0], next(lx for lx in parsed if lx[1] != parsed[0][1])
                issues.append((line, (col, repr(x), f"target not constant within sequence "
                                      f"{rec.extra['sequence_id']!r}: {x0!r} on line {l0}, {x!r} on line {line}",
                                      "give every row of a sequence the same target value")))
            values.append(parsed[0][1] if parsed else None)
        if issues:
            problems += [Problem(rec.file, line, col, value, rule, fix, rec.id) for line, (col, value, rule, fix)
                         in issues]
            bad[rec.line] = rec
        elif held:  # rows of a store: their targets go to one column of it
            kept.append((position, values))
        else:
            rec.extra["targets"] = np.asarray(values, dtype=np.float64)
            good.append(rec)
    if held:  # the good rows as a view of the store
        good = result.records.take([k for k, _ in kept])
        good.set_column("targets", np.asarray([v for _, v in kept], dtype=np.float64).reshape(len(kept), len(targets)))
    if not bad:
        return ReadResult(good, result.problems, result.rows, result.bad_rows, result.record_ids)
    raw = _raw_text(path, fmt, table, opts.get("id_column"), bad, delimiter=options.get("delimiter", "auto"))
    return ReadResult(good, result.problems + problems, result.rows, {**result.bad_rows, **raw},
                      {**result.record_ids, **{line: rec.id for line, rec in bad.items()}})


def _raw_text(path: Path, fmt: str, table, id_column: str | None, bad: dict[int, Record], *,
              delimiter: str = "auto") -> dict[int, str]:
    """The raw text of each rejected record (for rejects.jsonl), keyed by its first line: its row, or all the
    rows of a long-format sequence. Read from `table` when there is one, else from the file again in chunks,
    keeping only the rejected records' rows (as much as the rejects file keeps, `RAW_LIMIT`)."""
    if fmt == "ts":
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        return {line: lines[line - 1].rstrip("\r")[:RAW_LIMIT] for line in bad}
    chunks = [table] if table is not None else iter_tables(path, str(path), fmt, delimiter=delimiter)
    of_sequence = {rec.extra["sequence_id"]: line for line, rec in bad.items() if "sequence_id" in rec.extra}
    sequences = set(of_sequence.values())  # their keys: the line of a sequence's first row

    def key_of(row) -> int | None:
        key = of_sequence.get(str(row.fields.get(id_column, "")).strip()) if id_column and of_sequence else None
        return row.line if key is None and row.line in bad and row.line not in sequences else key

    # a sequence's rows one to a line; a row of its own as it was read
    texts = raw_texts(chunks, key_of, lambda key, raw: raw + "\n" if key in sequences and not raw.endswith("\n")
                      else raw)
    return {line: texts.get(line, "") for line in bad}


# --------------------------------------------------------------------------- splits and preparation


def random_split(records: list[Record], *, fractions: dict[str, float], seed: int) -> Splits:
    """Carve the held-out splits named in `fractions` out of `records` at random (numpy's default_rng(seed)).

    Each held-out split gets round(n * fraction) records (halves up), at least 1 while train keeps at least 1;
    every split keeps the records' file order. Returns `Splits` ("train" first) for `save_split`.
    """
    for name, f in fractions.items():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ConfigError(f"split fraction data.{name}_fraction={f!r} must be a number between 0 and 1 "
                              "(exclusive)")
    if sum(fractions.values()) >= 1:
        raise ConfigError(f"split fractions {fractions} add up to 1 or more; train would get nothing")
    n = len(records)
    counts = {name: max(1, math.floor(n * f + 0.5)) if n >= 2 else 0 for name, f in fractions.items()}
    names = list(fractions)
    while n and sum(counts.values()) > n - 1:
        biggest = max(reversed(names), key=lambda k: counts[k])
        counts[biggest] -= 1
    order = np.random.default_rng(seed).permutation(n)
    assign: dict[int, str] = {}
    pos = 0
    for name, k in counts.items():
        for i in order[pos:pos + k]:
            assign[int(i)] = name
        pos += k
    if isinstance(records, Records):  # views of the store, in file order
        where = {name: [i for i in range(n) if assign.get(i, "train") == name] for name in ("train", *fractions)}
        out = Splits({name: records.take(positions) for name, positions in where.items()})
    else:
        out = Splits({"train": [], **{name: [] for name in fractions}})
        for i, r in enumerate(records):
            out[assign.get(i, "train")].append(r)
    out.seed, out.fractions = seed, dict(fractions)
    return out


def read_regress_splits(cfg: Config, run_dir: Path | None) -> tuple[dict[str, list[Record]], dict]:
    """Read every input file (targets checked), apply the bad-row policy; records per split and a report."""
    files, options = input_files(cfg)
    targets = target_columns(cfg)
    results = {split: _read(path, options, targets, require=True, chunked=True) for split, path in files.items()}
    validated = validate_splits(results, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(Path(run_dir) / "rejects.jsonl") if run_dir else None,
                                check_labels=False)  # every target value is new: there is no unseen "class"
    report = {"files": {k: str(v) for k, v in files.items()}, **validated.report, "rejected": validated.rejected}
    return validated.splits, report


def _check_sizes(cfg: Config, splits: dict[str, list[Record]], files: dict) -> dict[str, list[Record]]:
    train_file = str(files.get("train", cfg.data.train))
    column = target_columns(cfg)[0]
    if len(splits.get("train", [])) < 2:
        raise DataError([Problem(train_file, None, None, f"{len(splits.get('train', []))} rows",
                                 "regression needs at least 2 training sequences (to fit the targets' mean and "
                                 "spread)", "add rows (dozens at least), or repair the rejected ones")],
                        header="the training data cannot train a regression model")
    if not splits.get("val"):
        if "val" not in splits:
            raise ConfigError("no validation data: give --val FILE or set data.val_fraction > 0 "
                              "(early stopping needs a validation split).")
        raise DataError([Problem(str(files.get("val", train_file)), None, column, "0 rows",
                                 "the validation split is empty", "add rows, or give a validation file with --val")],
                        header="there is no validation data (early stopping needs it)")
    out = dict(splits)
    if "test" in out and not out["test"]:
        warnings.warn("the test split is empty: training goes on without test metrics; add rows, or give a test "
                      "file with --test", UserWarning, stacklevel=3)
        del out["test"]
    tiny = [f"{name} has only {len(recs)} row{'s' if len(recs) != 1 else ''}" for name, recs in out.items()
            if 0 < len(recs) < TINY_SPLIT]
    if tiny:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in out.items())
        warnings.warn(f"tiny splits ({sizes}): {'; '.join(tiny)}; their loss and metrics are mostly noise. Add rows",
                      UserWarning, stacklevel=3)
    return out


def fit_targets(cfg: Config, train: list[Record], file: str) -> tuple[list[float], list[float]]:
    """Per-target mean and population std of the training split (float64).

    Raises:
        DataError: a target is (nearly) constant in the training data: there is nothing to learn.
    """
    y = (train.column("targets") if isinstance(train, Records)  # (N, K)
         else np.stack([r.extra["targets"] for r in train]))
    mean, std = y.mean(axis=0), y.std(axis=0)
    names = target_columns(cfg)
    flat = [k for k in range(y.shape[1]) if std[k] <= CONSTANT_TARGET * max(1.0, abs(mean[k]))]
    if flat:
        raise DataError([Problem(file, None, names[k], repr(float(mean[k])),
                                 f"every training target of column {names[k]!r} is {float(mean[k])!r} ({len(train)} "
                                 "rows): there is nothing to learn", "check that the target column is the right one "
                                 "(data.label_column / regress.target_columns), or add rows with other values")
                         for k in flat], header="the training targets do not vary")
    return [float(v) for v in mean], [float(v) for v in std]


def encode(records: list[Record], prep: RegressPrep, cfg: Config, *, with_targets: bool,
           sequence_column: str | None) -> tuple[SequenceDataset, int]:
    """Records -> a columnar dataset: inputs as for classification; target (K,) float32 z-scored, and the target in
    its own units in `extra["y"]` (float64, for the metrics)."""

    def target_of(rec: Record):
        y = rec.extra["targets"]
        return torch.from_numpy(prep.to_z(y).astype(np.float32)), {"y": y}  # (K,), (K,)

    return encode_dataset(records, prep, truncation=truncation_for(cfg), sequence_column=sequence_column,
                          target_of=target_of if with_targets else None, with_targets=False)


def prepare(cfg: Config, run_dir: Path | None = None) -> PreparedData:
    """Read, check the targets (DataError before training), split, fit input and target scaling on train, encode.

    Nothing but a rejects file (--bad-rows skip) is written to `run_dir` before every check has passed.
    """
    records, report = read_regress_splits(cfg, run_dir)
    files = report["files"]
    fractions = missing_split_fractions(cfg, records)
    carved = None
    if fractions:
        carved = random_split(records["train"], fractions=fractions, seed=cfg.data.split_seed)
        records = {**records, **carved}
    records = _check_sizes(cfg, records, files)
    base = fit_preprocessing(cfg, records["train"])  # the vocabulary or input standardizer, on train only
    mean, std = fit_targets(cfg, records["train"], str(files["train"]))
    prep = RegressPrep(kind=base.kind, target_columns=target_columns(cfg), target_mean=mean, target_std=std,
                       vocab=base.vocab, standardizer=base.standardizer, num_features=base.num_features)
    datasets, truncated = {}, {}
    for split, recs in records.items():
        datasets[split], truncated[split] = encode(recs, prep, cfg, with_targets=True,
                                                   sequence_column=cfg.data.sequence_column)
    prep.median_length = median_length(datasets["train"])
    cut = truncation_for(cfg)
    report["truncation"] = {**cut.to_dict(), "splits": {k: cut_counts(lengths_of(recs), cut.limit)
                                                        for k, recs in records.items()}}
    report.update(sizes={k: len(v) for k, v in datasets.items()}, truncated=truncated,
                  target_columns=prep.target_columns, target_mean=mean, target_std=std,
                  frontend=frontend_choice(cfg, prep).to_dict())
    if prep.vocab is not None:
        report["vocab_size"] = len(prep.vocab)
    if prep.standardizer is not None:
        report["constant_channels"] = list(prep.standardizer.constant_channels)
    if cfg.data.dataset:
        report["reference"] = get_builtin(cfg.data.dataset).reference
    if run_dir is not None:
        if carved is not None:
            save_split(carved, Path(run_dir) / SPLITS_FILE, seed=cfg.data.split_seed, fractions=fractions)
        prep.save(Path(run_dir))
    return PreparedData(datasets=datasets, prep=prep, report=report)


# --------------------------------------------------------------------------- model, loss, metrics


def build_model(cfg: Config, prep: RegressPrep) -> nn.Module:
    """The classifier's network (input layer, encoder, pooling, dropout) with one linear output per target."""
    from rnnkit.models.classifier import build_classifier

    model = build_classifier(dataclasses.asdict(cfg.model), num_classes=2,
                             vocab_size=len(prep.vocab) if prep.vocab is not None else None,
                             num_features=prep.num_features, median_length=prep.median_length)
    out = nn.Linear(model.head.out.in_features, prep.num_targets)
    nn.init.xavier_uniform_(out.weight)
    nn.init.zeros_(out.bias)  # 0 = the training mean in z-scored units: the untrained model is the baseline
    model.head.out = out
    model.num_classes = prep.num_targets
    return model


def forward(model, batch: Batch, step=None) -> torch.Tensor:
    return model(batch.inputs, batch.lengths, batch.mask)  # (B, K), z-scored units


def loss(pred: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean squared error over every target value of the batch, in z-scored units."""
    err = pred.float() - batch.targets  # (B, K)
    return err.pow(2).mean(), err.numel()


def predict(model, batch: Batch, pred: torch.Tensor, cfg) -> list[torch.Tensor]:
    """Per example: the (K,) prediction in z-scored units (`score` and `write_predictions` map it back)."""
    return list(pred.float().cpu())


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    """mse, rmse, mae and r2 of (N, K) predictions in the targets' units, averaged over the K targets.

    r2 = 1 - SSE / SST, SST around the split's own mean of each target (0: no better than that mean; NaN when a
    target is constant in the split); averaged over targets (scikit-learn's "uniform_average")."""
    err = pred - true
    mse = float(np.mean(err ** 2))
    sst = ((true - true.mean(axis=0)) ** 2).sum(axis=0)  # (K,)
    sse = (err ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.nan)
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": float(np.mean(r2))}


def _truth(examples) -> np.ndarray:
    return np.stack([ex.extra["y"] for ex in examples])  # (N, K)


def score(preds: list[torch.Tensor], examples, prep: RegressPrep, cfg) -> dict:
    """Metrics in the targets' own units (predictions de-standardized with the training mean and std)."""
    if not examples:
        return {}
    pred = prep.to_units(torch.stack(preds).double().numpy())  # (N, K)
    return regression_metrics(pred, _truth(examples))


def baselines(data: PreparedData, cfg, split: str = "test") -> dict:
    """The training-mean baseline on a split (test, or val): every sequence gets the training targets' mean."""
    return _training_mean(data.datasets[split].examples if split in data.datasets else [], data.prep)


def file_baselines(dataset, prep, cfg) -> dict:
    """`baselines` for the rows of a file `evaluate` scores."""
    return _training_mean(dataset.examples, prep)


def _training_mean(test: list, prep) -> dict:
    if not test:
        return {}
    true = _truth(test)
    pred = np.broadcast_to(np.asarray(prep.target_mean), true.shape)
    mean = (prep.target_mean[0] if prep.num_targets == 1
            else dict(zip(prep.target_columns, prep.target_mean, strict=True)))
    return {"training_mean": {"mean": mean, **regression_metrics(pred, true)}}


# --------------------------------------------------------------------------- inference


def load_inference(cfg, prep: RegressPrep, path, with_targets: bool, run_dir=None):
    """A new file read with the run's reader options and preprocessing; with targets (evaluate) they are checked
    as in training."""
    options = reader_options(cfg)
    if cfg.data.dataset:
        options.update(get_builtin(cfg.data.dataset).reader_options)
    path = Path(path)
    result = _read(path, options, prep.target_columns, require=with_targets)
    validated = validate_splits({"data": result}, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(Path(run_dir) / "rejects-inference.jsonl") if run_dir else None,
                                check_labels=False)
    records = validated.splits["data"]
    dataset, _ = encode(records, prep, cfg, with_targets=with_targets, sequence_column=options["sequence_column"])
    return dataset, records


def prediction_columns(targets: list[str]) -> list[str]:
    """The value columns of a prediction file: `prediction`, or `prediction_<target>` per target when there are
    several (never the target's own name, so that a join with the actual values keeps both)."""
    return ["prediction"] if len(targets) == 1 else [f"prediction_{t}" for t in targets]


def write_predictions(output: Path, records, preds: list[torch.Tensor], prep: RegressPrep, cfg) -> int:
    """CSV (default) or JSONL (by the extension): id, file, line, then the prediction(s) in the targets' units."""
    values = prep.to_units(torch.stack(preds).double().numpy()) if preds else np.zeros((0, prep.num_targets))
    return write_value_predictions(output, records, values, prediction_columns(prep.target_columns))


# --------------------------------------------------------------------------- hooks for the doctor, report, estimator


def mean_prediction_loss(prep) -> float:
    """MSE of predicting the training mean, in z-scored units: 1 on the training split (the doctor's yardstick)."""
    return 1.0


def r2_score(metrics: dict) -> float:
    """The estimator's `score`: R^2, as scikit-learn's regressors score."""
    return metrics["r2"]


def describe_model(cfg: Config) -> str:
    """The report's words for the regression head."""
    targets = target_columns(cfg)
    return f"; linear output for {len(targets)} target(s) ({', '.join(targets)}), MSE on z-scored targets"


class RegressorHooks(Hooks):
    """The estimator of regression: real targets (n,) or (n, k), predictions in y's shape, R^2."""

    _fitted_names = ("_y_shape",)

    def _kind(self) -> str | None:
        return "regressor"

    def _in_memory(self) -> bool:
        return True

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

    def _target_row(self, targets, i: int, cfg: Config) -> dict:
        names = self._names(targets)
        if names is None:
            return {cfg.data.label_column: float(targets.reshape(len(targets))[i])}
        return {n: float(v) for n, v in zip(names, targets[i], strict=True)}

    def _fit_overrides(self, targets) -> dict:
        return {f"{NAME}__target_columns": self._names(targets)}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        return {"_y_shape": None if targets is None else targets.shape[1:]}

    @staticmethod
    def _read_values(out: Path) -> np.ndarray:
        rows = prediction_rows(out)
        values = [[float(v) for k, v in r.items() if k.startswith("prediction")] for r in rows]
        return np.array(values, dtype=float).reshape(len(rows), -1)

    def predict(self, X=None, *, data=None, output=None) -> np.ndarray:
        """Predicted targets for a file (`data=`) or in-memory X, in the targets' own units."""
        values = self._run_predict(X, data, output, self._read_values)
        shape = self._y_shape if self._y_shape is not None else (() if values.shape[1] == 1 else values.shape[1:])
        return values.reshape(len(values), *shape)

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        return r2(np.asarray(y, dtype=float), self.predict(X), sample_weight)


ESTIMATOR_DOC = """A scikit-learn regressor that trains an rnnkit regression model (task regress): real targets per
    sequence.

    Args: as `SequenceClassifier`. `fit(X, y)`: X as for `SequenceClassifier`; y floats (n,) or an (n, k)
    array of k targets. `predict` returns floats in y's shape ((n,) or (n, k); for a fit on files: (n,) for
    one target, else (n, k)); `score` is R^2 (averaged over the targets, as scikit-learn's `r2_score`).
    """


ONNX = sequence_spec("prediction", "units", lambda prep: {
    "target_columns": prep.target_columns, "prediction_columns": prediction_columns(prep.target_columns),
    "target_mean": [float(v) for v in prep.target_mean], "target_std": [float(v) for v in prep.target_std]})

TASK = Task(name=NAME, prepare=prepare, load_prep=RegressPrep.load, build_model=build_model, collate=collate,
            forward=forward, loss=loss, predict=predict, score=score, load_inference=load_inference,
            write_predictions=write_predictions, baselines=baselines, file_baselines=file_baselines,
            metric_names=("rmse", "mae", "r2", "mse"),
            chance_loss=mean_prediction_loss, baseline=("rmse", "training_mean", False), headline_score=r2_score,
            label_noun="targets", uses_pooling=True, describe_model=describe_model, onnx=ONNX,
            title="sequence regression", hub_tasks=(None, None), test_samples=regression_panels,
            estimator=EstimatorSpec("SequenceRegressor", RegressorHooks, ESTIMATOR_DOC), rows_independent=True,
            metric_notes=("loss is the MSE of the z-scored targets (the training objective: about 1 for predicting "
                          "the training mean); mse, rmse and mae are in the targets' own units, averaged over the "
                          "targets; r2 = 1 - SSE/SST around the split's own mean",))
