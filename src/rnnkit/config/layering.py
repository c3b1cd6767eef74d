"""Building a Config in layers: generic defaults <- the task's (and data set's) defaults <- a YAML file
<- `key=value` overrides (`resolve`), each applied with `merge`, which checks every key and value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rnnkit.config import registry
from rnnkit.config.checks import check, coerce, field_types, nearest
from rnnkit.config.registry import dataset_task, default_task, load_families, task_names
from rnnkit.config.runconfig import Config
from rnnkit.config.schema import flatten
from rnnkit.errors import ConfigError, shorten


def merge(cfg: Config, updates: dict, *, source: str = "config") -> Config:
    """Return a new Config with nested `updates` applied; unknown keys raise ConfigError."""
    load_families()
    data = cfg.to_dict()
    for key, value in updates.items():
        if key == "task":
            data["task"] = coerce("task", value, str)
            continue
        if key not in registry.SECTIONS:
            raise ConfigError(f"{source}: unknown section {key!r}." + nearest(key, ["task", *registry.SECTIONS]))
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: section {key!r} must be a mapping of keys to values, "
                              f"got {shorten(repr(value))}.")
        types_ = field_types(registry.SECTIONS[key])
        for sub, v in value.items():
            if sub not in types_:
                raise ConfigError(f"{source}: unknown key '{key}.{sub}'."
                                  + nearest(f"{key}.{sub}", [f"{key}.{t}" for t in types_]))
            data[key][sub] = coerce(f"{key}.{sub}", v, types_[sub])
    new = Config(task=data["task"], **{name: cls(**data[name]) for name, cls in registry.SECTIONS.items()})
    check(new)
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
                              f"{', '.join(registry.SECTIONS)}.")
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
    check(cfg)
    return cfg


def task_defaults(task: str, dataset: str | None, user: dict[str, Any]) -> dict:
    """The task family's default layer (nested dict), given what the user set explicitly (flat keys)."""
    if task not in task_names():
        return {}  # merge reports the unknown task with the valid names
    family = registry.get_family(task)
    return family.defaults(dataset, user) if family.defaults is not None else {}


def from_dict(d: dict) -> Config:
    return merge(Config(), d, source="saved config")


def diff(old: Config, new: Config) -> list[tuple[str, Any, Any]]:
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
