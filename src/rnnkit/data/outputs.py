"""Prediction files, written the same way by the PyTorch path (`rnnkit predict`) and the ONNX runtime
(`rnnkit predict --backend onnx`, which never imports torch): one row per input record, in record order."""

from __future__ import annotations

import csv
import json
import warnings
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


def write_generated_predictions(output: Path, records, predictions: Sequence[tuple[list[str], float]], *,
                                source_tokenize: str, target_tokenize: str, limit: int) -> int:
    """Generated sequences: TSV (default) ``source``, ``prediction``, ``score`` (the prediction's log-probability);
    JSONL when OUTPUT ends in .jsonl, with the record id, file, line and the target tokens as well.

    Args:
        predictions: per record, (target tokens, log-probability).
        source_tokenize, target_tokenize: "char" or "whitespace": how tokens are joined back into text.
        limit: the decoding limit (seq2seq.max_decode_length); a prediction that long may lack its end: a warning
            names them (they are written as they are).
    """
    from rnnkit.data.pairs import detokenize

    output = Path(output)
    cut = [rec for rec, (tokens, _) in zip(records, predictions, strict=True) if len(tokens) >= limit]
    if cut:  # written as they are, but never silently: they may lack their end
        warnings.warn(f"{len(cut)} of {len(records)} predictions reached seq2seq.max_decode_length={limit} tokens "
                      f"without an end token and may be cut (e.g. {', '.join(f'{r.file}:{r.line}' for r in cut[:3])}"
                      f"{' ...' if len(cut) > 3 else ''}); raise the limit with --set seq2seq.max_decode_length=N",
                      stacklevel=3)
    rows = [(rec, detokenize(rec.tokens, source_tokenize), list(tokens), detokenize(tokens, target_tokenize), sc)
            for rec, (tokens, sc) in zip(records, predictions, strict=True)]
    if output.suffix == ".jsonl":
        with open(output, "w", encoding="utf-8") as fh:
            for rec, source, tokens, text, sc in rows:
                fh.write(json.dumps({"id": rec.id, "file": rec.file, "line": rec.line, "source": source,
                                     "prediction": text, "tokens": tokens, "score": sc}, ensure_ascii=False) + "\n")
        return len(rows)
    with open(output, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["source", "prediction", "score"])
        for _, source, _, text, sc in rows:
            w.writerow([source, text, f"{sc:.4f}"])
    return len(rows)


__all__ = ["write_class_predictions", "write_generated_predictions", "write_value_predictions"]
