"""The rule tables a config is checked against (`rnnkit.config.checks` applies them).

* `CHOICES`: key -> its allowed values (and "task": one of `registry.task_names()`);
* `RANGES`: key -> (low, high) hard limits, None for unbounded; `EXCLUSIVE_LOW`: keys whose low bound
  itself is invalid;
* `GUIDE_RANGES`: the field guide's recommended ranges (outside them: allowed, with a warning saying why).

The core sections' entries are written here; `registry.register_section` adds (and replaces) a family
section's entries in `CHOICES` and `RANGES` in place. Readers look the tables up as `rules.CHOICES` at
call time, so that replacing a table (`monkeypatch.setattr(rnnkit.config, "CHOICES", ...)`) takes effect.
"""

from __future__ import annotations

CHOICES = {  # and "task": one of `task_names()`
    "data.format": ("auto", "csv", "tsv", "jsonl", "parquet", "arrow", "ts"),
    "data.input": ("auto", "text", "numeric", "long"),
    "data.tokenize": ("whitespace", "char"),
    "data.truncate_keep": ("head", "tail", "head_tail"),
    "data.long_sequences": ("auto", "truncate", "window", "hierarchical"),
    "data.window_combine": ("mean", "attention"),
    "data.bad_rows": ("error", "skip"),
    "data.storage": ("memory", "disk", "stream"),
    "model.cell": ("lstm", "gru"),
    "model.pooling": ("last", "attention", "mean"),
    "model.packing": ("auto", "always", "never"),
    "model.frontend": ("auto", "none", "conv", "patch"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.nonfinite": ("stop", "repair"),
    "train.progress": ("auto", "bar", "plain", "none"),
    "train.class_balance": ("auto", "none", "logit_adjust"),
}
RANGES = {  # hard limits: outside them the value cannot work
    "data.min_freq": (1, None), "data.max_length": (1, None), "data.max_bad_fraction": (0.0, 1.0),
    "data.val_fraction": (0.0, 0.9), "data.test_fraction": (0.0, 0.9), "data.min_val_rows": (0, None),
    "data.batch_size": (1, None), "data.truncate_head": (0.0, None), "data.window_length": (1, None),
    "data.window_stride": (1, None), "data.max_windows": (1, None),
    "data.bucket_chunk": (1, None), "data.max_vocab": (3, None), "data.shuffle_buffer": (1, None),
    "data.stream_holdout_rows": (1, None),
    "model.embedding_dim": (1, None), "model.hidden_size": (1, None), "model.num_layers": (1, None),
    "model.dropout": (0.0, 0.99), "model.input_dropout": (0.0, 0.99), "model.recurrent_dropout": (0.0, 0.99),
    "model.frontend_reduction": (1, None),
    "optim.lr": (0.0, None), "optim.weight_decay": (0.0, None), "optim.warmup_epochs": (0.0, None),
    "optim.plateau_patience": (1, None), "optim.plateau_factor": (0.0, 1.0), "optim.cooldown_epochs": (0, None),
    "optim.min_lr": (0.0, None), "optim.clip_norm": (0.0, None), "optim.accumulate": (1, None),
    "train.max_epochs": (1, None), "train.patience": (1, None), "train.min_epoch_steps": (1, None),
    "train.train_eval_rows": (1, None),
    "train.threads": (1, None),
    "train.log_every": (1, None), "train.checkpoint_every": (1, None), "train.keep_checkpoints": (1, None),
    "train.probe_every": (0, None),  # 0 (or null) turns the live probes off
    "train.min_probes": (0, None),
}
# keys whose lower bound is itself invalid: a learning rate of 0 trains nothing, a plateau factor of 0 sets it to 0
EXCLUSIVE_LOW = {"optim.lr", "optim.plateau_factor", "data.truncate_head"}
# The guide's recommended ranges: outside them is allowed, with a warning that says why.
GUIDE_RANGES = {
    "optim.lr": (1e-4, 1e-2, "the guide starts at 1e-3 to 1e-2"),
    "data.batch_size": (16, 128, "the guide recommends 32-128 (16-32 for small data sets)"),
    "model.hidden_size": (32, 512, "the guide's rule of thumb is 128-512 units"),
    "model.num_layers": (1, 4, "layers beyond 4 rarely help and risk vanishing gradients"),
    "model.dropout": (0.0, 0.5, "dropout of 0.7 and more risks underfitting; typical 0.3-0.5"),
    "model.recurrent_dropout": (0.0, 0.3, "the guide's recurrent dropout is usually 0.1-0.3"),
    "train.patience": (5, 20, "the guide stops after 10-20 epochs without improvement"),
}
