"""Checkpoints: written atomically, verified by checksum, loaded safely.

Layout inside a run directory::

    checkpoints/
      step-00000420/          one checkpoint (a directory, renamed into place when complete)
        model.safetensors     model weights (safetensors: no code can run on load)
        state.pt              everything else (optimizer, schedule, sampler, RNG...), plain data
                              and tensors only, loadable with torch.load(weights_only=True)
        carried.safetensors   optional: the recurrent state carried between chunks of truncated backprop
                              through time (`rnnkit.training.tbptt`), tensors only, like the weights
        manifest.json         sha256 and size of every file, step, epoch, format version
      last.json               pointer to the newest complete checkpoint (replaced atomically)
      best.json               pointer to the checkpoint with the best validation loss

Invariants:
  * A checkpoint directory with its final name is complete: it is written under a temporary
    name, every file fsynced, then renamed (rename is atomic on POSIX), then the parent fsynced.
  * A pointer file is replaced with os.replace after an fsync, so it names either the old or the
    new checkpoint, never a partial one.
  * Loading verifies every file's checksum before unpickling anything, and `state.pt` is read with
    `weights_only=True` only. There is no fallback to unsafe loading, ever.
  * Temporary leftovers (`.tmp-*`) from a crash are removed by `clean_leftovers` at the next start,
    except a checkpoint moved aside by a same-step rewrite, which is put back under its name.
  * Pruning renames a checkpoint to a `.tmp-` name before deleting it, so a directory with a final
    name is never half-deleted either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rnnkit.errors import CheckpointError

FORMAT = 1
WEIGHTS, STATE, MANIFEST = "model.safetensors", "state.pt", "manifest.json"
CARRIED = "carried.safetensors"  # written only when there is a carried state (truncated BPTT); listed in the manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` so that readers see the old or the new content, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass
class Checkpoint:
    path: Path
    model_state: dict[str, torch.Tensor]
    state: dict[str, Any]
    manifest: dict[str, Any]
    carried: dict[str, torch.Tensor] | None = None  # the carried recurrent state (CARRIED), None when not written


def save_checkpoint(root: Path, name: str, model_state: dict[str, torch.Tensor], state: dict[str, Any],
                    *, step: int, epoch: int, carried: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint `root/name` atomically and return its path.

    Args:
        root: the `checkpoints/` directory (created if needed).
        name: final directory name, e.g. "step-00000420". An existing one is replaced.
        model_state: tensors only (a model's state_dict).
        state: plain data and tensors (dicts, lists, numbers, strings, tensors) — nothing that
            needs arbitrary unpickling.
        carried: tensors only, written to `carried.safetensors` when not None (truncated BPTT's carried state).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model_state.items()}
    save_file(tensors, str(tmp / WEIGHTS))
    torch.save(state, tmp / STATE)
    files = [WEIGHTS, STATE]
    if carried is not None:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in carried.items()}, str(tmp / CARRIED))
        files.append(CARRIED)
    manifest = {"format": FORMAT, "step": step, "epoch": epoch, "files": {}}
    for fname in files:
        _fsync_file(tmp / fname)
        manifest["files"][fname] = {"sha256": sha256(tmp / fname), "bytes": (tmp / fname).stat().st_size}
    with open(tmp / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    final = root / name
    if final.exists():  # same step written twice (e.g. epoch end right after a mid-epoch save)
        old = root / f"{OLD_PREFIX}{name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)
    return final


def verify_checkpoint(path: Path) -> dict:
    """The manifest of a checkpoint directory whose files are all there with the recorded sha256 (nothing
    is unpickled); raises CheckpointError naming the file otherwise."""
    path = Path(path)
    mpath = path / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is missing; the checkpoint is incomplete.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is unreadable ({exc}).") from None
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: format {manifest.get('format')!r}, this rnnkit reads {FORMAT}.")
    for fname in (WEIGHTS, STATE, *(f for f in files if f not in (WEIGHTS, STATE))):
        fpath = path / fname
        if not fpath.exists():
            raise CheckpointError(f"checkpoint file {fpath} is missing.")
        expected = files.get(fname, {}).get("sha256")
        found = sha256(fpath)
        if found != expected:
            raise CheckpointError(f"checkpoint file {fpath}: checksum mismatch (manifest sha256 {expected}, "
                                  f"file sha256 {found}); the file is truncated or corrupt.")
    return manifest


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Verify and load one checkpoint directory.

    Raises:
        CheckpointError: a file is missing, its size or sha256 differs from the manifest
            (naming the file, expected and found digest), or `state.pt` holds objects that
            `weights_only=True` refuses (never retried unsafely).
    """
    path = Path(path)
    manifest = verify_checkpoint(path)
    try:
        model_state = load_file(str(path / WEIGHTS), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"checkpoint file {path / WEIGHTS}: not a valid safetensors file ({exc}).") from None
    try:
        state = torch.load(path / STATE, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError and friends: refuse, never retry unsafely
        # name what the file asks to run ("unsupported GLOBAL posix.system"), not torch's first line, which
        # suggests retrying with weights_only=False
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        why = next((x for x in lines if "GLOBAL" in x), lines[0] if lines else type(exc).__name__)
        raise CheckpointError(
            f"checkpoint file {path / STATE}: refused by the safe loader (weights_only=True): {why} rnnkit never "
            "loads checkpoints unsafely; if you trust this file, inspect it yourself.") from None
    carried = None
    if CARRIED in manifest["files"]:
        try:
            carried = load_file(str(path / CARRIED), device=str(map_location))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"checkpoint file {path / CARRIED}: not a valid safetensors file ({exc}).") from None
    return Checkpoint(path=path, model_state=model_state, state=state, manifest=manifest, carried=carried)


def read_pointer(root: Path, which: str) -> Path | None:
    """The checkpoint named by `root/{which}.json` ("last" or "best"), or None."""
    p = Path(root) / f"{which}.json"
    if not p.exists():
        return None
    try:
        return Path(root) / json.loads(p.read_text())["name"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def write_pointer(root: Path, which: str, ckpt: Path, **info: Any) -> None:
    write_json_atomic(Path(root) / f"{which}.json", {"name": Path(ckpt).name, **info})


def step_checkpoints(root: Path) -> list[Path]:
    """Complete step checkpoints, newest first."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted((p for p in root.glob("step-*") if p.is_dir()), key=lambda p: p.name, reverse=True)


def load_latest_valid(root: Path, *, map_location="cpu") -> Checkpoint:
    """Load the newest checkpoint that verifies, warning about each one skipped.

    Raises CheckpointError when none verifies: a resume never silently starts over.
    """
    root = Path(root)
    candidates: list[Path] = []
    pointed = read_pointer(root, "last")
    if pointed is not None:
        candidates.append(pointed)
    candidates += [p for p in step_checkpoints(root) if p not in candidates]
    errors = []
    for cand in candidates:
        try:
            ckpt = load_checkpoint(cand, map_location=map_location)
        except CheckpointError as exc:
            errors.append(str(exc))
            warnings.warn(f"skipping checkpoint {cand}: {exc}", stacklevel=2)
            continue
        if errors:
            warnings.warn(f"resuming from the previous valid checkpoint {cand}", stacklevel=2)
        return ckpt
    detail = "\n  ".join(errors) if errors else "no checkpoint found"
    raise CheckpointError(f"no valid checkpoint under {root}:\n  {detail}")


def prune(root: Path, keep: int) -> None:
    """Keep the `keep` newest step checkpoints plus the one `best.json` names."""
    best = read_pointer(root, "best")
    last = read_pointer(root, "last")
    for old in step_checkpoints(root)[keep:]:
        if old != best and old != last:
            # Rename first (atomic), then delete: a kill mid-delete must never leave a half-deleted
            # directory under a final name; the `.tmp-` leftover is cleaned at the next start.
            doomed = old.with_name(f".tmp-prune-{old.name}-{os.getpid()}")
            os.rename(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)


OLD_PREFIX = ".tmp-old-"


def clean_leftovers(root: Path) -> list[Path]:
    """Remove temporary files and directories left by a crash mid-write. Returns what was removed.

    One leftover is put back instead: `.tmp-old-NAME-PID`, the complete checkpoint that a same-step
    rewrite had moved aside, when a kill came before the new one took the name NAME (it is renamed
    back to NAME, so no checkpoint is lost)."""
    root = Path(root)
    removed = []
    if root.exists():
        for p in root.glob(OLD_PREFIX + "*"):
            name = p.name[len(OLD_PREFIX):].rsplit("-", 1)[0]
            if p.is_dir() and name.startswith("step-") and not (root / name).exists():
                os.rename(p, root / name)
                warnings.warn(f"restored checkpoint {root / name}: a run was stopped while rewriting it", stacklevel=2)
        _fsync_dir(root)
        for p in root.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed
