"""Prediction files, written the same way by the PyTorch path (`rnnkit predict`) and the ONNX runtime
(`rnnkit predict --backend onnx`, which never imports torch): one row per input record, in record order."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_class_predictions(output: Path, records, probabilities: Sequence, labels: list[str]) -> int:
    """CSV (default) or JSONL (by the extension): id, file, line, prediction, probability, one p_<label> per class.

    Args:
        probabilities: per record, its (K,) class probabilities (numpy arrays or tensors).
    """
    output = Path(output)
    rows = [np.asarray(p, dtype=np.float64) for p in probabilities]
    if output.suffix == ".jsonl":
        with open(output, "w") as fh:
            for rec, p in zip(records, rows, strict=True):
                k = int(p.argmax())
                fh.write(json.dumps({"id": rec.id, "file": rec.file, "line": rec.line, "prediction": labels[k],
                                     "probability": float(p[k]),
                                     "probabilities": dict(zip(labels, map(float, p), strict=True))}) + "\n")
        return len(rows)
    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "file", "line", "prediction", "probability", *[f"p_{lab}" for lab in labels]])
        for rec, p in zip(records, rows, strict=True):
            k = int(p.argmax())
            w.writerow([rec.id, rec.file, rec.line, labels[k], f"{float(p[k]):.6f}", *[f"{float(v):.6f}" for v in p]])
    return len(rows)


def write_value_predictions(output: Path, records, values: np.ndarray, columns: list[str]) -> int:
    """CSV (default) or JSONL (by the extension): id, file, line, then one value per column (N, K)."""
    output = Path(output)
    if output.suffix == ".jsonl":
        with open(output, "w") as fh:
            for rec, row in zip(records, values, strict=True):
                fh.write(json.dumps({"id": rec.id, "file": rec.file, "line": rec.line,
                                     **{c: float(v) for c, v in zip(columns, row, strict=True)}}) + "\n")
        return len(records)
    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "file", "line", *columns])
        for rec, row in zip(records, values, strict=True):
            w.writerow([rec.id, rec.file, rec.line, *[f"{float(v):.8g}" for v in row]])
    return len(records)


__all__ = ["write_class_predictions", "write_value_predictions"]
