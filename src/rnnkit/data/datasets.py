"""Built-in real data sets, found inside installed Python packages. No network access, ever.

Each entry names the package that ships the files and the command that installs it. The
package is located with `importlib.util.find_spec`, without importing it (importing sktime,
for instance, would pull in its heavy dependencies).

A task family registers its data sets in its own module (`register(BuiltinDataset(...))` at import);
files that are not found relative to a package directory: `DistributionDataset`, or a subclass of
`BuiltinDataset` that overrides `files`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.config import load_families, register_dataset_tasks
from rnnkit.errors import ConfigError, RnnkitError


@dataclass(frozen=True)
class BuiltinDataset:
    """A data set shipped inside an installable package.

    Attributes:
        name: registry key, e.g. "japanese_vowels".
        task: the task family that reads it (its `--task` name).
        package: top-level import name of the package that ships the files.
        install: shell command that installs the package.
        description: one line on what the data is.
        reference: published results to compare with.
        data_files: split name -> file path relative to the package directory.
        reader_options: keyword arguments for `rnnkit.data.readers.read_records`.
    """

    name: str
    task: str
    package: str
    install: str
    description: str
    reference: str
    data_files: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    reader_options: dict = field(default_factory=dict, compare=False, hash=False)

    def package_dirs(self) -> list[Path]:
        """Directories of the installed package ([] when it is not installed)."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
            return []
        if spec is None or not spec.submodule_search_locations:
            return []
        return [Path(p) for p in spec.submodule_search_locations]

    def _locate(self) -> dict[str, Path] | None:
        for root in self.package_dirs():
            found = {split: root / rel for split, rel in self.data_files.items()}
            if all(p.is_file() for p in found.values()):
                return found
        return None

    def installed(self) -> bool:
        """True when the package is installed and holds every data file."""
        return self._locate() is not None

    def files(self) -> dict[str, Path]:
        """Split name -> path of the data file, e.g. ``{"train": ..., "test": ...}``.

        Raises:
            RnnkitError: the package or a file is missing; the message gives the install command.
        """
        found = self._locate()
        if found is not None:
            return found
        dirs = self.package_dirs()
        if not dirs:
            raise RnnkitError(
                f"built-in data set {self.name!r} needs the package {self.package!r}, which is not "
                f"installed; install it with: {self.install}"
            )
        missing = [str(d / rel) for d in dirs[:1] for rel in self.data_files.values() if not (d / rel).is_file()]
        raise RnnkitError(
            f"built-in data set {self.name!r}: the package {self.package!r} is installed at {dirs[0]} but "
            f"lacks {', '.join(missing)}; reinstall it with: {self.install}"
        )


@dataclass(frozen=True)
class DistributionDataset(BuiltinDataset):
    """A data set whose files a distribution installs outside any importable package.

    turkish-treebanks, for instance, puts its CoNLL-U files in a top-level ``data/`` folder of
    site-packages; they are found through the distribution's file list (``importlib.metadata``), never
    by importing a module called "data". `data_files` are paths in that list.
    """

    distribution: str = ""

    def _locate(self) -> dict[str, Path] | None:
        try:
            files = importlib.metadata.distribution(self.distribution).files or []
        except importlib.metadata.PackageNotFoundError:
            return None
        by_path = {str(f).replace("\\", "/"): f for f in files}
        found = {}
        for section, rel in self.data_files.items():
            f = by_path.get(rel)
            if f is None or not Path(f.locate()).is_file():
                return None
            found[section] = Path(f.locate())
        return found

    def files(self) -> dict[str, Path]:
        found = self._locate()
        if found is None:
            raise RnnkitError(f"built-in data set {self.name!r} needs the files {', '.join(self.data_files.values())}"
                              f" of the distribution {self.distribution!r}, which are not installed; install them "
                              f"with: {self.install}")
        return found


BUILTIN: dict[str, BuiltinDataset] = {}


def register(dataset: BuiltinDataset) -> BuiltinDataset:
    """Add a data set to `BUILTIN`.

    Raises:
        ValueError: the name is already taken (a programming error, not a user error).
    """
    if dataset.name in BUILTIN:
        raise ValueError(f"built-in data set {dataset.name!r} is registered twice")
    BUILTIN[dataset.name] = dataset
    return dataset


def get_builtin(name: str) -> BuiltinDataset:
    """The registered data set `name`.

    Raises:
        ConfigError: unknown name; the message lists the known names and the nearest match.
    """
    _load_families()
    try:
        return BUILTIN[name]
    except (KeyError, TypeError):
        pass
    known = sorted(BUILTIN)
    near = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"unknown built-in data set {name!r}{hint}; known data sets: {', '.join(known)}")


def builtin_task(name: str) -> str:
    """The task family of the registered data set `name` (ConfigError as `get_builtin`)."""
    return get_builtin(name).task


register_dataset_tasks(builtin_task)  # `config.resolve` takes a named data set's task from here


def _load_families() -> None:
    """Task families register their built-in data sets when imported (`config.load_families` imports them
    all once; this module, below the families, never imports them itself)."""
    load_families()


def list_builtins() -> list[dict]:
    """One dict per data set (sorted by name): name, task, installed, package, install,
    description, reference."""
    _load_families()
    return [
        {
            "name": d.name,
            "task": d.task,
            "installed": d.installed(),
            "package": d.package,
            "install": d.install,
            "description": d.description,
            "reference": d.reference,
        }
        for d in sorted(BUILTIN.values(), key=lambda d: d.name)
    ]
