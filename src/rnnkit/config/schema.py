"""The config's schema: the four core sections as dataclasses, and a config dict's flat dotted-key form.

Each field's default is the field guide's (GUIDE.md) and the `# comment` after it is what `rnnkit config`
prints beside the key (`rnnkit.config.commented`). A task family's own section is a dataclass of the same
kind, declared in its module and registered with `rnnkit.config.registry.register_section`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataConfig:
    train: str | None = None  # training file (CSV, TSV, JSONL, Parquet, Arrow IPC or .ts)
    val: str | None = None  # validation file; when absent, a seeded share of train (stratified by label)
    test: str | None = None  # test file; when absent (and no dataset's own test split), a seeded share of train
    dataset: str | None = None  # built-in real data set (see `rnnkit datasets`)
    format: str = "auto"  # auto | csv | tsv | jsonl | parquet | arrow | ts
    delimiter: str = "auto"  # CSV/TSV field delimiter: auto (, for .csv, tab for .tsv; sniffed among , ; tab |
    # when the header reads as one column) | one character | comma | semicolon | tab | pipe
    input: str = "auto"  # auto | text | numeric | long
    text_column: str = "text"
    sequence_column: str = "sequence"  # numeric input: a JSON list per cell
    label_column: str = "label"
    id_column: str | None = None  # long format: the sequence id
    time_column: str | None = None  # long format: the time / order column
    feature_columns: list[str] | None = None  # long format: channels (default: all other columns)
    tokenize: str = "whitespace"  # whitespace | char
    lowercase: bool = False
    min_freq: int = 1  # tokens seen fewer times map to <unk>
    max_vocab: int | None = None  # vocabulary size cap, specials included
    max_length: int = 512  # longer sequences are truncated (rows and positions cut are reported)
    truncate_keep: str = "head"  # head | tail | head_tail: what an over-long sequence keeps (head_tail: its first
    # and last steps)
    truncate_head: float = 0.25  # head_tail: the head's share of the kept steps (< 1) or its count of steps (>= 1);
    # the tail gets the rest (0.25 of 512: the first 128 and the last 384 steps, near Sun et al. 2019's best cut)
    long_sequences: str = "auto"  # auto | truncate | window | hierarchical: rows longer than max_length are
    # truncated, or read whole in windows (classify), or in blocks (the windows) whose vectors a document-level RNN
    # reads in order (hierarchical); auto: hierarchical when >= 10% of the training rows are longer than 4 x
    # max_length, else window when >= 10% are longer than max_length, else truncate
    window_length: int | None = None  # window / hierarchical: steps per window (block), each encoded alone and
    # pooled to one vector; null = max_length
    window_stride: int | None = None  # window: steps from one window's start to the next; null = the window length
    # (no overlap); smaller strides overlap the windows (and cost more)
    max_windows: int = 8  # window: windows per document at most (memory); a longer document is cut, as truncation
    # cuts (data.truncate_keep), to the steps that many windows cover; rows and positions cut are reported
    window_combine: str = "mean"  # window: mean (the mean of the window logits) | attention (attention over the
    # window vectors, then the output layer); hierarchical always combines with its document-level RNN
    bad_rows: str = "error"  # error | skip (skip writes rejects.jsonl)
    max_bad_fraction: float = 0.01  # skip still fails above this share of bad rows
    val_fraction: float = 0.1
    min_val_rows: int = 0  # > 0: a carved validation split that would hold fewer rows takes a larger share of
    # train (up to 25%), with a warning. Off by default: measured, it cost small sets more accuracy (fewer
    # training rows) than the steadier early stopping gave back (BENCHMARKS.md, "Model selection")
    test_fraction: float = 0.1
    split_seed: int = 0
    standardize: bool = True  # per-channel z-score fitted on train only (numeric input)
    batch_size: int = 32  # guide: 32-128; 16-32 for small data sets
    bucketing: bool = True  # length-bucketed batches (far less padding)
    bucket_chunk: int = 100  # batches per sorting chunk
    storage: str = "memory"  # memory | disk | stream: disk keeps the token ids of text rows (CSV, TSV, JSONL,
    # Parquet, Arrow; classify) in memory-mapped files, so a training file larger than memory trains (the page
    # cache holds what is read); same data, same results
    spill_dir: str | None = None  # data.storage=disk: where those files go (null: the run directory); each is
    # unlinked once mapped, so nothing is left behind
    # data.storage=stream (classify, text rows of one Parquet or Arrow IPC training file): read by row groups
    # (Arrow: record batches) twice (a scan, then each epoch), never whole; memory holds the shuffle buffer, the
    # held-out rows and a sample of train
    shuffle_buffer: int = 100_000  # data.storage=stream: training rows decoded at a time (whole row groups);
    # batches are bucketed by length within it
    stream_holdout_rows: int = 20_000  # data.storage=stream: the most rows data.val_fraction / test_fraction
    # carve (by a hash of the row number) for validation and for test, each


@dataclass
class ModelConfig:
    cell: str = "lstm"  # lstm | gru
    embedding_dim: int = 128  # token embedding or numeric input projection size
    hidden_size: int = 128  # guide: 128-512
    num_layers: int = 2  # guide: 1-2 simple tasks, 2-4 complex
    bidirectional: bool = True
    dropout: float = 0.3  # locked dropout between layers; guide: 0.3-0.5
    input_dropout: float = 0.0  # locked dropout on the encoder input
    recurrent_dropout: float = 0.2  # DropConnect on hidden-to-hidden weights; guide: 0.1-0.3
    layer_norm: bool = False
    residual: bool | None = None  # null = on above 2 layers
    pooling: str = "last"  # last | attention | mean
    packing: str = "auto"  # auto (pack on CUDA, pad+mask on CPU) | always | never
    frontend: str = "auto"  # auto | none | conv | patch: shorten long numeric sequences before the recurrent
    # layers (classify, regress); auto: conv when the median training length is above 100 steps, else none
    frontend_reduction: int | None = None  # the front-end's length reduction factor; null = the smallest power
    # of 2 that brings the median training length to <= 100 steps


@dataclass
class OptimConfig:
    lr: float = 1e-3  # guide: start at 1e-3 to 1e-2
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 1.0  # linear warm-up from 0
    plateau_patience: int = 5  # epochs without val improvement before LR x plateau_factor
    plateau_factor: float = 0.5
    cooldown_epochs: int = 0  # linear decay to min_lr over the final epochs of max_epochs
    min_lr: float = 1e-5
    clip_norm: float | None = 1.0  # global grad-norm clipping; null disables it
    accumulate: int = 1  # gradient accumulation steps


@dataclass
class TrainConfig:
    max_epochs: int = 100
    patience: int = 10  # early stopping: epochs without a better validation figure (train.monitor); guide: 10-20
    min_epoch_steps: int = 8  # a pass over a training set that fills fewer optimizer steps counts as a fraction of
    # an epoch for the settings that count epochs (warm-up, plateau decay, early stopping, max_epochs): 18 rows at
    # batch 32 (1 step a pass) count 8 passes as one epoch, each pass validated (1 = off)
    train_eval_rows: int | None = 2000  # the final scoring of the training split (summary.json metrics.train, the
    # doctor's train/validation gap) reads a seeded sample of this many training rows when there are more (stated
    # in summary.json train_eval); null = every row. Validation and test are always scored whole
    max_batch_positions: int | str = "auto"  # memory: a batch of more padded positions (rows x longest row's steps)
    # than this runs forward and backward in pieces of fewer rows whose gradients add up to the batch's (the same
    # step; the activations of one piece in memory at a time). auto: data.batch_size x the window (data.window_length,
    # else data.max_length), which only documents read in several windows reach; 0 = batches run whole
    class_balance: str = "auto"  # sequence classes: auto (logit_adjust when the largest training class is 3x the
    # smallest or more) | none | logit_adjust (train on logits + log class shares, predict on the logits: the
    # balanced-error loss of Menon et al. 2021; stated in the model line)
    monitor: str = "auto"  # the validation figure that picks the best epoch, stops early and decays the rate on
    # plateaus, ties going to the lower loss: auto (numeric sequence classes with fewer than 20 validation rows:
    # fit_loss; macro_f1 for imbalanced classes with >= 10 of the rarest in validation, else the loss; entity_f1
    # for BIO/BIOES tags; wer for seq2seq; the loss for forecast and regress) | loss | fit_loss (the loss over the
    # training rows in evaluation mode: training runs while the fit improves) | a validation metric's name
    refit: bool | str = False  # false | true | auto: after early stopping picks the best epoch E, train a second
    # model from the same seed on train + validation for E epochs (the same schedule, the plateau decay replayed)
    # and make it the run's final model (test, predict, export); the validation figures stay the first model's.
    # auto: true when validation holds fewer than 30 rows. Off by default: measured on 7 small UCR sets it did not
    # help reliably (BENCHMARKS.md, "Refit on train + validation")
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    threads: int | None = None  # intra-op threads; null = auto: free cores / rnnkit trainings; OMP_NUM_THREADS wins
    log_every: int = 20  # steps between metric lines
    probe_every: int | None = 100  # steps between live probes (per-layer gradient norms, update/weight ratios,
    # gate saturation, dead outputs: "probe" lines in metrics.jsonl, read by the doctor); null or 0 = off
    min_probes: int = 20  # a run planned for fewer than probe_every x min_probes steps probes more often, so that
    # the doctor gets this many (0 = exactly every probe_every steps)
    checkpoint_every: int = 500  # steps between mid-epoch checkpoints (one is always written per epoch)
    nonfinite: str = "stop"  # stop: halt on a NaN/Inf loss, keep the last valid checkpoint | repair: then continue
    # from that checkpoint with a 10x lower learning rate (at most twice), as the doctor advises
    keep_checkpoints: int = 2  # step checkpoints kept (besides the best)
    progress: str = "auto"  # auto (bar on a terminal) | bar | plain | none
    tensorboard: bool = False  # also write every metrics.jsonl number as TensorBoard scalars in DIR/tensorboard/
    # (`tensorboard --logdir DIR/tensorboard`; needs pip install 'rnnkit[tensorboard]'); metrics.jsonl stays the record


CORE_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def nest(flat: dict[str, Any]) -> dict:
    """{"model.hidden_size": 64} -> {"model": {"hidden_size": 64}}."""
    out: dict = {}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out
