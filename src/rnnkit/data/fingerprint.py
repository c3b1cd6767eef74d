"""What identifies a run's data, for resume: the input files (a streamed hash), the settings that encode them,
and a cheap check of the encoded splits; or, for data that came from no file, the encoded splits themselves.

A resume must see the same data in the same order. Hashing every encoded tensor at every start costs a pass over
the data (per example, on main: seconds for a million rows); hashing the files costs a read at disk speed, and a
small JSON cache keyed by (path, size, mtime_ns) skips even that when a file is unchanged.

Contract:
1. `fingerprint(...)` is "files-v1:<sha256>" when the training split names files that exist (user files and
   built-in data sets, whose files ship in a package; val/test either name theirs or were carved out of train),
   else "content-v1:<sha256>" over every column of every split.
2. files-v1 covers, per split, each file's size and content (sha256; not its path: a file moved elsewhere is the
   same data, and the record ids, "<file name>:<line>", are hashed with the rows); `data_settings(cfg)` (every
   `data.*` key but the batching ones and the file paths, plus the task); and, per split, the ids, lengths and
   targets of the encoded rows (flat arrays: milliseconds), which catch any family setting that changes which
   rows or targets there are.
3. A file's hash is taken from the cache only when path, size and mtime_ns all match; touching a file (new
   mtime, same bytes) rehashes it and gives the same fingerprint; one changed byte gives another.
4. Nothing here writes: `save_cache` writes the cache, and the caller decides when (never on a refused resume).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

CACHE_FILE = "data_fingerprint_cache.json"
# how rows are batched, not which rows there are
BATCHING_KEYS = ("batch_size", "bucketing", "bucket_chunk", "shuffle_buffer")
FILE_KEYS = ("train", "val", "test")  # paths: hashed as files (with the path as given)
STORAGE_KEYS = ("storage", "spill_dir")  # where the encoded rows are kept (memory or disk), not what they are
_BLOCK = 1 << 20


def data_settings(cfg) -> dict:
    """The config that changes the encoded data: the task and every `data.*` key (reader options, split seed and
    fractions, vocabulary, truncation, windows, bad-row policy) but the batching ones, the storage ones and the
    file paths."""
    data = cfg.to_dict()["data"]
    left_out = (*BATCHING_KEYS, *FILE_KEYS, *STORAGE_KEYS)
    return {"task": cfg.task, "data": {k: v for k, v in sorted(data.items()) if k not in left_out}}


def _files_of(spec) -> list[Path] | None:
    """The files a report's split entry names (a path, a list of paths, a directory: its files in name order);
    None when one does not exist."""
    paths = spec if isinstance(spec, (list, tuple)) else [spec]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            return None
    return out


def file_sha256(path: Path, cache: dict) -> str:
    """sha256 of the file's bytes, streamed in 1 MiB blocks; from `cache` when path, size and mtime_ns match.
    `cache` (path -> {"size", "mtime_ns", "sha256"}) is updated in place."""
    st = os.stat(path)
    key = str(Path(path).resolve())
    hit = cache.get(key)
    if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return hit["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}
    return h.hexdigest()


def load_cache(run_dir: Path | None) -> dict:
    """The run directory's hash cache ({} when there is none or it cannot be read: then every file is hashed)."""
    if run_dir is None:
        return {}
    try:
        cache = json.loads((Path(run_dir) / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def save_cache(run_dir: Path, cache: dict) -> None:
    """Write the cache atomically (a half-written cache would only cost a rehash, but is never read as one)."""
    path = Path(run_dir) / CACHE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=0, sort_keys=True))
    os.replace(tmp, path)


def _update(h, parts: Iterable) -> None:
    for part in parts:
        h.update(part)


def fingerprint(cfg, datasets: dict, files: dict | None, cache: dict) -> str:
    """The data fingerprint (see the module's contract). `files`: split -> path(s), as `PreparedData.report`
    names them (None or incomplete: the content fingerprint)."""
    named = {split: _files_of(files[split]) for split in datasets if files and split in files} if files else {}
    # a split no file names (val/test) was carved out of train by the seeded split: covered by train's file
    if cfg is None or "train" not in named or any(v is None for v in named.values()):
        return "content-v1:" + content_fingerprint(datasets)
    h = hashlib.sha256()
    # the content, not where it lies: a moved file resumes (the ids, hashed below, still name the file)
    described = {split: [{"bytes": p.stat().st_size, "sha256": file_sha256(p, cache)} for p in paths]
                 for split, paths in sorted(named.items())}
    h.update(json.dumps({"files": described, **data_settings(cfg)}, sort_keys=True, default=str).encode())
    for split in sorted(datasets):
        h.update(f"|{split}|{len(datasets[split])}|".encode())
        _update(h, datasets[split].digest_parts())
    return "files-v1:" + h.hexdigest()


def content_fingerprint(datasets: dict) -> str:
    """sha256 over every column (ids, inputs, targets, extras) of every split: flat arrays, no per-row work."""
    h = hashlib.sha256()
    for split in sorted(datasets):
        h.update(f"|{split}|{len(datasets[split])}|".encode())
        _update(h, datasets[split].digest_parts(values=True))
    return h.hexdigest()


def legacy_fingerprint(datasets: dict) -> str:
    """The fingerprint of checkpoints written before files-v1 (a bare sha256 hex): per example, its id, length,
    input bytes and target bytes. Only a resume of such a checkpoint computes it."""
    h = hashlib.sha256()
    for name in sorted(datasets):
        for ex in datasets[name].examples:
            h.update(f"{name}|{ex.id}|{ex.inputs.shape[0]}|".encode())
            h.update(ex.inputs.numpy().tobytes())
            if ex.target is not None:
                h.update(ex.target.numpy().tobytes())
    return h.hexdigest()


def same_data(saved: str, now: str, datasets: dict) -> bool:
    """Whether a checkpoint's fingerprint `saved` names the data whose fingerprint is `now` (a legacy one is
    compared with `legacy_fingerprint`)."""
    if saved.startswith(("files-v1:", "content-v1:")):
        return saved == now
    return saved == legacy_fingerprint(datasets)


__all__ = ["CACHE_FILE", "content_fingerprint", "data_settings", "file_sha256", "fingerprint", "legacy_fingerprint",
           "load_cache", "same_data", "save_cache"]
