"""The sections registry: which sections a Config has, which task owns each, and the task families.

This package is the bottom layer and names no family: a family's module (in `rnnkit.tasks`) declares its
section dataclass and calls `register_section` at import, with the section's choices, hard ranges and
architecture keys. So that no config can lack a family's section, whoever asks first, every reader of the
registry (`Config()`, `merge`, `resolve`, `TASKS`, ...) calls `load_families()` first: the one, lazy,
import of `rnnkit.tasks` from this package, which imports every family module once (and returns at once
while that import is under way). It is the one import from a layer above (pyproject.toml's import-linter
contracts name it in `ignore_imports`).

Built-in data sets. `resolve` takes a named data set's task from the data-set registry, a layer above
(`rnnkit.data.datasets`); that module passes its look-up in with `register_dataset_tasks` at import.

`SECTIONS` and `ARCHITECTURE_KEYS` are rebound by `register_section`: read them as `registry.SECTIONS`
at call time (`rnnkit.config` forwards reads and writes of these names, and of `_OWNERS`, here).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from rnnkit.config import rules
from rnnkit.config.schema import CORE_SECTIONS
from rnnkit.errors import ConfigError

# Every section, core first, then the families' (registered by `register_section`), sorted by name so that
# config.yaml does not depend on the order the family modules happened to be imported in.
SECTIONS: dict[str, type] = dict(CORE_SECTIONS)
_OWNERS: dict[str, str | None] = {}  # family section -> the task that owns it (None: shown for every task)
# Changing these on resume would change what the weights mean: refused with a diff.
# data.long_sequences and the window keys decide whether the model reads a document in windows and how it
# combines them; data.max_length too, since auto chooses between truncation and windows by it.
ARCHITECTURE_KEYS: tuple[str, ...] = ("task", "model", "data.input", "data.tokenize", "data.lowercase",
                                      "data.min_freq", "data.max_vocab", "data.standardize", "data.max_length",
                                      "data.long_sequences", "data.window_length", "data.window_stride",
                                      "data.window_combine")


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


def get_family(task: str):
    """The task family named `task` (its `rnnkit.tasks.Task`, its module imported)."""
    return _families().get_task(task)


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
    for table in (rules.CHOICES, rules.RANGES):
        for key in [k for k in table if k.startswith(prefix)]:
            del table[key]
    rules.CHOICES.update({prefix + k: tuple(v) for k, v in (choices or {}).items()})
    rules.RANGES.update({prefix + k: tuple(v) for k, v in (ranges or {}).items()})
    ARCHITECTURE_KEYS = (*(k for k in ARCHITECTURE_KEYS if not k.startswith(prefix)),
                         *(prefix + k for k in architecture))
    _OWNERS[name] = task
    family = {n: c for n, c in SECTIONS.items() if n not in CORE_SECTIONS}
    family[name] = cls
    SECTIONS = {**CORE_SECTIONS, **dict(sorted(family.items()))}
    return cls


def shown_for(name: str, task: str) -> bool:
    """Whether `rnnkit config --task TASK` prints section `name`: a core section, a family section registered
    for every task (task None), or `task`'s own."""
    return _OWNERS.get(name, task) in (task, None)


def is_architecture_key(key: str) -> bool:
    load_families()
    return any(key == k or key.startswith(k + ".") for k in ARCHITECTURE_KEYS)
