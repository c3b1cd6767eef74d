"""From a config to ready datasets: file -> validated records -> encoded examples.

Each step is one function that a test can call alone:
`read_splits` (readers + validation), `split_records` (seeded stratified splits),
`fit_preprocessing` (vocabulary, label map, standardizer: fitted on train only),
`encode_records` (records -> tensors, with truncation counted).

Long sequences (`rnnkit.data.longseq`): `data.long_sequences` decides, from the training lengths, whether an
over-long row is truncated to data.max_length (head, tail or head_tail: `data.truncate_keep`) or read whole
in windows by the model (`window`: the row is kept up to the span of data.max_windows windows and the model
cuts it into windows). The choice is made once, on the training split (`prepare_data`), saved with the
preprocessing (inputs.json) and applied alike to every split and to `evaluate` / `predict`.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.config import Config
from rnnkit.data.collate import DatasetBuilder, Example, SequenceDataset, length_array
from rnnkit.data.columns import ColumnBuilder, int64_column
from rnnkit.data.datasets import get_builtin
from rnnkit.data.ids import Ids, IdsBuilder
from rnnkit.data.longseq import WINDOWED, Truncation, Windows, choose_long_sequences, cut_counts
from rnnkit.data.readers import read_records
from rnnkit.data.records import ReadResult, Record
from rnnkit.data.recordstore import Records, chained, label_counts, length_array_of, read_file
from rnnkit.data.spill import Spill, freeze
from rnnkit.data.splits import save_split, stratified_split
from rnnkit.data.standardize import Standardizer
from rnnkit.data.validate import (
    UNSEEN_LABEL_RULE,
    input_problems,
    label_number,
    reconcile_labels,
    too_few_classes,
    unseen_label_problems,
    validate_splits,
)
from rnnkit.data.vocab import LabelMap, Vocab
from rnnkit.errors import ConfigError, DataError, Problem, shorten

VOCAB_FILE, LABELS_FILE, STANDARDIZER_FILE, SPLITS_FILE = (
    "vocab.json", "labels.json", "standardizer.json", "splits.json")
TINY_SPLIT = 10  # a split with fewer rows gets a warning: its loss and metrics are mostly noise


@dataclass
class Preprocessing:
    """What turns records into model inputs; fitted on train, saved in the run directory."""

    kind: str  # "text" | "numeric"
    labels: LabelMap
    vocab: Vocab | None = None
    standardizer: Standardizer | None = None
    num_features: int | None = None
    median_length: float | None = None  # of the training split after truncation (the model's front-end rule);
    # with windows, of the training windows
    class_counts: list[int] | None = None  # training examples per label id (set for a training run; not saved)
    long_sequences: str = "truncate"  # what data.long_sequences resolved to: truncate | window

    def save(self, run_dir: Path) -> None:
        self.labels.save(run_dir / LABELS_FILE)
        if self.vocab is not None:
            self.vocab.save(run_dir / VOCAB_FILE)
        if self.standardizer is not None:
            self.standardizer.save(run_dir / STANDARDIZER_FILE)
        (run_dir / "inputs.json").write_text(json.dumps({"kind": self.kind, "num_features": self.num_features,
                                                              "median_length": self.median_length,
                                                              "long_sequences": self.long_sequences}))

    @classmethod
    def load(cls, run_dir: Path) -> Preprocessing:
        meta = json.loads((run_dir / "inputs.json").read_text())
        return cls(
            kind=meta["kind"], num_features=meta["num_features"], median_length=meta.get("median_length"),
            long_sequences=meta.get("long_sequences", "truncate"),  # runs from before windows: truncated
            labels=LabelMap.load(run_dir / LABELS_FILE),
            vocab=Vocab.load(run_dir / VOCAB_FILE) if (run_dir / VOCAB_FILE).exists() else None,
            standardizer=(Standardizer.load(run_dir / STANDARDIZER_FILE)
                          if (run_dir / STANDARDIZER_FILE).exists() else None))


@dataclass
class PreparedData:
    datasets: dict[str, SequenceDataset]
    prep: Preprocessing
    report: dict = field(default_factory=dict)
    streams: object = None  # a family's `rnnkit.data.streams.StreamPlan`: train by truncated BPTT on it instead of
    # the "train" windows (which are still scored); None: train on datasets["train"]
    train_stream: object = None  # data.storage=stream (`rnnkit.data.rowstream.TrainStream`): train on the file's
    # row groups; datasets["train"] then holds the scan's sample of training rows (scored, read by the doctor)


def reader_options(cfg: Config) -> dict:
    d = cfg.data
    return dict(format=d.format, input=d.input, text_column=d.text_column, sequence_column=d.sequence_column,
                label_column=d.label_column, id_column=d.id_column, time_column=d.time_column,
                feature_columns=d.feature_columns, tokenize=d.tokenize, lowercase=d.lowercase, delimiter=d.delimiter)


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


def storage_spill(cfg: Config, run_dir: Path | None) -> Spill | None:
    """data.storage=disk: where the data's disk-backed arrays go (data.spill_dir, else the run directory, else the
    system's temporary directory); None for data.storage=memory."""
    if cfg.data.storage != "disk":
        return None
    return Spill(cfg.data.spill_dir or run_dir)


def read_splits(cfg: Config, run_dir: Path | None, spill: Spill | None = None
                ) -> tuple[dict[str, list[Record]], dict]:
    """Read and validate every input file; returns records per split and a report. With `spill` (data.storage=
    disk), text rows' tokens are disk-backed; a file that is read whole instead is said in a warning."""
    files, options = input_files(cfg)
    results: dict[str, ReadResult] = {  # text rows: in chunks (recordstore)
        split: read_file(path, spill=spill, **options) for split, path in files.items()}
    whole = [str(files[k]) for k, res in results.items()
             if spill is not None and (not isinstance(res.records, Records) or res.records.store.kind == "numeric")]
    if whole:
        warnings.warn(f"data.storage=disk keeps text rows of CSV, TSV, JSONL, Parquet and Arrow files on disk; "
                      f"{', '.join(whole)} (numeric sequences, long format or .ts) is held in memory as with "
                      "data.storage=memory", UserWarning, stacklevel=2)
    # "1" and "1.0" are one class in every split (before the unseen-label check compares them)
    for message in reconcile_labels(chained([res.records for res in results.values()]),
                                    column=options["label_column"]):
        warnings.warn(message, UserWarning, stacklevel=2)
    validated = validate_splits(results, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(run_dir / "rejects.jsonl") if run_dir else None)
    report = {"files": {k: str(v) for k, v in files.items()}, **validated.report,
              "rejected": validated.rejected}
    return validated.splits, report


SMALL_VAL_CAP = 0.25  # a validation share raised for small data (data.min_val_rows) stops at this share of train


def val_share(cfg: Config, rows: int) -> float:
    """data.val_fraction, raised (up to SMALL_VAL_CAP) when it would carve fewer than data.min_val_rows of `rows`:
    a validation split of 3 rows makes the best epoch, early stopping and plateau decay noise."""
    f, want = cfg.data.val_fraction, cfg.data.min_val_rows
    if not want or f <= 0 or rows <= 0 or rows * f >= want:
        return f
    room = 0.9 - cfg.data.test_fraction  # with a carved test split too, train keeps at least a tenth
    return max(f, min(want / rows, SMALL_VAL_CAP, room))


def missing_split_fractions(cfg: Config, splits: dict, *, announce: bool = True) -> dict[str, float]:
    """The shares of train to carve out for the val/test splits no file gave (a built-in with a test split of
    its own keeps it; one without, such as spamassassin, is split like a user's file); a small training file
    gives validation a larger share (`val_share`), said once in a warning."""
    fractions = {}
    if "val" not in splits and cfg.data.val_fraction > 0:
        rows = len(splits.get("train") or [])
        fractions["val"] = share = val_share(cfg, rows)
        if announce and share > cfg.data.val_fraction:
            warnings.warn(f"small data: data.val_fraction={cfg.data.val_fraction:g} of {rows} training rows would "
                          f"hold out about {rows * cfg.data.val_fraction:.0f} for validation, too few to pick the best "
                          f"epoch or stop early; validation takes {share:.0%} of them instead (data.min_val_rows="
                          f"{cfg.data.min_val_rows}; --set data.min_val_rows=0 keeps data.val_fraction, or give --val)",
                          UserWarning, stacklevel=2)
    if "test" not in splits and cfg.data.test_fraction > 0:
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


def check_training_data(cfg: Config, splits: dict[str, list[Record]], files: dict) -> None:
    """Fail (DataError) when the training split cannot train a classifier: no rows, or one class only."""
    train = splits.get("train", [])
    labeled = Counter({k: n for k, n in label_counts(train).items() if k is not None})
    problems = too_few_classes(labeled, rows=len(train),
                               file=str(files.get("train", cfg.data.train)), column=cfg.data.label_column)
    if problems:
        raise DataError(problems, header="the training data cannot train a classifier")


def check_split_sizes(cfg: Config, splits: dict[str, list[Record]], files: dict) -> dict[str, list[Record]]:
    """An empty validation split is a DataError (early stopping needs one); an empty test split is left
    out with a warning (no test metrics); a split of fewer than `TINY_SPLIT` rows gets a warning."""
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    carved = missing_split_fractions(cfg, {k: v for k, v in splits.items() if k in files}, announce=False)
    if not splits.get("val"):
        train_file = str(files.get("train", cfg.data.train))
        if "val" in carved:
            problem = Problem(train_file, None, cfg.data.label_column, f"{len(splits['train'])} rows",
                              f"the seeded validation split is empty ({sizes}): each class keeps its only row in "
                              f"train, so data.val_fraction={cfg.data.val_fraction:g} takes none",
                              "add rows (at least 2 per class, better dozens), or give a validation file with --val")
        else:
            problem = Problem(str(files["val"]), None, None, "0 rows", "no validation rows left after validation",
                              "repair the validation file's rows (see the rejects file)")
        raise DataError([problem], header="there is no validation data (early stopping needs it)")
    out = dict(splits)
    if "test" in out and not out["test"]:
        where = (f"each class has too few rows for data.test_fraction={cfg.data.test_fraction:g}"
                 if "test" in carved else f"no rows of {files.get('test')} are left")
        warnings.warn(f"the test split is empty ({sizes}): {where}; training goes on without test metrics. Add "
                      "rows, or give a test file with --test", UserWarning, stacklevel=2)
        del out["test"]
    why = {"train": "too few to learn from", "val": "its loss is mostly noise (text: it still picks the best epoch "
           "and stops training; numeric sequences: the training rows' loss does, see the selection line; --set "
           "data.min_val_rows=20 gives validation a larger share)",
           "test": "its metrics are mostly noise"}
    tiny = [f"{name} has only {len(recs)} row{'s' if len(recs) != 1 else ''}, {why.get(name, why['test'])}"
            for name, recs in out.items() if 0 < len(recs) < TINY_SPLIT]
    if tiny:
        warnings.warn(f"tiny splits ({sizes}): {'; '.join(tiny)}. Add rows (dozens per class at least)",
                      UserWarning, stacklevel=2)
    return out


def windows_for(cfg: Config, mode: str = "window") -> Windows:
    """The document windows the config asks for (data.window_length, null: data.max_length; data.window_stride,
    null: the window length; data.max_windows; data.window_combine, or for `mode` "hierarchical" the
    document-level RNN).

    Raises:
        ConfigError: a stride longer than the window (naming both keys).
    """
    d = cfg.data
    length = d.window_length or d.max_length
    try:
        return Windows(length, d.window_stride or length, d.max_windows,
                       "rnn" if mode == "hierarchical" else d.window_combine)
    except ValueError as exc:
        raise ConfigError(f"config key 'data.window_stride': {exc}; give a stride of at most the window length "
                          f"{length} (data.window_length, null: data.max_length)") from None


def truncation_for(cfg: Config, long_sequences: str = "truncate") -> Truncation:
    """How over-long rows are cut: to data.max_length (truncate), or to the span of data.max_windows windows
    (window), keeping data.truncate_keep (head_tail: data.truncate_head).

    Raises:
        ConfigError: a head+tail cut that cannot keep both ends (naming data.truncate_head and the limit).
    """
    d = cfg.data
    cut = (Truncation(windows_for(cfg).span, d.truncate_keep, d.truncate_head, by="data.max_windows")
           if long_sequences in WINDOWED else Truncation(d.max_length, d.truncate_keep, d.truncate_head))
    try:
        cut.slices(cut.limit + 1)
    except ValueError as exc:
        raise ConfigError(f"config key 'data.truncate_head': {d.truncate_head:g} with data.truncate_keep=head_tail "
                          f"and {cut.by}: {exc}. The default 0.25 keeps the first quarter and the last three "
                          "quarters") from None
    return cut


def _seen(tokens: list[str], truncation: Truncation) -> list[str]:
    """The tokens the model sees after truncation (the same steps `encode_records` keeps)."""
    return truncation.cut(tokens)


def fit_preprocessing(cfg: Config, train: list[Record], truncation: Truncation | None = None) -> Preprocessing:
    """Vocabulary, label map and standardizer, fitted on the training split only.

    The vocabulary counts the tokens the model sees: an over-long row counts only the part that
    `truncation` keeps (default: data.max_length with data.truncate_keep).
    """
    truncation = truncation or truncation_for(cfg)
    labels = LabelMap.build(label_counts(train))  # its distinct labels
    if isinstance(train, Records) and train.store.kind == "text":  # counted on the store's columns
        vocab = Vocab.from_counts(train.token_counts(truncation.limit, truncation.slices),
                                  min_freq=cfg.data.min_freq, max_size=cfg.data.max_vocab)
        return Preprocessing(kind="text", labels=labels, vocab=vocab)
    if train[0].tokens is not None:
        vocab = Vocab.build((_seen(r.tokens, truncation) for r in train),
                            min_freq=cfg.data.min_freq, max_size=cfg.data.max_vocab)
        return Preprocessing(kind="text", labels=labels, vocab=vocab)
    widths = (Counter({train.store.width: len(train)}) if isinstance(train, Records)  # one count a store
              else Counter(r.values.shape[1] for r in train))
    if len(widths) != 1:
        common = widths.most_common(1)[0][0]
        problems = [Problem(r.file, r.line, cfg.data.sequence_column, str(r.values.shape[1]),
                            f"{r.values.shape[1]} channels, while most training sequences have {common}",
                            f"give every sequence the same {common} channels", r.id)
                    for r in train if r.values.shape[1] != common]
        raise DataError(problems, header=f"training sequences have different channel counts {sorted(widths)}")
    standardizer = Standardizer().fit([r.values for r in train]) if cfg.data.standardize else None
    return Preprocessing(kind="numeric", labels=labels, standardizer=standardizer,
                         num_features=next(iter(widths)))


def encode_records(records: list[Record], prep: Preprocessing, *, truncation: Truncation, with_targets: bool = True,
                   sequence_column: str | None = None) -> tuple[list[Example], int]:
    """Records -> examples (token ids or standardized float32 features), cut by `truncation`.

    A list of per-row Examples (for a caller that wants them, e.g. a chunk of `predict`); a whole split is
    encoded with `encode_dataset`, which builds the columns without the list.

    Returns:
        (examples in record order, number of examples that were cut).

    Raises:
        DataError: rows the model cannot take (`input_problems`), every one listed.
    """
    dataset, cut = encode_dataset(records, prep, truncation=truncation, with_targets=with_targets,
                                  sequence_column=sequence_column)
    return list(dataset.examples), cut


def encode_dataset(records: list[Record], prep: Preprocessing, *, truncation: Truncation, with_targets: bool = True,
                   sequence_column: str | None = None,
                   target_of: Callable[[Record], tuple[object, dict]] | None = None) -> tuple[SequenceDataset, int]:
    """Records -> a columnar `SequenceDataset` (token ids or standardized float32 features, cut by `truncation`),
    built row by row into flat columns: no per-row tensor is made for token inputs.

    Args:
        target_of: a family's own target for a record, as (target, extra) (e.g. regression's z-scored values);
            None: the label's class index (with `with_targets`).

    Returns:
        (the dataset in record order, number of examples that were cut).

    Raises:
        DataError: rows the model cannot take (`input_problems`), every one listed.
    """
    problems = input_problems(records, prep, sequence_column=sequence_column)
    if problems:
        raise DataError(problems, header=f"{len(problems)} row(s) do not fit the model's input")
    truncation.slices(truncation.limit + 1)  # the arguments' errors, before any row
    builder, cut, limit = DatasetBuilder(), 0, truncation.limit
    if isinstance(records, Records) and prep.kind == "text" and target_of is None and len(records):
        return _encode_store(records, prep, truncation, with_targets)
    for r in records:
        if prep.kind == "text":
            inputs = prep.vocab.encode(r.tokens)  # (T,) ids, stored as int32
        else:
            values = prep.standardizer.transform(r.values) if prep.standardizer else r.values
            inputs = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))  # (T, C); the builder copies it
        if len(inputs) > limit:
            inputs = truncation.cut(inputs)
            cut += 1
        target, extra = None, None
        if target_of is not None:
            target, extra = target_of(r)
        elif with_targets and r.label is not None:
            target = torch.tensor(prep.labels.encode(r.label), dtype=torch.long)  # ()
        builder.add(r.id, inputs, target, extra)
    return builder.build(), cut


def _encode_store(records: Records, prep: Preprocessing, truncation: Truncation, with_targets: bool
                  ) -> tuple[SequenceDataset, int]:
    """`encode_dataset` of text rows held in a `RecordStore`, column by column (no per-row Python object): the same
    columns, ids and cut count as appending the rows one by one."""
    store = records.store
    get = prep.vocab._stoi.get
    lut = np.array([get(t, Vocab.UNK) for t in store.token_names], dtype=np.int64)  # store token -> vocabulary id
    lengths = np.minimum(records.lengths(), truncation.limit)
    spill = store.spill  # data.storage=disk: the offsets and token ids are disk-backed arrays
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64) if spill is None else spill.empty(np.int64, len(lengths) + 1)
    np.cumsum(lengths, out=offsets[1:])
    dtype = np.int32 if len(lut) <= 2**31 else np.int64
    values, at = (np.empty(int(offsets[-1]), dtype=dtype) if spill is None else spill.empty(dtype, int(offsets[-1]))), 0
    for tokens in records.kept_tokens(truncation.limit, truncation.slices):
        values[at:at + len(tokens)] = lut[tokens]
        at += len(tokens)
    inputs = int64_column(values if spill is None else freeze(values), offsets if spill is None else freeze(offsets))
    cut = int((records.lengths() > truncation.limit).sum())
    codes = store.labels[records.index]
    used = np.unique(codes).tolist()  # (a label renamed by reconcile_labels is no longer used)
    if with_targets and all(store.label_names[c] is not None for c in used):
        to_class = np.full(len(store.label_names), -1, dtype=np.int64)
        to_class[used] = [prep.labels.encode(store.label_names[c]) for c in used]
        target = int64_column(to_class[codes])
    else:  # no targets, or some rows unlabeled: what the row-by-row builder keeps for them
        column = ColumnBuilder()
        for label in records.labels():
            column.append(torch.tensor(prep.labels.encode(label), dtype=torch.long)
                          if with_targets and label is not None else None)
        target = column.finish()
    ids = store.ids
    if ids.blob is None and len(ids.prefixes) == 1:  # what an IdsBuilder fed these ids builds
        if spill is None:
            ids = ids.take(records.index)
        else:  # disk-backed too (12 bytes a row)
            which, numbers = spill.empty(np.int32, len(records)), spill.empty(np.int64, len(records))
            np.take(ids.which, records.index, out=which)
            np.take(ids.numbers, records.index, out=numbers)
            ids = Ids(prefixes=ids.prefixes, which=freeze(which), numbers=freeze(numbers))
    else:
        build = IdsBuilder()
        for i in records.index.tolist():
            build.append(ids.get(i))
        ids = build.finish()
    return SequenceDataset.from_columns(ids, inputs, target, {}), cut


def _median(values) -> float | None:
    """The median of integer `values` (a list or an array), as a float; None when there are none."""
    values = np.sort(np.asarray(values, dtype=np.int64))
    if not len(values):
        return None
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (int(values[mid - 1]) + int(values[mid])) / 2


def median_length(dataset: SequenceDataset) -> float | None:
    """The median length of a split's sequences (as the model sees them, truncated); None when it is empty."""
    return _median(length_array(dataset))


def long_sequence_report(cfg: Config, datasets: dict[str, SequenceDataset], mode: str, why: str) -> dict:
    """summary.json's data.long_sequences: the mode and why; with windows, their settings and per split the
    documents and their windows (in all, mean and most per document; the documents the cap cut are counted in
    data.truncation)."""
    out = {"mode": mode, "reason": why}
    if mode in WINDOWED:
        win = windows_for(cfg, mode)
        out.update(win.to_dict(), span=win.span, splits={})
        for split, ds in datasets.items():
            counts = [win.count(n) for n in ds.lengths]
            out["splits"][split] = {"documents": len(counts), "windows": sum(counts),
                                    "mean_windows": sum(counts) / len(counts) if counts else 0.0,
                                    "max_windows": max(counts, default=0)}
    return out


# The data path of sequence classification, whose model (many-to-one) can also read a document in windows.
LONG_SEQUENCE_MODES = ("truncate", "window", "hierarchical")


def prepare_data(cfg: Config, run_dir: Path | None = None) -> PreparedData:
    """The whole data path for training. Fails with DataError/ConfigError before any training step, and
    then before anything but a rejects file (--bad-rows skip) is written to `run_dir`."""
    if cfg.data.storage == "stream":
        return prepare_stream(cfg, run_dir)
    spill = storage_spill(cfg, run_dir)
    records, report = read_splits(cfg, run_dir, spill)
    files = report["files"]  # split -> the file it was read from
    check_training_data(cfg, records, files)
    fractions = missing_split_fractions(cfg, records, announce=False)  # which splits are carved (split_records says)
    records = split_records(cfg, records, None)  # splits.json is written once every check has passed
    carved = {name: records[name] for name in ("train", *fractions)}
    records = check_split_sizes(cfg, records, files)
    try:
        mode, why = choose_long_sequences(cfg.data.long_sequences, length_array_of(records["train"]),
                                          cfg.data.max_length, supported=LONG_SEQUENCE_MODES)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    truncation = truncation_for(cfg, mode)
    prep = fit_preprocessing(cfg, records["train"], truncation)
    prep.long_sequences = mode
    datasets, truncated, counts = {}, {}, {}
    for split, recs in records.items():
        datasets[split], truncated[split] = encode_dataset(recs, prep, truncation=truncation,
                                                           sequence_column=cfg.data.sequence_column)
        counts[split] = cut_counts(length_array_of(recs), truncation.limit)
    if mode in WINDOWED:  # the front-end (model.frontend auto) reads one window at a time
        win = windows_for(cfg, mode)
        prep.median_length = _median([n for length in datasets["train"].lengths for n in win.window_lengths(length)])
    else:
        prep.median_length = median_length(datasets["train"])
    report["sizes"] = {k: len(v) for k, v in datasets.items()}
    report["truncated"] = truncated
    report["truncation"] = {**truncation.to_dict(), "splits": counts}
    report["long_sequences"] = long_sequence_report(cfg, datasets, mode, why)
    report["num_classes"] = len(prep.labels)
    if spill is not None:
        report["storage"] = {"mode": "disk", "directory": str(spill.directory), "arrays": spill.arrays,
                             "bytes": spill.bytes}
    if fractions:  # the carved splits, as splits.json records them (which rows: splits.json)
        report["split"] = {"seed": cfg.data.split_seed, "fractions": fractions, "by": "label (stratified)"}
    if prep.vocab is not None:
        report["vocab_size"] = len(prep.vocab)
    if prep.standardizer is not None:
        report["constant_channels"] = list(prep.standardizer.constant_channels)
    if run_dir is not None:
        if fractions:
            save_split(carved, run_dir / SPLITS_FILE, seed=cfg.data.split_seed, fractions=fractions)
        prep.save(run_dir)
    return PreparedData(datasets=datasets, prep=prep, report=report)


def prepare_stream(cfg: Config, run_dir: Path | None = None) -> PreparedData:
    """`prepare_data` for data.storage=stream (`rnnkit.data.rowstream`): the training file is scanned by row
    groups, never held; validation and test come from their files, or from the rows a hash of the row number
    holds out (at most data.stream_holdout_rows each)."""
    from rnnkit.data import rowstream as rs

    rs.check_settings(cfg)
    files, options = input_files(cfg)
    train_file = files["train"]
    source = rs.groups_of(train_file, str(train_file), options["format"])
    rejects_path = (run_dir / "rejects.jsonl") if run_dir else None
    if rejects_path is not None and rejects_path.exists():  # an earlier attempt that stopped on bad rows: its list
        rejects_path.unlink()
    given = {split: read_file(path, **options) for split, path in files.items() if split != "train"}
    report: dict = {"files": {k: str(v) for k, v in files.items()}}
    given_rejected = 0
    if given:  # held-out files: read and checked as in the other modes (their rejects first in rejects.jsonl)
        checked = validate_splits(given, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                  rejects_path=rejects_path, check_labels=False)
        given, given_rejected = {k: list(v) for k, v in checked.splits.items()}, checked.rejected
        report.update({k: v for k, v in checked.report.items() if k != "rejects_file"})
    cap = cfg.data.stream_holdout_rows
    shares = rs.Shares(cfg.data.split_seed,
                       val=0.0 if "val" in files else min(cfg.data.val_fraction, cap / source.rows),
                       test=0.0 if "test" in files else min(cfg.data.test_fraction, cap / source.rows))
    truncation = truncation_for(cfg)
    scanned = rs.scan(source, options, shares, truncation=truncation, policy=cfg.data.bad_rows,
                      max_bad_fraction=cfg.data.max_bad_fraction, rejects_path=rejects_path,
                      sample_rows=max(rs.SAMPLE_ROWS, cfg.train.train_eval_rows or 0), seed=cfg.data.split_seed)
    rs.check_labels_alike(scanned.label_counts, str(train_file), options["label_column"])
    labeled = Counter({k: n for k, n in scanned.label_counts.items() if k is not None})
    problems = too_few_classes(labeled, rows=scanned.train_rows, file=str(train_file), column=cfg.data.label_column)
    if problems:
        raise DataError(problems, header="the training data cannot train a classifier")
    held = {**{k: v for k, v in scanned.held.items() if getattr(shares, k) > 0}, **given}
    stand_ins = [Record(id="", file="", line=0, tokens=[], label=label) for label in labeled]
    unseen = {k: unseen_label_problems(stand_ins, recs) for k, recs in held.items()}
    if any(unseen.values()):
        found = [p for ps in unseen.values() for p in ps]
        if cfg.data.bad_rows != "skip":
            raise DataError(found, header=f"{len(found)} held-out row(s) have labels no training row has (with "
                            "data.storage=stream the rows are held out by a hash of the row number, not by label); "
                            "add training rows of these classes, give --val/--test files, or pass --bad-rows skip")
        dropped = {p.record_id for p in found}
        held = {k: [r for r in recs if r.id not in dropped] for k, recs in held.items()}
        if rejects_path is not None:
            with rejects_path.open("a", encoding="utf-8") as f:
                for k, ps in unseen.items():
                    for p in ps:
                        f.write(json.dumps({"split": k, "file": p.file, "line": p.line, "record_id": p.record_id,
                                            "problems": [p.to_dict()], "raw": None}, ensure_ascii=False) + "\n")
    if not held.get("val"):
        raise DataError([Problem(str(train_file), None, None, f"{source.rows} rows", "no validation rows: "
                                 f"data.val_fraction={cfg.data.val_fraction:g} held out none",
                                 "give a validation file with --val, or raise data.val_fraction")],
                        header="there is no validation data (early stopping needs it)")
    prep = Preprocessing(kind="text", labels=LabelMap.build(labeled),
                         vocab=Vocab.from_counts(Counter(scanned.token_counts), min_freq=cfg.data.min_freq,
                                                 max_size=cfg.data.max_vocab))
    prep.class_counts = [labeled[label] for label in prep.labels.labels]

    def encode(records: list[Record]) -> SequenceDataset:
        return encode_dataset(records, prep, truncation=truncation, sequence_column=cfg.data.sequence_column)[0]

    datasets = {"train": encode(scanned.sample), **{k: encode(v) for k, v in held.items() if v}}
    stream = rs.TrainStream(rs.RowStream(source, options, shares, encode, scanned), cfg.data.batch_size,
                            cfg.data.shuffle_buffer, cfg.train.seed, cfg.data.bucketing, {})
    lengths = stream.lengths_summary()
    prep.median_length = lengths.get("median")
    rejected = scanned.rejected + given_rejected + sum(len(v) for v in unseen.values())
    sizes = {"train": scanned.train_rows, **{k: len(v) for k, v in datasets.items() if k != "train"}}
    truncated = {"train": scanned.truncated,
                 **{k: int(sum(len(r.tokens) > truncation.limit for r in recs)) for k, recs in held.items()}}
    distance, chance = stream.sampler().label_distance(scanned.group_labels)
    stream.info = {"row_groups": len(source.sizes), "units": source.units, "rows": source.rows,
                   "shuffle_buffer": cfg.data.shuffle_buffer,
                   "train_sample": len(scanned.sample), "lengths": lengths, "buffer_label_distance": distance,
                   "buffer_label_chance": chance}
    if distance - chance > rs.UNMIXED:
        warnings.warn(f"the rows of {train_file} are grouped by label: a shuffle buffer of {cfg.data.shuffle_buffer:,} "
                      f"rows holds a label mix {distance:.0%} away from the whole file's (total variation, mean over "
                      f"the buffers; {chance:.0%} for rows drawn at random), so each stretch of batches sees few "
                      "classes and training suffers. Shuffle the "
                      "rows when writing the file, or raise data.shuffle_buffer (to "
                      f"{scanned.train_rows:,}, every training row, if memory allows)", UserWarning, stacklevel=2)
    report.update({
        "train": {"rows": source.rows, "rejected": scanned.rejected}, "rejected": rejected,
        "rejects_file": str(rejects_path) if rejected and rejects_path is not None else None,
        "sizes": sizes, "truncated": truncated,
        "truncation": {**truncation.to_dict(), "splits": {
            "train": scanned.cut_counts(),
            **{k: cut_counts(length_array_of(recs), truncation.limit) for k, recs in held.items()}}},
        "long_sequences": {"mode": "truncate", "reason": "data.storage=stream truncates to data.max_length"},
        "num_classes": len(prep.labels), "vocab_size": len(prep.vocab),
        "storage": {"mode": "stream", **stream.info},
    })
    carved = {k: getattr(shares, k) for k in ("val", "test") if getattr(shares, k) > 0}
    if carved:
        report["split"] = {"seed": cfg.data.split_seed, "fractions": carved,
                           "by": "a hash of the row number (not stratified; data.storage=stream)",
                           "held_out_cap": cap}
    if run_dir is not None:
        prep.save(run_dir)
    return PreparedData(datasets=datasets, prep=prep, report=report, train_stream=stream)


def match_model_labels(records: list[Record], labels: LabelMap, *, column: str = "label") -> None:
    """Give numeric labels the model's spelling ("1.0" -> "1" when the model's class is "1"), with a warning
    naming each spelling changed; other labels are left as they are."""
    by_value = {label_number(x): x for x in labels.labels}
    if None in by_value:
        return  # the model's labels are not all numbers: compared as text
    changed: Counter[tuple[str, str]] = Counter()
    for r in records:
        if r.label is None or r.label in labels:
            continue
        model = by_value.get(label_number(r.label))
        if model is not None:
            changed[(r.label, model)] += 1
            r.label = model
    for (spelled, model), n in sorted(changed.items()):
        warnings.warn(f"label {spelled!r} ({n} row{'s' if n != 1 else ''}) in column {column!r} is the same number "
                      f"as the model's class {model!r}: read as {model!r}", UserWarning, stacklevel=3)


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
        match_model_labels(records, prep.labels, column=options["label_column"])
        known = set(prep.labels.labels)
        listed = shorten(", ".join(prep.labels.labels), 200)
        folded = {x.casefold(): x for x in prep.labels.labels}
        problems = [
            Problem(r.file, r.line, options["label_column"], shorten(r.label), f"{UNSEEN_LABEL_RULE} (the model "
                    f"knows {listed})",
                    (f"did you mean {folded[r.label.casefold()]!r}? " if r.label.casefold() in folded else "")
                    + "correct the label to one the model knows, or remove the row", r.id)
            for r in records if r.label is not None and r.label not in known]
        if problems:
            raise DataError(problems, header=f"{len(problems)} row(s) of {path} have labels the model never saw")
    truncation = truncation_for(cfg, getattr(prep, "long_sequences", "truncate"))  # as in training
    dataset, n_trunc = encode_dataset(records, prep, truncation=truncation, with_targets=with_targets,
                                      sequence_column=options["sequence_column"])
    return dataset, records, n_trunc
