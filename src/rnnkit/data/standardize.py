"""Per-channel z-scoring of numeric sequence features.

Fit on the training split only (statistics from validation/test data would leak into the
model) and on *unpadded* sequences: pad steps are not data, and counting them would pull the
mean towards the pad value and shrink the std by an amount that depends on batch composition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

CONSTANT_STD = 1e-8  # a channel with std below this carries no information: divide by 1 instead
_FORMAT_VERSION = 1


class Standardizer:
    """Per-channel z-score; fit on the training split only; padded steps never enter the statistics.

    After `fit`:
        mean: (C,) float64 per-channel mean over all real steps of all sequences.
        std: (C,) float64 population std (ddof=0) over the same steps; channels whose std is
            below 1e-8 get std 1.0 (so they become x - mean, not inf/nan).
        constant_channels: indices of those near-constant channels.
        n_steps: number of real steps the statistics were computed from.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.constant_channels: list[int] = []
        self.n_steps: int = 0

    # ------------------------------------------------------------------ fitting
    def fit(self, arrays: Iterable[np.ndarray], lengths: Sequence[int] | None = None) -> Standardizer:
        """Compute per-channel mean/std in float64 over every real step of `arrays`.

        Args:
            arrays: sequences, each (T_i, C) and unpadded; or, when `lengths` is given, padded
                sequences (e.g. a (B, T, C) array) of which only the first `lengths[i]` steps
                of sequence i are used.
            lengths: real length of each array when the arrays are padded; None = use all steps.

        Returns:
            self.

        Raises:
            ValueError: no steps at all, an array not 2-D, differing channel counts, a length
                out of range, or non-finite values (each names the offending array index).
        """
        seqs = self._real_steps(arrays, lengths)
        channels = seqs[0].shape[1]
        n = sum(s.shape[0] for s in seqs)
        if n == 0:
            raise ValueError("Standardizer.fit got no steps: all sequences are empty")
        # Two passes (mean, then squared deviations) in float64: the one-pass
        # E[x^2] - E[x]^2 formula loses precision when |mean| >> std.
        total = np.zeros(channels, dtype=np.float64)
        for s in seqs:
            total += s.sum(axis=0, dtype=np.float64)
        mean = total / n
        sq = np.zeros(channels, dtype=np.float64)
        for s in seqs:
            d = s.astype(np.float64) - mean  # (T_i, C)
            sq += np.einsum("tc,tc->c", d, d)
        std = np.sqrt(sq / n)
        constant = std < CONSTANT_STD
        std[constant] = 1.0
        self.mean, self.std = mean, std
        self.constant_channels = [int(c) for c in np.flatnonzero(constant)]
        self.n_steps = int(n)
        return self

    @staticmethod
    def _real_steps(arrays: Iterable[np.ndarray], lengths: Sequence[int] | None) -> list[np.ndarray]:
        seqs = [np.asarray(a) for a in arrays]
        if not seqs:
            raise ValueError("Standardizer.fit got no sequences")
        if lengths is not None:
            if len(lengths) != len(seqs):
                raise ValueError(f"got {len(seqs)} arrays but {len(lengths)} lengths")
            cut = []
            for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
                if not 0 <= n <= s.shape[0]:
                    raise ValueError(f"array {i}: length {n} is outside [0, {s.shape[0]}] (its padded size)")
                cut.append(s[:n])  # drop the pad steps before they can touch the statistics
            seqs = cut
        channels = None
        for i, s in enumerate(seqs):
            if s.ndim != 2:
                raise ValueError(f"array {i}: expected shape (T, C), got {s.shape}")
            if channels is None:
                channels = s.shape[1]
            elif s.shape[1] != channels:
                raise ValueError(f"array {i}: expected {channels} channels (as array 0), found {s.shape[1]}")
            if not np.isfinite(s).all():
                bad = int((~np.isfinite(s)).sum())
                raise ValueError(
                    f"array {i}: {bad} non-finite value(s) (nan/inf); clean the data before fitting"
                )
        return seqs

    # ------------------------------------------------------------------ applying
    def _require_fitted(self) -> None:
        if self.mean is None or self.std is None:
            raise ValueError(
                "Standardizer used before fit: call fit() on the training split (or load a saved one) first"
            )

    def _check(self, channels: int, shape: tuple) -> None:
        self._require_fitted()
        if channels != len(self.mean):
            raise ValueError(
                f"channel count mismatch: the standardizer was fitted on {len(self.mean)} channels, "
                f"found {channels} in input of shape {tuple(shape)}"
            )

    def transform(self, array: np.ndarray) -> np.ndarray:
        """(x - mean) / std per channel, computed in float64 and returned as float32.

        Args:
            array: (..., C) values, usually one unpadded (T, C) sequence.

        Raises:
            ValueError: not fitted, or the last dimension is not the fitted channel count.
        """
        x = np.asarray(array)
        if x.ndim == 0:
            raise ValueError("transform needs an array of shape (..., C), got a scalar")
        self._check(x.shape[-1], x.shape)
        return ((x.astype(np.float64) - self.mean) / self.std).astype(np.float32)

    def fit_transform(self, arrays: Iterable[np.ndarray]) -> list[np.ndarray]:
        """`fit(arrays)` then `transform` each array; returns the float32 arrays."""
        seqs = [np.asarray(a) for a in arrays]
        self.fit(seqs)
        return [self.transform(s) for s in seqs]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """JSON-able dict; floats are written at full float64 precision (repr round-trips)."""
        self._require_fitted()
        return {
            "format_version": _FORMAT_VERSION,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "constant_channels": list(self.constant_channels),
            "n_steps": self.n_steps,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        """Inverse of `to_dict`.

        Raises:
            ValueError: missing keys, mean/std of different lengths, or non-positive std.
        """
        missing = [k for k in ("mean", "std") if k not in d]
        if missing:
            raise ValueError(f"standardizer dict is missing {missing}")
        mean = np.asarray(d["mean"], dtype=np.float64)
        std = np.asarray(d["std"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(
                f"standardizer mean and std must be equal-length lists, got {mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("standardizer mean must be finite and std finite and > 0")
        out = cls()
        out.mean, out.std = mean, std
        out.constant_channels = [int(c) for c in d.get("constant_channels", [])]
        out.n_steps = int(d.get("n_steps", 0))
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write `to_dict()` as JSON (via a temp file + rename, so a crash never leaves half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Standardizer:
        """Read a file written by `save`.

        Raises:
            ValueError: the file is not valid JSON or not a standardizer (see `from_dict`).
            OSError: the file cannot be read.
        """
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a valid standardizer JSON file ({exc})") from exc
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object, found {type(d).__name__}")
        return cls.from_dict(d)
