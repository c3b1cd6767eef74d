"""Record ids held compactly (`IdsBuilder` -> `Ids`), for the columnar datasets (`rnnkit.data.columns`) and the
records of a file read in chunks (`rnnkit.data.recordstore`). No torch here: the ONNX serving path reads records
without it."""

from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np


class IdsBuilder:
    """Record ids, compactly: ids of the form ``"<prefix>:<line>"`` (what the readers give, e.g. "train.csv:17")
    as a prefix index (int32) and a number (int64), 12 bytes a row; any other id as UTF-8 in one blob plus an
    int64 offset."""

    def __init__(self) -> None:
        self.prefixes: dict[str, int] = {}
        self.which = array.array("i")
        self.numbers = array.array("q")
        self.blob: bytearray | None = None
        self.ends: array.array | None = None

    def append(self, rid: str) -> None:
        if self.blob is None:
            head, sep, tail = str(rid).rpartition(":")
            if sep and tail.isascii() and tail.isdigit() and (tail == "0" or tail[0] != "0") and len(tail) < 18:
                self.which.append(self.prefixes.setdefault(head, len(self.prefixes)))
                self.numbers.append(int(tail))
                return
            self._to_blob()
        self.blob += str(rid).encode("utf-8", "surrogatepass")
        self.ends.append(len(self.blob))

    def _to_blob(self) -> None:
        names = list(self.prefixes)
        self.blob, self.ends = bytearray(), array.array("q")
        for w, n in zip(self.which, self.numbers, strict=True):
            self.blob += f"{names[w]}:{n}".encode("utf-8", "surrogatepass")
            self.ends.append(len(self.blob))
        self.which, self.numbers, self.prefixes = array.array("i"), array.array("q"), {}

    def finish(self) -> Ids:
        if self.blob is not None:
            return Ids(blob=bytes(self.blob), ends=np.frombuffer(self.ends, dtype=np.int64))
        return Ids(prefixes=tuple(self.prefixes), which=np.frombuffer(self.which, dtype=np.int32),
                   numbers=np.frombuffer(self.numbers, dtype=np.int64))


@dataclass(frozen=True)
class Ids:
    """Finished ids (see `IdsBuilder`)."""

    prefixes: tuple[str, ...] = ()
    which: np.ndarray | None = None
    numbers: np.ndarray | None = None
    blob: bytes | None = None
    ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ends) if self.blob is not None else len(self.which)

    def get(self, i: int) -> str:
        if self.blob is not None:
            start = int(self.ends[i - 1]) if i > 0 else 0
            return self.blob[start:int(self.ends[i])].decode("utf-8", "surrogatepass")
        return f"{self.prefixes[self.which[i]]}:{self.numbers[i]}"

    def take(self, index: np.ndarray) -> Ids:
        index = np.asarray(index, dtype=np.int64)
        if self.blob is None:
            return Ids(prefixes=self.prefixes, which=self.which[index], numbers=self.numbers[index])
        out = IdsBuilder()
        out._to_blob()
        for i in index:
            out.append(self.get(int(i)))
        return out.finish()

    @property
    def nbytes(self) -> int:
        if self.blob is not None:
            return len(self.blob) + self.ends.nbytes
        return self.which.nbytes + self.numbers.nbytes + sum(len(p) for p in self.prefixes)

    def digest_parts(self) -> list[bytes | memoryview]:
        if self.blob is not None:
            return [self.blob, self.ends.data]
        return ["\n".join(self.prefixes).encode("utf-8", "surrogatepass"), self.which.data, self.numbers.data]


__all__ = ["Ids", "IdsBuilder"]
