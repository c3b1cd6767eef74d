"""Typed configuration: one source of truth for a run.

A `Config` has the `task`, four core sections (`data`, `model`, `optim`, `train`) and one section
per task family that has settings of its own (`cfg.tag`, `cfg.forecast`, ...). It is built from
defaults, then a YAML file, then `key=value` overrides, in that order. Unknown keys are errors with
the nearest valid key suggested; values are checked for type and range before any data is read.
The resolved config is saved in the run directory and in every checkpoint.

Family sections. This package is the bottom layer and names no family: a family's module (in
`rnnkit.tasks`) declares its section dataclass and calls `register_section` at import, with the
section's choices, hard ranges and architecture keys. So that no config can lack a family's
section, whoever asks first, every reader of the registry (`Config()`, `merge`, `resolve`, `TASKS`,
...) calls `load_families()` first: the one, lazy, import of `rnnkit.tasks` from this package
(in `registry`), which imports every family module once (and returns at once while that import is
under way). It is the one import from a layer above (pyproject.toml's import-linter contracts name it
in `ignore_imports`).

Built-in data sets. `resolve` takes a named data set's task from the data-set registry, a layer above
(`rnnkit.data.datasets`); that module passes its look-up in with `register_dataset_tasks` at import.

Defaults follow the field guide (GUIDE.md): AdamW, LR 1e-3 with warm-up, plateau decay x0.5,
clipping at 1.0, early stopping with patience 10, dropout 0.3, recurrent dropout 0.2.

The modules (each importing only those above it in this list):

* `schema`: the core sections' dataclasses (`DataConfig`, ...), `CORE_SECTIONS`, `flatten` / `nest`;
* `rules`: the rule tables `CHOICES`, `RANGES`, `EXCLUSIVE_LOW`, `GUIDE_RANGES`;
* `registry`: the sections registry (`SECTIONS`, `ARCHITECTURE_KEYS`, `register_section`) and the task
  families (`load_families`, `task_names`, `default_task`, `dataset_task`);
* `runconfig`: the `Config` class;
* `checks`: a value against its type, a Config against the rules, `guide_warnings`;
* `layering`: `merge`, `parse_overrides`, `load_yaml`, `resolve`, `from_dict`, `diff`;
* `commented`: `commented_default`, the YAML that `rnnkit config` prints.

This package re-exports their names: use `from rnnkit import config as C`, then `C.resolve`, `C.Config`.
The registry's tables (`C.SECTIONS`, `C.CHOICES`, ...) are read from, and assigned to, their module
through this package (so `monkeypatch.setattr(C, "SECTIONS", ...)` replaces the table every reader
uses); `C.TASKS`, the family names, is found when asked.
"""

from __future__ import annotations

import sys
import types

from rnnkit.config import registry, rules
from rnnkit.config.checks import guide_warnings
from rnnkit.config.commented import commented_default
from rnnkit.config.layering import diff, from_dict, load_yaml, merge, parse_overrides, resolve, task_defaults
from rnnkit.config.registry import (
    dataset_task,
    default_task,
    is_architecture_key,
    load_families,
    register_dataset_tasks,
    register_section,
    task_names,
)
from rnnkit.config.runconfig import Config
from rnnkit.config.schema import CORE_SECTIONS, DataConfig, ModelConfig, OptimConfig, TrainConfig, flatten, nest
from rnnkit.errors import ConfigError


def _forwarded(module: types.ModuleType, name: str) -> property:
    """`rnnkit.config.<name>`: read from, and assigned to, `module`'s own global of that name."""
    return property(lambda self: getattr(module, name), lambda self, value: setattr(module, name, value),
                    doc=f"{module.__name__}.{name}, read and assigned through rnnkit.config")


class _ConfigModule(types.ModuleType):
    """This package's module type. The registry's tables live in their own modules and `register_section`
    rebinds some of them (`SECTIONS`, `ARCHITECTURE_KEYS`), so a name imported here once would go stale:
    each is a property instead, so `C.SECTIONS` is always the registry's, and assigning it (a test's
    `monkeypatch.setattr(C, "SECTIONS", ...)`, and its undo) replaces the table every reader uses."""

    SECTIONS = _forwarded(registry, "SECTIONS")
    _OWNERS = _forwarded(registry, "_OWNERS")
    ARCHITECTURE_KEYS = _forwarded(registry, "ARCHITECTURE_KEYS")
    CHOICES = _forwarded(rules, "CHOICES")
    RANGES = _forwarded(rules, "RANGES")
    EXCLUSIVE_LOW = _forwarded(rules, "EXCLUSIVE_LOW")
    GUIDE_RANGES = _forwarded(rules, "GUIDE_RANGES")


def __getattr__(name: str):
    if name == "TASKS":  # the family names, found when asked (families land as modules in rnnkit.tasks)
        return task_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _ConfigModule

__all__ = [
    "ARCHITECTURE_KEYS", "CHOICES", "CORE_SECTIONS", "EXCLUSIVE_LOW", "GUIDE_RANGES", "RANGES", "SECTIONS",
    "Config", "ConfigError", "DataConfig", "ModelConfig", "OptimConfig", "TrainConfig",
    "commented_default", "dataset_task", "default_task", "diff", "flatten", "from_dict", "guide_warnings",
    "is_architecture_key", "load_families", "load_yaml", "merge", "nest", "parse_overrides", "register_dataset_tasks",
    "register_section", "resolve", "task_defaults", "task_names",
]
