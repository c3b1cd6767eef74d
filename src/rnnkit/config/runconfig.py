"""`Config`: a run's whole configuration, one object with a section per registered dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from rnnkit.config import registry
from rnnkit.config.registry import default_task, load_families
from rnnkit.config.schema import DataConfig, ModelConfig, OptimConfig, TrainConfig


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
        unknown = [n for n in sections if n not in registry.SECTIONS]
        if unknown:
            raise TypeError(f"Config() got unknown section(s) {', '.join(unknown)}; "
                            f"sections: {', '.join(registry.SECTIONS)}")
        self.task = default_task() if task is None else task
        for name, cls in registry.SECTIONS.items():
            setattr(self, name, sections[name] if name in sections else cls())

    def __getattr__(self, name: str):
        # Reached only for a name the instance lacks: a family section registered after this Config was
        # built gets its defaults here, rather than the Config silently lacking it.
        if not name.startswith("_"):
            if name not in registry.SECTIONS:
                load_families()
            cls = registry.SECTIONS.get(name)
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
        parts = [f"task={self.task!r}", *(f"{name}={getattr(self, name)!r}" for name in registry.SECTIONS)]
        return f"Config({', '.join(parts)})"

    def to_dict(self) -> dict:
        return {"task": self.task, **{name: dataclasses.asdict(getattr(self, name)) for name in registry.SECTIONS}}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())
