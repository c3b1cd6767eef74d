"""Disk-backed arrays for the training data's large columns (`data.storage: disk`, issue 14: data larger than memory).

In memory (the default), a text split's token ids, and while it is read the file's token numbers, line numbers and
row ends, are numpy arrays on the heap: the process holds the whole file's payload. With `data.storage: disk` the
same arrays are written to files in `data.spill_dir` (default: the run directory) and memory-mapped read-only, so
that the kernel's page cache holds what training touches and can drop it again: the anonymous memory of the
process no longer grows with the tokens, and the dataset, the sampler and everything that indexes a split work
unchanged (a memory-mapped array is an ndarray). The layout and values are byte for byte the in-memory ones.

Each file is unlinked as soon as it is made (POSIX keeps an open file and its mapping): nothing is left in the
directory after the process ends, however it ends, and two runs (or two DDP ranks) never share a file. Where
unlinking an open file is refused (Windows), the file is removed at exit. Space is reserved before an array is
filled (`os.posix_fallocate` where it exists), so a full disk is an error naming the directory up front, not a
SIGBUS in the middle of an epoch (`SpillError`, a `ConfigError`:
the user sees it as any config problem, before training).
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

import numpy as np

from rnnkit.errors import ConfigError

STORAGE_MODES = ("memory", "disk")


def _forget(path: str) -> None:
    """Unlink a mapped file now (POSIX), or at exit where an open file cannot be removed."""
    try:
        os.unlink(path)
    except OSError:
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))


class SpillError(ConfigError):
    """A disk-backed array could not be written (full disk, no permission): names the directory and the fix."""


class Spill:
    """Where disk-backed arrays go; counts what it wrote (`bytes`, `arrays`) for the run's report."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else Path(tempfile.gettempdir())
        self.bytes = 0
        self.arrays = 0

    def _file(self):
        """A new empty file in the directory, already unlinked where the system allows (open, read-write)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=".rnnkit-data-", suffix=".bin", dir=self.directory)
        except OSError as exc:
            raise self._error(exc) from None
        _forget(path)
        return os.fdopen(fd, "w+b")

    def _error(self, exc: OSError) -> SpillError:
        return SpillError(f"data.storage=disk: cannot write the training data's arrays to {self.directory} "
                          f"({exc.strerror or exc}); free space there or give another directory with "
                          "--set data.spill_dir=DIR (or --set data.storage=memory)")

    def _map(self, fh, dtype: np.dtype, count: int, mode: str) -> np.ndarray:
        """The file's `count` values of `dtype` as a memory-mapped array (which keeps its own handle); closes `fh`."""
        self.arrays += 1
        self.bytes += count * dtype.itemsize
        with fh:
            if not count:
                return np.zeros(0, dtype=dtype)
            # a plain ndarray view of the mapping (which it keeps alive): slicing a row out of an np.memmap makes
            # another np.memmap each time, a Python-level cost per example read
            return np.memmap(fh, dtype=dtype, mode=mode, shape=(count,)).view(np.ndarray)

    def empty(self, dtype, count: int) -> np.ndarray:
        """A writable disk-backed (count,) array of `dtype` (zeros), its space reserved; `freeze` it once filled."""
        dtype = np.dtype(dtype)
        fh = self._file()
        try:
            size = count * dtype.itemsize
            if size and hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fh.fileno(), 0, size)
            else:
                fh.truncate(size)
        except OSError as exc:
            fh.close()
            raise self._error(exc) from None
        return self._map(fh, dtype, count, "r+")

    def appender(self, dtype) -> Appender:
        """A file that grows by appended blocks and becomes a read-only disk-backed array (`Appender.finish`)."""
        return Appender(self, self._file(), np.dtype(dtype))


def freeze(arr: np.ndarray) -> np.ndarray:
    """`arr`, read-only from here on (a disk-backed array after filling; any array alike)."""
    arr.flags.writeable = False
    return arr


class Appender:
    """See `Spill.appender`; `close` gives the file up unfinished (a read that failed)."""

    def __init__(self, spill: Spill, fh, dtype: np.dtype) -> None:
        self.spill, self.fh, self.dtype, self.count = spill, fh, dtype, 0

    def write(self, block) -> None:
        """Append `block` (an array.array or ndarray of this dtype)."""
        data = memoryview(block).cast("B")
        try:
            self.fh.write(data)
        except OSError as exc:
            raise self.spill._error(exc) from None
        self.count += len(data) // self.dtype.itemsize

    def finish(self) -> np.ndarray:
        """Everything appended, as one read-only (count,) array mapped from the file."""
        try:
            self.fh.flush()
        except OSError as exc:
            self.fh.close()
            raise self.spill._error(exc) from None
        return freeze(self.spill._map(self.fh, self.dtype, self.count, "r"))

    def close(self) -> None:
        self.fh.close()


def is_disk_backed(arr: np.ndarray | None) -> bool:
    """Whether `arr` (or the array it views) is memory-mapped from a file."""
    while isinstance(arr, np.ndarray):
        if isinstance(arr, np.memmap) or type(arr.base).__name__ == "mmap":
            return True
        arr = arr.base
    return False


__all__ = ["STORAGE_MODES", "Appender", "Spill", "SpillError", "freeze", "is_disk_backed"]
