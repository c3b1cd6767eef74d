"""Typed configuration: one source of truth for a run.

A `Config` has the `task`, four core sections (`data`, `model`, `optim`, `train`) and one section
per task family that has settings of its own (`cfg.tag`, `cfg.forecast`, ...). It is built from
defaults, then a YAML file, then `key=value` overrides, in that order. Unknown keys are errors with
the nearest valid key suggested; values are checked for type and range before any data is read.
The resolved config is saved in the run directory and in every checkpoint.

Family sections. This module is the bottom layer and names no family: a family's module (in
`rnnkit.tasks`) declares its section dataclass and calls `register_section` at import, with the
section's choices, hard ranges and architecture keys. So that no config can lack a family's
section, whoever asks first, every reader of the registry (`Config()`, `merge`, `resolve`, `TASKS`,
...) calls `load_families()` first: the one, lazy, import of `rnnkit.tasks` from this module, which
imports every family module once (and returns at once while that import is under way). It is the one
import from a layer above (pyproject.toml's import-linter contract names it in `ignore_imports`).

Built-in data sets. `resolve` takes a named data set's task from the data-set registry, a layer above
(`rnnkit.data.datasets`); that module passes its look-up in with `register_dataset_tasks` at import.

Defaults follow the field guide (GUIDE.md): AdamW, LR 1e-3 with warm-up, plateau decay x0.5,
clipping at 1.0, early stopping with patience 10, dropout 0.3, recurrent dropout 0.2.
"""

from __future__ import annotations

import dataclasses
import difflib
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rnnkit.errors import ConfigError, shorten


@dataclass
class DataConfig:
    train: str | None = None  # training file (CSV, TSV, JSONL, Parquet or .ts)
    val: str | None = None  # validation file; when absent, a seeded stratified share of train
    test: str | None = None  # test file; when absent and no dataset, a seeded share of train
    dataset: str | None = None  # built-in real data set (see `rnnkit datasets`)
    format: str = "auto"  # auto | csv | tsv | jsonl | parquet | ts
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
    max_length: int = 512  # longer sequences are truncated (the count is reported)
    truncate_keep: str = "head"  # head | tail: which end of an over-long sequence to keep
    bad_rows: str = "error"  # error | skip (skip writes rejects.jsonl)
    max_bad_fraction: float = 0.01  # skip still fails above this share of bad rows
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    standardize: bool = True  # per-channel z-score fitted on train only (numeric input)
    batch_size: int = 32  # guide: 32-128; 16-32 for small data sets
    bucketing: bool = True  # length-bucketed batches (far less padding)
    bucket_chunk: int = 100  # batches per sorting chunk


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
    patience: int = 10  # early stopping on val loss; guide: 10-20
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    threads: int | None = None  # intra-op threads; null = auto: free cores / rnnkit trainings; OMP_NUM_THREADS wins
    log_every: int = 20  # steps between metric lines
    checkpoint_every: int = 500  # steps between mid-epoch checkpoints (one is always written per epoch)
    nonfinite: str = "stop"  # stop: halt on a NaN/Inf loss, keep the last valid checkpoint | repair: then continue
    # from that checkpoint with a 10x lower learning rate (at most twice), as the doctor advises
    keep_checkpoints: int = 2  # step checkpoints kept (besides the best)
    progress: str = "auto"  # auto (bar on a terminal) | bar | plain | none


CORE_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}
# Every section, core first, then the families' (registered by `register_section`), sorted by name so that
# config.yaml does not depend on the order the family modules happened to be imported in.
SECTIONS: dict[str, type] = dict(CORE_SECTIONS)
_OWNERS: dict[str, str | None] = {}  # family section -> the task that owns it (None: shown for every task)
# Changing these on resume would change what the weights mean: refused with a diff.
ARCHITECTURE_KEYS: tuple[str, ...] = ("task", "model", "data.input", "data.tokenize", "data.lowercase",
                                      "data.min_freq", "data.max_vocab", "data.standardize")

CHOICES = {  # and "task": one of `task_names()`
    "data.format": ("auto", "csv", "tsv", "jsonl", "parquet", "ts"),
    "data.input": ("auto", "text", "numeric", "long"),
    "data.tokenize": ("whitespace", "char"),
    "data.truncate_keep": ("head", "tail"),
    "data.bad_rows": ("error", "skip"),
    "model.cell": ("lstm", "gru"),
    "model.pooling": ("last", "attention", "mean"),
    "model.packing": ("auto", "always", "never"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.nonfinite": ("stop", "repair"),
    "train.progress": ("auto", "bar", "plain", "none"),
}
RANGES = {  # hard limits: outside them the value cannot work
    "data.min_freq": (1, None), "data.max_length": (1, None), "data.max_bad_fraction": (0.0, 1.0),
    "data.val_fraction": (0.0, 0.9), "data.test_fraction": (0.0, 0.9), "data.batch_size": (1, None),
    "data.bucket_chunk": (1, None), "data.max_vocab": (3, None),
    "model.embedding_dim": (1, None), "model.hidden_size": (1, None), "model.num_layers": (1, None),
    "model.dropout": (0.0, 0.99), "model.input_dropout": (0.0, 0.99), "model.recurrent_dropout": (0.0, 0.99),
    "optim.lr": (0.0, None), "optim.weight_decay": (0.0, None), "optim.warmup_epochs": (0.0, None),
    "optim.plateau_patience": (1, None), "optim.plateau_factor": (0.0, 1.0), "optim.cooldown_epochs": (0, None),
    "optim.min_lr": (0.0, None), "optim.clip_norm": (0.0, None), "optim.accumulate": (1, None),
    "train.max_epochs": (1, None), "train.patience": (1, None), "train.threads": (1, None),
    "train.log_every": (1, None), "train.checkpoint_every": (1, None), "train.keep_checkpoints": (1, None),
}
# keys whose lower bound is itself invalid: a learning rate of 0 trains nothing, a plateau factor of 0 sets it to 0
EXCLUSIVE_LOW = {"optim.lr", "optim.plateau_factor"}
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


# ----------------------------------------------------------------------------- the families' registry

_families_lock = threading.RLock()
_families_state = {"loaded": False, "loading": False}


def _families():
    """The `rnnkit.tasks` package, imported here lazily (its family modules import this module)."""
    # The one upward import of this module: the families register their config sections here, so the
    # registry must import them before it can answer (ignored by name in pyproject.toml's layers contract).
    import rnnkit.tasks as families

    return families


def load_families() -> None:
    """Import every task family once, so that each has registered its config section.

    Called by every reader of the registry, so it needs no caller to remember it. While the families are
    being imported (a family module that builds a Config at import), it returns at once: that Config gets
    the sections registered so far, and `Config.__getattr__` adds the rest when they are asked for.
    A failed import leaves the registry unloaded (and is retried, and raises again, on the next call).
    """
    if _families_state["loaded"]:
        return
    with _families_lock:
        if _families_state["loaded"] or _families_state["loading"]:
            return
        _families_state["loading"] = True
        try:
            _families().load_all()
            _families_state["loaded"] = True
        finally:
            _families_state["loading"] = False


def task_names() -> tuple[str, ...]:
    """The task families (`--task` values), without importing them."""
    return tuple(_families().available())


def default_task() -> str:
    """The task of a config that names none."""
    return _families().DEFAULT_TASK


_dataset_task: Callable[[str], str] | None = None  # the data-set registry's look-up, once it has passed it in


def register_dataset_tasks(lookup: Callable[[str], str]) -> None:
    """Give `resolve` the task of a built-in data set: `lookup(name)` -> its task (ConfigError if unknown).

    `rnnkit.data.datasets`, which holds the data sets and sits above this module, calls this at import;
    every family module imports it to register its data sets, so it has done so once `load_families()`
    returns. Calling this again replaces the look-up.
    """
    global _dataset_task
    _dataset_task = lookup


def dataset_task(name: str) -> str:
    """The task family of the built-in data set `name`.

    Raises:
        ConfigError: unknown name; the message lists the known names and the nearest match.
    """
    load_families()  # the families register their data sets (importing rnnkit.data.datasets, the look-up)
    if _dataset_task is None:  # no family imported the registry: no data set exists
        raise ConfigError(f"unknown built-in data set {name!r}; no built-in data sets are registered")
    return _dataset_task(name)


def register_section(name: str, cls: type, *, task: str | None = None, choices: dict | None = None,
                     ranges: dict | None = None, architecture: tuple[str, ...] = ()) -> type:
    """Add a task family's config section: `cfg.<name>` on every Config, `name:` in YAML, `--set name.key=v`.

    A family's module calls this at import (registering again, e.g. on a reload, replaces the entry).

    Args:
        name: the section's name; not "task" nor a core section.
        cls: a dataclass whose fields all have defaults; the `# comment` after each field is what
            `rnnkit config` prints beside it.
        task: the family that owns the section: `rnnkit config --task TASK` prints it, other tasks'
            printed configs leave it out (it is saved in every config.yaml all the same). None: printed
            for every task.
        choices: key within the section -> its allowed values, e.g. {"head": ("auto", "direct")}.
        ranges: key -> (low, high) hard limits (None: unbounded on that side).
        architecture: keys whose change on resume would change what the weights mean (refused with a diff).

    Returns:
        `cls`.

    Raises:
        ValueError: a reserved name, a class that is not a dataclass, a key that is not one of its fields,
            or a name another task already registered (programming errors, not user errors).
    """
    global ARCHITECTURE_KEYS, SECTIONS
    if name == "task" or name in CORE_SECTIONS or "." in name:
        raise ValueError(f"config section name {name!r} is reserved or not a plain name")
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"config section {name!r}: {cls!r} is not a dataclass")
    if name in _OWNERS and _OWNERS[name] != task:
        raise ValueError(f"config section {name!r} is registered by task {_OWNERS[name]!r} already")
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in [*(choices or {}), *(ranges or {}), *architecture]:
        if key not in fields:
            raise ValueError(f"config section {name!r}: {key!r} is not a field of {cls.__name__}")
    prefix = name + "."
    for table in (CHOICES, RANGES):
        for key in [k for k in table if k.startswith(prefix)]:
            del table[key]
    CHOICES.update({prefix + k: tuple(v) for k, v in (choices or {}).items()})
    RANGES.update({prefix + k: tuple(v) for k, v in (ranges or {}).items()})
    ARCHITECTURE_KEYS = (*(k for k in ARCHITECTURE_KEYS if not k.startswith(prefix)),
                         *(prefix + k for k in architecture))
    _OWNERS[name] = task
    family = {n: c for n, c in SECTIONS.items() if n not in CORE_SECTIONS}
    family[name] = cls
    SECTIONS = {**CORE_SECTIONS, **dict(sorted(family.items()))}
    return cls


def __getattr__(name: str):
    if name == "TASKS":  # the family names, found when asked (families land as modules in rnnkit.tasks)
        return task_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Config:
    """A run's whole configuration: `task`, the core sections `data`, `model`, `optim`, `train`, and every
    registered family section (`cfg.tag`, `cfg.forecast`, ... whatever the task), each a dataclass.

    `Config(task=None, **sections)`: missing sections get their defaults, `task` the default task.
    Equality compares `to_dict()`. Not a dataclass itself: its fields depend on the families present.
    """

    task: str
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    train: TrainConfig

    def __init__(self, task: str | None = None, **sections: Any) -> None:
        load_families()
        unknown = [n for n in sections if n not in SECTIONS]
        if unknown:
            raise TypeError(f"Config() got unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
        self.task = default_task() if task is None else task
        for name, cls in SECTIONS.items():
            setattr(self, name, sections[name] if name in sections else cls())

    def __getattr__(self, name: str):
        # Reached only for a name the instance lacks: a family section registered after this Config was
        # built gets its defaults here, rather than the Config silently lacking it.
        if not name.startswith("_"):
            if name not in SECTIONS:
                load_families()
            cls = SECTIONS.get(name)
            if cls is not None:
                value = cls()
                self.__dict__[name] = value
                return value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        parts = [f"task={self.task!r}", *(f"{name}={getattr(self, name)!r}" for name in SECTIONS)]
        return f"Config({', '.join(parts)})"

    def to_dict(self) -> dict:
        return {"task": self.task, **{name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _nearest(key: str, options) -> str:
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else f" Valid keys: {', '.join(sorted(options))}."


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against the field's type; ints are accepted for floats."""
    args = typing.get_args(annotation)
    is_optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if value is None:
        if is_optional:
            return None
        raise ConfigError(f"config key {key!r}: null is not allowed; give a value.")
    base = next((a for a in args if a is not type(None)), annotation) if is_optional else annotation
    origin = typing.get_origin(base)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r}: expected a list, got {shorten(repr(value))}.")
        (item,) = typing.get_args(base)
        return [_coerce(key, v, item) for v in value]
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true or false, got {shorten(repr(value))}.")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected an integer, got {shorten(repr(value))}.")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {shorten(repr(value))}.")
    if base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {shorten(repr(value))}.")
    return value


def _check(cfg: Config) -> None:
    load_families()
    flat = flatten(cfg.to_dict())
    for key, options in {"task": task_names(), **CHOICES}.items():
        if flat[key] not in options:
            raise ConfigError(f"config key {key!r}: {shorten(repr(flat[key]))} is not one of {', '.join(options)}.")
    for key, (low, high) in RANGES.items():
        value = flat[key]
        if value is None:
            continue
        strict = key in EXCLUSIVE_LOW
        if (low is not None and (value <= low if strict else value < low)) or (high is not None and value > high):
            bound = f"{'>' if strict else '>='} {low}" + ("" if high is None else f" and <= {high}")
            hint = f" ({GUIDE_RANGES[key][2]})" if key in GUIDE_RANGES else ""
            raise ConfigError(f"config key {key!r}: {shorten(repr(value))} is out of range; it must be {bound}"
                              f"{hint}.")
    d = cfg.data
    if d.val_fraction + d.test_fraction >= 0.95:
        raise ConfigError("config keys 'data.val_fraction' + 'data.test_fraction' must leave data for training "
                          f"(sum {d.val_fraction + d.test_fraction:.2f} >= 0.95).")


def guide_warnings(cfg: Config) -> list[str]:
    """Values outside the guide's recommended ranges (allowed, but worth a second look)."""
    flat = flatten(cfg.to_dict())
    out = []
    for key, (low, high, why) in GUIDE_RANGES.items():
        v = flat[key]
        if v is not None and not (low <= v <= high):
            out.append(f"{key}={v} is outside {low}-{high}: {why}.")
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def merge(cfg: Config, updates: dict, *, source: str = "config") -> Config:
    """Return a new Config with nested `updates` applied; unknown keys raise ConfigError."""
    load_families()
    data = cfg.to_dict()
    for key, value in updates.items():
        if key == "task":
            data["task"] = _coerce("task", value, str)
            continue
        if key not in SECTIONS:
            raise ConfigError(f"{source}: unknown section {key!r}." + _nearest(key, ["task", *SECTIONS]))
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: section {key!r} must be a mapping of keys to values, "
                              f"got {shorten(repr(value))}.")
        types_ = _field_types(SECTIONS[key])
        for sub, v in value.items():
            if sub not in types_:
                raise ConfigError(f"{source}: unknown key '{key}.{sub}'."
                                  + _nearest(f"{key}.{sub}", [f"{key}.{t}" for t in types_]))
            data[key][sub] = _coerce(f"{key}.{sub}", v, types_[sub])
    new = Config(task=data["task"], **{name: cls(**data[name]) for name, cls in SECTIONS.items()})
    _check(new)
    return new


def parse_overrides(pairs: list[str]) -> dict:
    """Turn ["optim.lr=3e-3", "model.cell=gru"] into a nested dict (values parsed as YAML)."""
    load_families()  # the sections named in the error below
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. --set optim.lr=3e-3.")
        key, raw = pair.split("=", 1)
        key = key.strip()
        value = yaml.safe_load(raw) if raw.strip() else None
        if key == "task":
            nested["task"] = value
            continue
        if "." not in key:
            raise ConfigError(f"--set {pair!r}: keys are section.name, e.g. optim.lr; sections: "
                              f"{', '.join(SECTIONS)}.")
        section, name = key.split(".", 1)
        nested.setdefault(section, {})
        if not isinstance(nested[section], dict):
            raise ConfigError(f"--set {pair!r}: {section!r} is a section, not a value.")
        nested[section][name] = value
    return nested


def load_yaml(path: str | Path) -> dict:
    """Read a YAML config safely (yaml.safe_load: no object construction, no code execution)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot be read ({exc.strerror}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        loc = f"{p}:{where.line + 1}:{where.column + 1}" if where else str(p)
        raise ConfigError(f"config file {loc}: not valid YAML ({getattr(exc, 'problem', exc)}). "
                          "Only plain YAML is accepted (no !!python tags).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping of sections (data, model, optim, train).")
    return data


def resolve(config_file: str | Path | None = None, overrides: list[str] | None = None,
            base: Config | None = None) -> Config:
    """The config in layers: generic defaults <- task/data-set defaults <- YAML file <- key=value overrides.

    The middle layer comes from the task family (e.g. forecasting prefers a unidirectional encoder,
    a built-in data set brings its published protocol); it sits *under* everything the user wrote,
    so an explicit value always wins, even one equal to the generic default. With `base` (a saved
    run's config on resume) the layers below the file are replaced by `base`.
    """
    file_data = load_yaml(config_file) if config_file is not None else {}
    over = parse_overrides(overrides) if overrides else {}
    if base is None:
        user = {**flatten(file_data), **flatten(over)}
        base = Config()
        task = user.get("task")
        if task is None and user.get("data.dataset"):  # a built-in data set knows its task
            task = dataset_task(str(user["data.dataset"]))
            base = merge(base, {"task": task}, source="data set")
        layer = task_defaults(str(task or default_task()), user.get("data.dataset"), user)
        if layer:
            base = merge(base, layer, source=f"{task} defaults")
    cfg = merge(base, file_data, source=str(config_file)) if file_data else base
    cfg = merge(cfg, over, source="--set") if over else cfg
    _check(cfg)
    return cfg


def task_defaults(task: str, dataset: str | None, user: dict[str, Any]) -> dict:
    """The task family's default layer (nested dict), given what the user set explicitly (flat keys)."""
    if task not in task_names():
        return {}  # merge reports the unknown task with the valid names
    family = _families().get_task(task)
    return family.defaults(dataset, user) if family.defaults is not None else {}


def nest(flat: dict[str, Any]) -> dict:
    """{"model.hidden_size": 64} -> {"model": {"hidden_size": 64}}."""
    out: dict = {}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out


def from_dict(d: dict) -> Config:
    return merge(Config(), d, source="saved config")


def diff(old: Config, new: Config) -> list[tuple[str, Any, Any]]:
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def is_architecture_key(key: str) -> bool:
    load_families()
    return any(key == k or key.startswith(k + ".") for k in ARCHITECTURE_KEYS)


def commented_default(task: str | None = None, dataset: str | None = None) -> str:
    """The config a run of `task` (on built-in `dataset`) would use, as YAML with each key's comment,
    for `rnnkit config`.

    The values are resolved with the task's (and data set's) default layer: a config file sets every
    key explicitly, so a file of generic defaults would override that layer (e.g. a data set's
    published split) when given back with --config. `task` None: the default task."""
    load_families()
    task = default_task() if task is None else task
    if task not in task_names():
        raise ConfigError(f"unknown task {task!r}; tasks: {', '.join(task_names())}.")
    import inspect

    resolved = resolve(None, [f"task={task}"] + ([f"data.dataset={dataset}"] if dataset else [])).to_dict()
    target = f"task {task!r}" + (f" on data set {dataset!r}" if dataset else "")
    lines = [f"# rnnkit config for {target}, with its defaults resolved. Edit, then: rnnkit train --config FILE.yaml",
             f"task: {task}"]
    for name, cls in SECTIONS.items():
        if _OWNERS.get(name, task) not in (task, None):  # another family's section
            continue
        lines.append(f"{name}:")
        source = inspect.getsource(cls)
        comments: dict[str, list[str]] = {}
        key = None
        for line in source.splitlines():
            stripped = line.strip()
            if ":" in stripped and "#" in stripped and not stripped.startswith(("#", "class", '"', "'")):
                key = stripped.split(":", 1)[0]
                comments[key] = [stripped.split("#", 1)[1].strip()]
            elif stripped.startswith("#") and key is not None:  # a comment continued on the next line
                comments[key].append(stripped[1:].strip())
            else:
                key = None
        for key, value in resolved[name].items():
            rendered = yaml.safe_dump({key: value}, default_flow_style=True).strip()[1:-1]
            note = comments.get(key, [])
            lines.append(f"  {rendered}" + (f"  # {note[0]}" if note else ""))
            lines += [f"    # {more}" for more in note[1:]]
    return "\n".join(lines) + "\n"
