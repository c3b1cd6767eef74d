"""`commented_default`: the config a run would use, as YAML with each key's comment (`rnnkit config`)."""

from __future__ import annotations

import inspect

import yaml

from rnnkit.config import registry
from rnnkit.config.layering import resolve
from rnnkit.config.registry import default_task, load_families, task_names
from rnnkit.errors import ConfigError


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
    resolved = resolve(None, [f"task={task}"] + ([f"data.dataset={dataset}"] if dataset else [])).to_dict()
    target = f"task {task!r}" + (f" on data set {dataset!r}" if dataset else "")
    lines = [f"# rnnkit config for {target}, with its defaults resolved. Edit, then: rnnkit train --config FILE.yaml",
             f"task: {task}"]
    notes = registry.get_family(task).config_notes
    for name, cls in registry.SECTIONS.items():
        if not registry.shown_for(name, task):  # another family's section
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
            own = notes.get(f"{name}.{key}")  # the family's word on a generic key (e.g. what it ignores)
            note = [own] if own else comments.get(key, [])
            lines.append(f"  {rendered}" + (f"  # {note[0]}" if note else ""))
            lines += [f"    # {more}" for more in note[1:]]
    return "\n".join(lines) + "\n"
