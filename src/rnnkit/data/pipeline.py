"""From a config to ready datasets: file -> validated records -> encoded examples.

Each step is one function that a test can call alone:
`read_splits` (readers + validation), `split_records` (seeded stratified splits),
`fit_preprocessing` (vocabulary, label map, standardizer: fitted on train only),
`encode_records` (records -> tensors, with truncation counted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.config import Config
from rnnkit.data.collate import Example, SequenceDataset, truncate_examples
from rnnkit.data.datasets import get_builtin
from rnnkit.data.readers import ReadResult, read_records
from rnnkit.data.records import Record
from rnnkit.data.splits import save_split, stratified_split
from rnnkit.data.standardize import Standardizer
from rnnkit.data.validate import unseen_label_problems, validate_splits
from rnnkit.data.vocab import LabelMap, Vocab
from rnnkit.errors import ConfigError, DataError

VOCAB_FILE, LABELS_FILE, STANDARDIZER_FILE, SPLITS_FILE = (
    "vocab.json", "labels.json", "standardizer.json", "splits.json")


@dataclass
class Preprocessing:
    """What turns records into model inputs; fitted on train, saved in the run directory."""

    kind: str  # "text" | "numeric"
    labels: LabelMap
    vocab: Vocab | None = None
    standardizer: Standardizer | None = None
    num_features: int | None = None

    def save(self, run_dir: Path) -> None:
        self.labels.save(run_dir / LABELS_FILE)
        if self.vocab is not None:
            self.vocab.save(run_dir / VOCAB_FILE)
        if self.standardizer is not None:
            self.standardizer.save(run_dir / STANDARDIZER_FILE)
        (run_dir / "inputs.json").write_text(json.dumps({"kind": self.kind, "num_features": self.num_features}))

    @classmethod
    def load(cls, run_dir: Path) -> Preprocessing:
        meta = json.loads((run_dir / "inputs.json").read_text())
        return cls(
            kind=meta["kind"], num_features=meta["num_features"], labels=LabelMap.load(run_dir / LABELS_FILE),
            vocab=Vocab.load(run_dir / VOCAB_FILE) if (run_dir / VOCAB_FILE).exists() else None,
            standardizer=(Standardizer.load(run_dir / STANDARDIZER_FILE)
                          if (run_dir / STANDARDIZER_FILE).exists() else None))


@dataclass
class PreparedData:
    datasets: dict[str, SequenceDataset]
    prep: Preprocessing
    report: dict = field(default_factory=dict)


def reader_options(cfg: Config) -> dict:
    d = cfg.data
    return dict(format=d.format, input=d.input, text_column=d.text_column, sequence_column=d.sequence_column,
                label_column=d.label_column, id_column=d.id_column, time_column=d.time_column,
                feature_columns=d.feature_columns, tokenize=d.tokenize, lowercase=d.lowercase)


def input_files(cfg: Config) -> tuple[dict[str, Path], dict]:
    """The files to read per split, and reader options (a built-in data set may fix some)."""
    options = reader_options(cfg)
    if cfg.data.dataset:
        builtin = get_builtin(cfg.data.dataset)
        if builtin.task != cfg.task:
            raise ConfigError(f"data set {builtin.name!r} is for task {builtin.task!r}, not {cfg.task!r}; "
                              f"use --task {builtin.task}.")
        files = dict(builtin.files())
        options.update(builtin.reader_options)
        for split in ("val", "test"):  # explicit files still win
            if getattr(cfg.data, split):
                files[split] = Path(getattr(cfg.data, split))
        return files, options
    if not cfg.data.train:
        raise ConfigError("no training data: give a TRAIN_FILE, --dataset NAME, or data.train in the config.")
    files = {"train": Path(cfg.data.train)}
    for split in ("val", "test"):
        if getattr(cfg.data, split):
            files[split] = Path(getattr(cfg.data, split))
    return files, options


def read_splits(cfg: Config, run_dir: Path | None) -> tuple[dict[str, list[Record]], dict]:
    """Read and validate every input file; returns records per split and a report."""
    files, options = input_files(cfg)
    results: dict[str, ReadResult] = {
        split: read_records(path, **options) for split, path in files.items()}
    validated = validate_splits(results, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(run_dir / "rejects.jsonl") if run_dir else None)
    report = {"files": {k: str(v) for k, v in files.items()}, **validated.report,
              "rejected": validated.rejected}
    return validated.splits, report


def missing_split_fractions(cfg: Config, splits: dict) -> dict[str, float]:
    """The shares of train to carve out for the val/test splits no file gave (a built-in keeps its test)."""
    fractions = {}
    if "val" not in splits and cfg.data.val_fraction > 0:
        fractions["val"] = cfg.data.val_fraction
    if "test" not in splits and cfg.data.test_fraction > 0 and not cfg.data.dataset:
        fractions["test"] = cfg.data.test_fraction
    return fractions


def split_records(cfg: Config, splits: dict[str, list[Record]], run_dir: Path | None) -> dict[str, list[Record]]:
    """Carve missing val/test splits out of train (seeded, stratified) and record them."""
    fractions = missing_split_fractions(cfg, splits)
    if fractions:
        carved = stratified_split(splits["train"], fractions=fractions, seed=cfg.data.split_seed)
        splits = {**splits, **carved}
        if run_dir is not None:
            save_split(carved, run_dir / SPLITS_FILE)
        problems = [p for name in fractions for p in unseen_label_problems(splits["train"], splits[name])]
        if problems:
            raise DataError(problems, header="after the seeded split, some labels have no training example "
                            "(a class with a single row); add rows of these classes or give a separate --val")
    if "val" not in splits:
        raise ConfigError("no validation data: give --val FILE or set data.val_fraction > 0 "
                          "(early stopping needs a validation split).")
    return splits


def fit_preprocessing(cfg: Config, train: list[Record]) -> Preprocessing:
    """Vocabulary, label map and standardizer, fitted on the training split only."""
    labels = LabelMap.build([r.label for r in train])
    if train[0].tokens is not None:
        vocab = Vocab.build([r.tokens for r in train], min_freq=cfg.data.min_freq, max_size=cfg.data.max_vocab)
        return Preprocessing(kind="text", labels=labels, vocab=vocab)
    widths = {r.values.shape[1] for r in train}
    if len(widths) != 1:
        raise DataError([], header=f"training sequences have different channel counts {sorted(widths)}; "
                        "every sequence needs the same number of channels")
    standardizer = Standardizer().fit([r.values for r in train]) if cfg.data.standardize else None
    return Preprocessing(kind="numeric", labels=labels, standardizer=standardizer, num_features=widths.pop())


def encode_records(records: list[Record], prep: Preprocessing, *, max_length: int, keep: str = "head",
                   with_targets: bool = True) -> tuple[list[Example], int]:
    """Records -> examples (token ids or standardized float32 features), truncated to max_length."""
    examples = []
    for r in records:
        if prep.kind == "text":
            if r.tokens is None:
                raise DataError([], header=f"{r.file}:{r.line}: a numeric row in a model trained on text")
            inputs = torch.tensor(prep.vocab.encode(r.tokens), dtype=torch.long)  # (T,)
        else:
            if r.values is None:
                raise DataError([], header=f"{r.file}:{r.line}: a text row in a model trained on numeric input")
            if r.values.shape[1] != prep.num_features:
                raise DataError([], header=f"{r.file}:{r.line}: {r.values.shape[1]} channels, the model was "
                                f"trained on {prep.num_features}")
            values = prep.standardizer.transform(r.values) if prep.standardizer else r.values
            inputs = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))  # (T, C)
        target = None
        if with_targets and r.label is not None:
            target = torch.tensor(prep.labels.encode(r.label), dtype=torch.long)
        examples.append(Example(id=r.id, inputs=inputs, target=target))
    return truncate_examples(examples, max_length, keep=keep)


def prepare_data(cfg: Config, run_dir: Path | None = None) -> PreparedData:
    """The whole data path for training. Fails with DataError/ConfigError before any training step."""
    records, report = read_splits(cfg, run_dir)
    records = split_records(cfg, records, run_dir)
    prep = fit_preprocessing(cfg, records["train"])
    datasets, truncated = {}, {}
    for split, recs in records.items():
        examples, n_trunc = encode_records(recs, prep, max_length=cfg.data.max_length, keep=cfg.data.truncate_keep)
        datasets[split] = SequenceDataset(examples)
        truncated[split] = n_trunc
    report["sizes"] = {k: len(v) for k, v in datasets.items()}
    report["truncated"] = truncated
    report["num_classes"] = len(prep.labels)
    if prep.vocab is not None:
        report["vocab_size"] = len(prep.vocab)
    if prep.standardizer is not None:
        report["constant_channels"] = list(prep.standardizer.constant_channels)
    if run_dir is not None:
        prep.save(run_dir)
    return PreparedData(datasets=datasets, prep=prep, report=report)


def load_file_for_inference(cfg: Config, prep: Preprocessing, path: Path, *, with_targets: bool,
                            run_dir: Path | None = None) -> tuple[SequenceDataset, list[Record], int]:
    """Read a new file with the run's reader options and preprocessing (for evaluate / predict)."""
    options = reader_options(cfg)
    if cfg.data.dataset:
        options.update(get_builtin(cfg.data.dataset).reader_options)
    result = read_records(path, **options, require_label=with_targets)
    validated = validate_splits({"data": result}, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(run_dir / "rejects-inference.jsonl") if run_dir else None)
    records = validated.splits["data"]
    if with_targets:
        known = set(prep.labels.labels)
        bad = [r for r in records if r.label not in known]
        if bad:
            raise DataError([], header=f"{len(bad)} rows of {path} have labels the model never saw "
                            f"(first: {bad[0].file}:{bad[0].line} label {bad[0].label!r}); known labels: "
                            f"{', '.join(prep.labels.labels)}")
    examples, n_trunc = encode_records(records, prep, max_length=cfg.data.max_length, keep=cfg.data.truncate_keep,
                                       with_targets=with_targets)
    return SequenceDataset(examples), records, n_trunc
