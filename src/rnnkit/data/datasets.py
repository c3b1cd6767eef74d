"""Built-in real data sets, found inside installed Python packages. No network access, ever.

Each entry names the package that ships the files and the command that installs it. The
package is located with `importlib.util.find_spec`, without importing it (importing sktime,
for instance, would pull in its heavy dependencies).

A task family registers its data sets in its own module (`register(BuiltinDataset(...))` at import);
files that are not found relative to a package directory: `DistributionDataset`, or a subclass of
`BuiltinDataset` that overrides `files`; files inside an npm package (node_modules): `NpmDataset`.
A data set that must be converted before rnnkit's readers can take it keeps the converted file under
`cache_dir()`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
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


CACHE_ENV = "RNNKIT_CACHE_DIR"


def cache_dir() -> Path:
    """Where rnnkit keeps files it derives from installed data (never downloads): $RNNKIT_CACHE_DIR, else
    $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit. Not created here."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "rnnkit"


REPO_NPM_PREFIX = ".npm-data"  # `npm install --prefix .npm-data ...` in the rnnkit checkout (README set-up)


def npm_roots(*, ask_npm: bool = True) -> list[Path]:
    """node_modules folders an npm package may be installed in, most local first: ./.npm-data/node_modules and
    ./node_modules (the working directory), the same two in the rnnkit checkout this module runs from, each
    $NODE_PATH entry, the global folders ($NPM_CONFIG_PREFIX, ~/.npm-global, /usr/local, /usr, Homebrew,
    %APPDATA%/npm), and, with `ask_npm`, what `npm root -g` prints when npm is on PATH. Only folders that exist."""
    here = Path.cwd()
    checkout = Path(__file__).resolve().parents[3]  # <checkout>/src/rnnkit/data/datasets.py
    roots = [here / REPO_NPM_PREFIX / "node_modules", here / "node_modules",
             checkout / REPO_NPM_PREFIX / "node_modules", checkout / "node_modules"]
    roots += [Path(p) for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    prefix = os.environ.get("NPM_CONFIG_PREFIX")
    if prefix:
        roots.append(Path(prefix) / "lib" / "node_modules")
    roots += [Path.home() / ".npm-global" / "lib" / "node_modules", Path("/usr/local/lib/node_modules"),
              Path("/usr/lib/node_modules"), Path("/opt/homebrew/lib/node_modules")]
    if os.environ.get("APPDATA"):
        roots.append(Path(os.environ["APPDATA"]) / "npm" / "node_modules")
    npm = shutil.which("npm") if ask_npm else None
    if npm:
        try:
            out = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=10, check=True)
            if out.stdout.strip():
                roots.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass  # a broken npm: the fixed places above still count
    seen, found = set(), []
    for root in roots:
        key = os.path.normcase(os.path.abspath(root))
        if key not in seen and root.is_dir():
            seen.add(key)
            found.append(root)
    return found


@dataclass(frozen=True)
class NpmDataset(BuiltinDataset):
    """A data set shipped inside an npm package (`package` is its npm name, e.g. "@scope/name").

    Found through `env_var` when that is set (the package's own folder, or an npm prefix or node_modules folder
    that holds it: nothing else is then searched), else in the folders of `npm_roots`. rnnkit needs npm only to
    install the package; it never runs node. `data_files` are paths relative to the package folder.
    """

    env_var: str = ""

    def _from_env(self) -> list[Path]:
        """The package folders the env var may mean ([] when it is unset)."""
        value = os.environ.get(self.env_var, "") if self.env_var else ""
        if not value:
            return []
        given = Path(value).expanduser()
        return [given, given / "node_modules" / self.package, given / self.package]

    def package_dirs(self) -> list[Path]:
        """Folders that hold a package.json of this npm package ([] when it is not installed)."""
        env = self._from_env()
        if env:
            return [d for d in env if (d / "package.json").is_file()]
        for ask_npm in (False, True):  # `npm root -g` (a subprocess) only when no fixed place holds the package
            found = [d for d in (root / self.package for root in npm_roots(ask_npm=ask_npm))
                     if (d / "package.json").is_file()]
            if found:
                return found
        return []

    def version(self, package_dir: Path) -> str:
        """The package's version (its package.json), "unknown" when unreadable."""
        try:
            return str(json.loads((package_dir / "package.json").read_text(encoding="utf-8")).get("version"))
        except (OSError, ValueError, AttributeError):
            return "unknown"

    def package_dir(self) -> Path:
        """The folder of the installed package that holds every data file.

        Raises:
            RnnkitError: not found (the message names the places searched and the install command), or found
                without some data file (reinstall).
        """
        dirs = self.package_dirs()
        for root in dirs:
            if all((root / rel).is_file() for rel in self.data_files.values()):
                return root
        if dirs:
            missing = [str(dirs[0] / rel) for rel in self.data_files.values() if not (dirs[0] / rel).is_file()]
            raise RnnkitError(f"built-in data set {self.name!r}: the npm package {self.package!r} at {dirs[0]} lacks "
                              f"{', '.join(missing)}; reinstall it with: {self.install}")
        env = os.environ.get(self.env_var, "") if self.env_var else ""
        if env:
            raise RnnkitError(f"built-in data set {self.name!r}: {self.env_var}={env!r} holds no npm package "
                              f"{self.package!r} (no package.json there, nor in node_modules/{self.package} or "
                              f"{self.package} inside it); point {self.env_var} at the package's folder, or unset it "
                              f"and install the package in the rnnkit checkout or the working directory with: "
                              f"{self.install}")
        existing = ", ".join(str(r) for r in npm_roots())
        raise RnnkitError(f"built-in data set {self.name!r} needs the npm package {self.package!r}, which is not "
                          f"installed (searched ./{REPO_NPM_PREFIX}/node_modules and ./node_modules here and in the "
                          f"rnnkit checkout, $NODE_PATH and the global node_modules folders"
                          + (f"; of these, {existing} exist" if existing else ", none of which exists")
                          + f"); install it in the rnnkit checkout or the working directory with: {self.install}"
                          + (f" (or set {self.env_var} to the package's folder)" if self.env_var else ""))

    def files(self) -> dict[str, Path]:
        root = self.package_dir()
        return {key: root / rel for key, rel in self.data_files.items()}


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
