"""Token-by-token generation over an exported encoder and decoder step, in numpy and onnxruntime (no torch).

An encoder-decoder run exports as two ONNX graphs (`rnnkit.export`; their inputs and outputs are listed in
`rnnkit.tasks._onnx.GenerationSpec`). This module runs them: `greedy_search` and `beam_search` are the numpy
counterparts of `rnnkit.models.seq2seq.greedy_decode` and `beam_search`, step for step (pad and BOS are never
generated, a row stops at EOS, beam hypotheses are ranked by ``log p / length**length_penalty``, finished ones
keep their score), so that they choose the same tokens as the PyTorch decoders. `GenerationModel` serves
`rnnkit predict DIR --backend onnx` for such a run: it reads the file as the PyTorch path does, decodes as the
run's config says (greedy or beam search; sampling is not served) and writes the same prediction file.

`rnnkit.export` uses the same search in its self-check. Nothing here imports torch (import-linter contract
``serve-torch-free``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.chunked import CHUNK_ROWS, stream_predictions
from rnnkit.data.outputs import write_generated_predictions
from rnnkit.data.pairs import read_pairs
from rnnkit.data.validate import validate_splits
from rnnkit.data.vocab import Vocab
from rnnkit.errors import CheckpointError, MissingExtra

SIDECAR_FORMAT = "rnnkit-onnx/1"
ENCODER, STEP = "encoder", "decoder_step"  # the sidecar's "graphs" keys


@dataclass
class Encoded:
    """The encoder graph's outputs for a batch: what every decoder step reads.

    Attributes:
        memory: (N, S, D) float32; keys: (N, S, A) float32; mask: (N, S) bool, True on real source steps.
        state: the decoder state, each (decoder layers, N, H) float32.
    """

    memory: np.ndarray
    keys: np.ndarray
    mask: np.ndarray
    state: tuple[np.ndarray, ...]

    def repeat(self, k: int) -> Encoded:
        """Each row repeated k times in place (row b -> rows b*k .. b*k+k-1), for beam search."""
        return Encoded(np.repeat(self.memory, k, 0), np.repeat(self.keys, k, 0), np.repeat(self.mask, k, 0),
                       tuple(np.repeat(s, k, 1) for s in self.state))


# A decoder step: (previous tokens (N,) int64, state, encoded) -> (log-probabilities (N, V) float32, new state).
Step = Callable[[np.ndarray, tuple, Encoded], tuple[np.ndarray, tuple]]


def _forbid(logp: np.ndarray, pad: int, bos: int) -> np.ndarray:
    logp = np.array(logp, dtype=np.float32)
    logp[:, pad] = -np.inf
    logp[:, bos] = -np.inf
    return logp


def _strip(ids, eos: int, pad: int) -> tuple[int, ...]:
    out = []
    for i in ids:
        if i in (eos, pad):
            break
        out.append(int(i))
    return tuple(out)


def greedy_search(step: Step, enc: Encoded, *, bos: int, eos: int, pad: int, steps: int
                  ) -> list[tuple[tuple[int, ...], float]]:
    """Argmax at every step, batched; a row stops at EOS, the loop when every row has stopped or after `steps`.

    Returns:
        per row, (token ids without BOS/EOS/pad, the log-probability of the chosen tokens, EOS included).
    """
    n = enc.mask.shape[0]
    token = np.full(n, bos, dtype=np.int64)
    state = enc.state
    finished = np.zeros(n, dtype=bool)
    score = np.zeros(n, dtype=np.float32)
    out = []
    for _ in range(steps):
        logp, state = step(token, state, enc)
        logp = _forbid(logp, pad, bos)
        token = logp.argmax(-1).astype(np.int64)
        score += np.where(finished, np.float32(0.0), logp[np.arange(n), token])
        token[finished] = pad
        out.append(token)
        finished |= token == eos
        if finished.all():
            break
    ids = np.stack(out, 1) if out else np.zeros((n, 0), dtype=np.int64)
    return [(_strip(row, eos, pad), float(s)) for row, s in zip(ids.tolist(), score.tolist(), strict=True)]


def beam_search(step: Step, enc: Encoded, beam: int, *, bos: int, eos: int, pad: int, steps: int,
                length_penalty: float = 1.0) -> list[tuple[tuple[int, ...], float]]:
    """Batched beam search, as `rnnkit.models.seq2seq.beam_search`: all B*K hypotheses advance together, a
    finished one continues with pad at no cost, candidates are ranked by ``score / length**length_penalty``
    (length: generated tokens, EOS included); stops when every hypothesis has ended or after `steps`.

    Returns:
        per row, the best hypothesis by normalised score: (token ids, its log-probability).
    """
    b, k = enc.mask.shape[0], beam
    enc = enc.repeat(k)
    state = enc.state
    token = np.full(b * k, bos, dtype=np.int64)
    scores = np.full((b, k), -np.inf, dtype=np.float32)
    scores[:, 0] = 0.0  # one live hypothesis per row at the start
    lengths = np.zeros((b, k), dtype=np.float32)
    finished = np.zeros((b, k), dtype=bool)
    history = np.zeros((b, k, 0), dtype=np.int64)
    offsets = (np.arange(b) * k)[:, None]
    penalty = np.float32(length_penalty)
    for _ in range(steps):
        logp, state = step(token, state, enc)
        logp = _forbid(logp, pad, bos)
        v = logp.shape[-1]
        logp = logp.reshape(b, k, v)
        frozen = np.full(v, -np.inf, dtype=np.float32)
        frozen[pad] = 0.0  # a finished hypothesis continues with pad at no cost
        logp = np.where(finished[:, :, None], frozen, logp)
        cand = scores[:, :, None] + logp  # (B, K, V)
        new_len = np.broadcast_to((lengths + (~finished).astype(np.float32))[:, :, None], (b, k, v))
        ranked = (cand / np.maximum(new_len, np.float32(1.0)) ** penalty).reshape(b, k * v)
        idx = np.argsort(-ranked, axis=1, kind="stable")[:, :k]  # (B, K), best first
        origin, tok = idx // v, idx % v
        scores = np.take_along_axis(cand.reshape(b, k * v), idx, 1)
        lengths = np.take_along_axis(new_len.reshape(b, k * v), idx, 1)
        finished = np.take_along_axis(finished, origin, 1) | (tok == eos)
        history = np.concatenate([np.take_along_axis(history, origin[:, :, None], 1), tok[:, :, None]], -1)
        rows = (origin + offsets).reshape(-1)
        state = tuple(s[:, rows] for s in state)
        token = tok.reshape(-1).astype(np.int64)
        if finished.all():
            break
    final = scores / np.maximum(lengths, np.float32(1.0)) ** penalty
    best = final.argmax(1)
    chosen = history[np.arange(b), best]
    return [(_strip(r, eos, pad), float(s))
            for r, s in zip(chosen.tolist(), scores[np.arange(b), best].tolist(), strict=True)]


def onnx_step(session, state_names: list[str]) -> Step:
    """The decoder step graph as a `Step` (its outputs: log_probs, the new state, attention)."""
    outputs = ["log_probs", *[f"new_{n}" for n in state_names]]

    def step(token, state, enc):
        feeds = {"token": token, **dict(zip(state_names, state, strict=True)), "memory": enc.memory,
                 "memory_keys": enc.keys, "memory_mask": enc.mask}
        got = session.run(outputs, feeds)
        return got[0], tuple(got[1:])

    return step


def onnx_encode(session, inputs: np.ndarray, mask: np.ndarray, state_names: list[str]) -> Encoded:
    """The encoder graph on a padded batch of source ids."""
    memory, keys, *state = session.run(["memory", "memory_keys", *state_names], {"inputs": inputs, "mask": mask})
    return Encoded(memory, keys, mask, tuple(state))


def pad_batch(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Id sequences -> (B, S) int64 padded with 0 and the (B, S) mask."""
    longest = max(len(a) for a in arrays)
    batch = np.zeros((len(arrays), longest), dtype=np.int64)
    mask = np.zeros((len(arrays), longest), dtype=bool)
    for i, a in enumerate(arrays):
        batch[i, :len(a)] = a
        mask[i, :len(a)] = True
    return batch, mask


def graph_files(onnx_file: Path) -> dict[str, Path]:
    """Where `rnnkit export --output NAME.onnx` writes the two graphs: NAME.encoder.onnx, NAME.decoder_step.onnx."""
    stem = onnx_file.name[:-len(".onnx")] if onnx_file.name.endswith(".onnx") else onnx_file.name
    return {name: onnx_file.with_name(f"{stem}.{name}.onnx") for name in (ENCODER, STEP)}


class GenerationModel:
    """An exported encoder-decoder (two graphs and the sidecar), ready to predict files.

    Args:
        side_file: the sidecar JSON (``NAME.onnx.json``); side: its content.

    Raises:
        CheckpointError: a graph file missing, or changed since export (its sha256 is not the sidecar's); a run
            that decodes by sampling (not served: use the torch backend).
        MissingExtra: onnxruntime is not installed.
    """

    def __init__(self, side_file: Path, side: dict):
        self.side = side
        if side.get("format") != SIDECAR_FORMAT:
            raise CheckpointError(f"{side_file}: not an rnnkit ONNX sidecar (format {side.get('format')!r}, "
                                  f"expected {SIDECAR_FORMAT!r}); export the run again with `rnnkit export`.")
        self.decode = side["decode"]
        if self.decode["method"] not in ("greedy", "beam"):
            raise CheckpointError(f"{side_file}: this run's config decodes by sampling (seq2seq.sample=true), which "
                                  "`--backend onnx` does not reproduce (it serves greedy and beam search, as the run's "
                                  "beam width says); predict with the default torch backend.")
        data = {}
        for name, graph in side["graphs"].items():
            path = side_file.with_name(graph["file"])
            if not path.exists():
                raise CheckpointError(f"{path}: the {name} graph of {side_file.name} is missing; export the run "
                                      "again with `rnnkit export`.")
            data[name] = path.read_bytes()
            if hashlib.sha256(data[name]).hexdigest() != graph["sha256"]:
                raise CheckpointError(f"{path}: its sha256 differs from the one {side_file.name} recorded at "
                                      "export; the file changed since. Export the run again with `rnnkit export`.")
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingExtra("--backend onnx needs onnxruntime: pip install 'rnnkit[export]'") from exc
        self.encoder = onnxruntime.InferenceSession(data[ENCODER], providers=["CPUExecutionProvider"])
        self.state_names = list(side["state"])
        self.step = onnx_step(onnxruntime.InferenceSession(data[STEP], providers=["CPUExecutionProvider"]),
                              self.state_names)
        self.source_vocab = Vocab.from_dict(side["source_vocab"])
        self.target_vocab = Vocab.from_dict(side["target_vocab"])

    def read(self, path: Path):
        """The file's records (one per row, targets not needed), checked by the run's bad-row policy."""
        r, d = self.side["reader"], self.side["data"]
        fmt = r["dict_format"] if r["dict_format"] and path.suffix.lower() == ".dict" else r["format"]
        result = read_pairs(path, source_column=r["source_column"], target_column=r["target_column"],
                            source_tokenize=self.side["source_tokenize"], target_tokenize=self.side["target_tokenize"],
                            lowercase=r["lowercase"], format=fmt, require_target=False)
        validated = validate_splits({"data": result}, policy=d["bad_rows"], max_bad_fraction=d["max_bad_fraction"],
                                    rejects_path=None, check_labels=False)
        return validated.splits["data"]

    def encode(self, record) -> np.ndarray:
        """One record's source -> (S,) int64 ids, cut to the training limit (the first tokens)."""
        return np.asarray(self.source_vocab.encode(record.tokens[:int(self.side["truncation"]["limit"])]),
                          dtype=np.int64)

    def generate(self, sources: list[np.ndarray]) -> list[tuple[tuple[int, ...], float]]:
        """(ids, log-probability) per source, in input order: batches of `data.batch_size` sorted by length."""
        ids = self.side["special_ids"]
        dec = self.decode
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        size = int(self.side["data"]["batch_size"])
        out: list = [None] * len(sources)
        for lo in range(0, len(order), size):
            rows = order[lo:lo + size]
            inputs, mask = pad_batch([sources[i] for i in rows])
            enc = onnx_encode(self.encoder, inputs, mask, self.state_names)
            common = {"bos": ids["bos"], "eos": ids["eos"], "pad": ids["pad"], "steps": int(dec["steps"])}
            if dec["method"] == "beam":
                hyps = beam_search(self.step, enc, int(dec["beam"]), length_penalty=float(dec["length_penalty"]),
                                   **common)
            else:
                hyps = greedy_search(self.step, enc, **common)
            for i, h in zip(rows, hyps, strict=True):
                out[i] = h
        return out

    def predict_file(self, data: str | Path, output: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                     progress: bool | None = None) -> int:
        """Write one prediction per input row to `output` (the PyTorch path's TSV or JSONL); returns the count. A
        table file is read, generated and written `chunk_rows` rows at a time, as the PyTorch path does."""
        def predict() -> tuple[list, list]:
            records = self.read(Path(data))
            return records, self.generate([self.encode(r) for r in records]) if records else []

        def write(out: Path, records: list, hyps: list) -> int:
            return write_generated_predictions(
                out, records, [(self.target_vocab.decode(h[0]), h[1]) for h in hyps],
                source_tokenize=self.side["source_tokenize"], target_tokenize=self.side["target_tokenize"],
                limit=int(self.decode["max_decode_length"]))

        r = self.side["reader"]
        fmt = r["dict_format"] if r["dict_format"] and Path(data).suffix.lower() == ".dict" else r["format"]
        return stream_predictions(data, output, predict=predict, write=write,
                                  max_bad_fraction=self.side["data"]["max_bad_fraction"], fmt=fmt,
                                  chunk_rows=chunk_rows, progress=progress)


def open_sidecar(side_file: Path) -> dict | None:
    """The sidecar's content when it describes an encoder-decoder export (``graphs``), else None."""
    if not side_file.exists():
        return None
    side = json.loads(side_file.read_text())
    return side if side.get("graphs") else None


__all__ = ["ENCODER", "STEP", "Encoded", "GenerationModel", "beam_search", "graph_files", "greedy_search",
           "onnx_encode", "onnx_step", "open_sidecar", "pad_batch"]
