"""Predictions from an exported model with onnxruntime alone: `rnnkit predict DIR --backend onnx`, no torch.

This module and everything it imports (`rnnkit.data.readers`, `validate`, `vocab`, `standardize`, `outputs`)
never import torch, so a serving process needs numpy and onnxruntime only. It reads the ONNX file that `rnnkit
export` wrote and its sidecar JSON, reads the input file with the run's reader options, checks the rows as
`rnnkit predict` does, encodes them with the sidecar's vocabulary or standardizer, truncates them as training
did, runs length-sorted batches, and writes the same prediction file as the PyTorch path (`rnnkit.data.outputs`).

Served: the families whose rows are one sequence with one label or value (the sidecar's "serve" says how the
output becomes a prediction), and the encoder-decoder, whose two graphs `rnnkit.generation` decodes (greedy or
beam search, as the run's config says). Families read from other files (windows of series, CoNLL) export too,
but predict through the PyTorch path for now.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from rnnkit.data.chunked import CHUNK_ROWS, stream_predictions
from rnnkit.data.longseq import kept_slices
from rnnkit.data.outputs import write_class_predictions, write_value_predictions
from rnnkit.data.readers import read_records
from rnnkit.data.standardize import Standardizer
from rnnkit.data.validate import input_problems, validate_splits
from rnnkit.data.vocab import Vocab
from rnnkit.errors import CheckpointError, ConfigError, DataError, MissingExtra
from rnnkit.generation import GenerationModel, open_sidecar

SERVED = ("probabilities", "units")  # the sidecar's "serve": what the graph's output becomes
SIDECAR_FORMAT = "rnnkit-onnx/1"


class OnnxModel:
    """An exported model and its sidecar, ready to predict files.

    Args:
        path: the .onnx file, or a run directory holding `model.onnx` (as `rnnkit export` writes it).

    Raises:
        CheckpointError: no ONNX file or sidecar, a sidecar of another format, or an ONNX file whose sha256 is
            not the one the sidecar recorded (a file changed after export).
        MissingExtra: onnxruntime is not installed.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        onnx_file = path / "model.onnx" if path.is_dir() else path
        side_file = onnx_file.with_name(onnx_file.name + ".json")
        if not onnx_file.exists() or not side_file.exists():
            raise CheckpointError(f"{path}: no exported model ({onnx_file.name} and {side_file.name} expected); "
                                  f"write them with `rnnkit export {path if path.is_dir() else 'DIR'}`.")
        self.side = json.loads(side_file.read_text())
        if self.side.get("format") != SIDECAR_FORMAT:
            raise CheckpointError(f"{side_file}: not an rnnkit ONNX sidecar (format {self.side.get('format')!r}, "
                                  f"expected {SIDECAR_FORMAT!r}); export the run again with `rnnkit export`.")
        data = onnx_file.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.side["onnx_sha256"]:
            raise CheckpointError(f"{onnx_file}: its sha256 differs from the one {side_file.name} recorded at "
                                  "export; the file changed since. Export the run again with `rnnkit export`.")
        self.task, self.serve = self.side["task"], self.side.get("serve")
        if self.serve not in SERVED:
            raise CheckpointError(f"{onnx_file}: a {self.task} model, whose files `--backend onnx` cannot read yet "
                                  "(it predicts one label or value per sequence); use the default torch backend.")
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingExtra("--backend onnx needs onnxruntime: pip install 'rnnkit[export]'") from exc
        self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        self.vocab = Vocab.from_dict(self.side["vocab"]) if self.side.get("vocab") else None
        self.standardizer = Standardizer.from_dict(self.side["standardizer"]) if self.side.get("standardizer") else None
        self.kind = self.side["kind"]
        self.num_features = self.side.get("num_features")

    def read(self, path: Path):
        """The file's records, checked as `rnnkit predict` checks them (bad rows by the run's policy)."""
        d = self.side["data"]
        options = dict(self.side["reader"])
        result = read_records(path, **options, require_label=False)
        validated = validate_splits({"data": result}, policy=d["bad_rows"], max_bad_fraction=d["max_bad_fraction"],
                                    rejects_path=None, check_labels=self.serve == "probabilities")
        records = validated.splits["data"]
        problems = input_problems(records, self, sequence_column=options["sequence_column"])
        if problems:
            raise DataError(problems, header=f"{len(problems)} row(s) do not fit the model's input")
        return records

    def encode(self, record) -> np.ndarray:
        """One record -> (T,) int64 token ids or (T, C) float32 standardized values, truncated as in training."""
        if self.kind == "text":
            x = np.asarray(self.vocab.encode(record.tokens), dtype=np.int64)
        else:
            x = record.values if self.standardizer is None else self.standardizer.transform(record.values)
            x = np.ascontiguousarray(x, dtype=np.float32)
        t = self.side["truncation"]
        parts = kept_slices(len(x), int(t["limit"]), t["keep"], float(t["head"]))
        return x if len(parts) == 1 and parts[0] == slice(0, len(x)) else np.concatenate([x[p] for p in parts])

    def outputs(self, arrays: list[np.ndarray]) -> np.ndarray:
        """The graph's output for every sequence, in input order: batches of `data.batch_size` sorted by length."""
        order = sorted(range(len(arrays)), key=lambda i: len(arrays[i]))
        size = int(self.side["data"]["batch_size"])
        out: list[np.ndarray | None] = [None] * len(arrays)
        for lo in range(0, len(order), size):
            rows = order[lo:lo + size]
            longest = max(len(arrays[i]) for i in rows)
            first = arrays[rows[0]]
            batch = np.zeros((len(rows), longest, *first.shape[1:]), dtype=first.dtype)
            mask = np.zeros((len(rows), longest), dtype=bool)
            for b, i in enumerate(rows):
                batch[b, :len(arrays[i])] = arrays[i]
                mask[b, :len(arrays[i])] = True
            got = self.session.run([self.side["output"]], {"inputs": batch, "mask": mask})[0]
            for b, i in enumerate(rows):
                out[i] = got[b]
        return np.stack(out) if out else np.zeros((0, 0))

    def predict_file(self, data: str | Path, output: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                     progress: bool | None = None) -> int:
        """Write one prediction per input record to `output` (the PyTorch path's format); returns the count. A table
        file is read, predicted and written `chunk_rows` rows at a time, as the PyTorch path does."""
        def predict() -> tuple[list, np.ndarray]:
            records = self.read(Path(data))
            return records, self.outputs([self.encode(r) for r in records])

        d, r = self.side["data"], self.side["reader"]
        return stream_predictions(data, output, predict=predict, write=self._write,
                                  max_bad_fraction=d["max_bad_fraction"], fmt=r.get("format", "auto"),
                                  delimiter=r.get("delimiter", "auto"), chunk_rows=chunk_rows, progress=progress)

    def _write(self, out: Path, records: list, values: np.ndarray) -> int:
        if len(records) == 0:
            values = np.zeros((0, len(self.side.get("labels") or self.side["prediction_columns"])))
        if self.serve == "probabilities":
            z = values - values.max(axis=1, keepdims=True)
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            return write_class_predictions(out, records, list(probs), self.side["labels"])
        units = values * np.asarray(self.side["target_std"]) + np.asarray(self.side["target_mean"])
        return write_value_predictions(out, records, units, self.side["prediction_columns"])


def open_model(path: str | Path) -> OnnxModel | GenerationModel:
    """The exported model at `path` (the .onnx file, or the run directory that holds model.onnx): one graph, or an
    encoder and a decoder step (NAME.encoder.onnx and NAME.decoder_step.onnx beside the sidecar NAME.onnx.json)."""
    path = Path(path)
    onnx_file = path / "model.onnx" if path.is_dir() else path
    side_file = onnx_file.with_name(onnx_file.name + ".json")
    side = open_sidecar(side_file)
    return GenerationModel(side_file, side) if side is not None else OnnxModel(path)


def predict(path: str | Path, data: str | Path, output: str | Path, *, chunk_rows: int = CHUNK_ROWS,
            progress: bool | None = None, bad_rows: str | None = None, max_bad_fraction: float | None = None) -> int:
    """`rnnkit predict PATH --backend onnx`: PATH is the .onnx file or the run directory that holds model.onnx.
    `bad_rows` ("error" / "skip") and `max_bad_fraction` replace what the run exported with."""
    model = open_model(path)
    if bad_rows is not None:
        if bad_rows not in ("error", "skip"):
            raise ConfigError(f"bad_rows={bad_rows!r}: give error or skip")
        model.side["data"]["bad_rows"] = bad_rows
    if max_bad_fraction is not None:
        model.side["data"]["max_bad_fraction"] = max_bad_fraction
    return model.predict_file(data, output, chunk_rows=chunk_rows, progress=progress)


__all__ = ["SERVED", "OnnxModel", "open_model", "predict"]
