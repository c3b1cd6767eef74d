"""`rnnkit export DIR --format onnx`: a trained run's model as an ONNX graph, with a sidecar JSON for inference.

What is exported, per family (one forward each; seq2seq is not exported yet):

- classify: ``inputs`` (B, T) int64 token ids or (B, T, C) float32 standardized features, ``mask`` (B, T) bool
  -> ``logits`` (B, K) (the plain logits: softmax gives the probabilities `rnnkit predict` writes).
- regress: the same inputs -> ``prediction`` (B, K) in z-scored target units (the sidecar holds the mean and
  standard deviation that map them back).
- forecast: ``inputs`` (B, L, C) float32 windows, ``mask`` (B, L) [, ``series_index`` (B,) int64 with
  forecast.series_embedding] -> ``prediction`` (B, H, K) in the z-scored units of each series.
- tag: ``inputs`` (B, T) word ids, ``mask`` [, ``chars`` (B, T, W) int64, ``char_lengths`` (B, T) int64] ->
  ``emissions`` (B, T, K); with a CRF the sidecar holds its start/end/transition scores for Viterbi decoding.

Batch and time are dynamic axes. The graph takes the mask and computes the lengths from it (``mask.sum(1)``), and
goes through the padded, masked path of `RNNEncoder` (packing does not export), including the backward
direction's per-sequence reversal. Two exporters: ``torchscript`` (``torch.onnx.export(dynamo=False)``, the
default: it reproduces the model on every length tried) and ``dynamo`` (``torch.export``-based; on torch 2.13 its
graph of the bidirectional reversal fails in onnxruntime on shapes other than the example's, so it is offered
for trying, and the export's own check refuses a graph that does not match).

Every export checks itself before it is written: onnxruntime runs the graph on batches of mixed lengths (three
maximum lengths, one longer than any training sequence) and the largest difference from PyTorch must stay under
`TOLERANCE`; the figures are in the sidecar (``check``). The sidecar (``FILE.json`` beside ``FILE.onnx``) holds
what inference needs: task, input and output names, vocabulary, labels, standardizer, truncation, reader
options, family settings, and the ONNX file's sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit import __version__
from rnnkit.api import load_run
from rnnkit.errors import ConfigError, MissingExtra, RnnkitError

EXPORTERS = ("torchscript", "dynamo")
TOLERANCE = 1e-4  # largest |onnxruntime - torch| the self-check accepts
OPSET = 17
SIDECAR_FORMAT = "rnnkit-onnx/1"
INSTALL_HINT = "pip install 'rnnkit[export]' (onnx and onnxruntime)"


class ExportError(RnnkitError):
    """The model cannot be exported, or the exported graph does not reproduce it."""

    exit_code = 2


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as exc:
        raise MissingExtra(f"rnnkit export needs onnx and onnxruntime ({exc.name} is not installed): "
                           f"{INSTALL_HINT}") from exc
    return onnxruntime


class _Graph(nn.Module):
    """What the ONNX graph computes: the family's forward (`OnnxSpec.forward`) with the lengths taken from the mask."""

    def __init__(self, model: nn.Module, spec, extra: tuple[str, ...]):
        super().__init__()
        self.model, self.spec, self.extra = model, spec, extra

    def forward(self, inputs, mask, *extra):
        return self.spec.forward(self.model, inputs, mask.sum(dim=1), mask, dict(zip(self.extra, extra, strict=True)))


@dataclasses.dataclass
class Signature:
    """The graph's inputs (name -> dtype, axes) and output."""

    inputs: dict[str, dict]
    output: str
    output_axes: dict[int, str]


def example_batch(sig: Signature, lengths: list[int], *, vocab_size: int, channels: int, num_series: int = 0,
                  num_chars: int = 0, word_chars: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """A random padded batch in the graph's input layout: one row per length (the longest sets T)."""
    rng = np.random.default_rng(seed)
    b, t = len(lengths), max(lengths)
    mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    batch: dict[str, np.ndarray] = {"mask": mask}
    if sig.inputs["inputs"]["dtype"] == "int64":
        batch["inputs"] = np.where(mask, rng.integers(2, max(vocab_size, 3), size=(b, t)), 0).astype(np.int64)
    else:
        batch["inputs"] = (rng.standard_normal((b, t, channels)) * mask[:, :, None]).astype(np.float32)
    if "series_index" in sig.inputs:
        batch["series_index"] = rng.integers(0, num_series + 1, size=b).astype(np.int64)
    if "chars" in sig.inputs:
        counts = np.where(mask, rng.integers(1, word_chars + 1, size=(b, t)), 0)
        chars = rng.integers(2, max(num_chars, 3), size=(b, t, word_chars))
        batch["chars"] = np.where(np.arange(word_chars)[None, None, :] < counts[:, :, None], chars, 0).astype(np.int64)
        batch["char_lengths"] = counts.astype(np.int64)
    return batch


def _torch_outputs(graph: _Graph, batch: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    args = [torch.from_numpy(batch[n]) for n in names]
    with torch.inference_mode():
        return graph(*args).float().numpy()


def _sidecar(task, cfg, prep, sig: Signature, exporter: str, model: nn.Module) -> dict:
    d = cfg.data
    return {
        "format": SIDECAR_FORMAT, "rnnkit": __version__, "task": task.name, "exporter": exporter, "opset": OPSET,
        "inputs": {k: {"dtype": v["dtype"], "axes": {str(a): n for a, n in v["axes"].items()}}
                   for k, v in sig.inputs.items()},
        "output": sig.output, "serve": task.onnx.serve,
        "data": {"format": d.format, "input": d.input, "text_column": d.text_column,
                 "sequence_column": d.sequence_column, "label_column": d.label_column, "id_column": d.id_column,
                 "time_column": d.time_column, "feature_columns": d.feature_columns, "tokenize": d.tokenize,
                 "lowercase": d.lowercase, "delimiter": d.delimiter, "max_length": d.max_length,
                 "truncate_keep": d.truncate_keep, "batch_size": d.batch_size, "dataset": d.dataset,
                 "bad_rows": d.bad_rows, "max_bad_fraction": d.max_bad_fraction},
        "reader": _reader_options(cfg, prep),
        "truncation": _truncation(cfg, prep),
        "config": cfg.to_dict(),
        **task.onnx.sidecar(cfg, prep, model),
    }


def _truncation(cfg, prep) -> dict:
    """How inference cuts an over-long row, as training did: limit, what is kept, the head+tail head."""
    from rnnkit.data.pipeline import truncation_for

    cut = truncation_for(cfg, getattr(prep, "long_sequences", "truncate"))
    return {"limit": cut.limit, "keep": cut.keep, "head": cut.head, "by": cut.by}


def _reader_options(cfg, prep) -> dict:
    """The options `rnnkit predict` reads a file with (a built-in data set's own included): what the ONNX runtime
    (`rnnkit.serve`) passes to `read_records`."""
    from rnnkit.data.datasets import get_builtin
    from rnnkit.data.pipeline import reader_options

    options = reader_options(cfg)
    if cfg.data.dataset:
        options.update(get_builtin(cfg.data.dataset).reader_options)
    targets = getattr(prep, "target_columns", None)
    if targets and options.get("label_column") not in targets:  # numeric targets: the first names the label
        options["label_column"] = targets[0]
    return options


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx(run_dir: str | Path, output: str | Path | None = None, *, exporter: str = "torchscript") -> dict:
    """Export the run's best model to ONNX (``output``, default ``DIR/model.onnx``) and its sidecar JSON.

    Returns:
        the sidecar's content (also written to ``OUTPUT.json``), with ``check``: the self-check's lengths and
        largest absolute difference between onnxruntime and PyTorch.

    Raises:
        ExportError: onnx/onnxruntime missing (with the install command), a family without a single forward,
            a model the exporter cannot trace, or a graph whose outputs differ from PyTorch's by more than
            `TOLERANCE` (nothing is written then).
        CheckpointError: DIR is not a finished run directory.
    """
    if exporter not in EXPORTERS:
        raise ConfigError(f"--exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    ort = _require_onnx()
    run_dir = Path(run_dir)
    cfg, prep, task, model, _ = load_run(run_dir, device="cpu")
    if task.onnx is None:
        raise ExportError(f"{run_dir}: task {task.name!r} cannot be exported yet: ONNX export covers the families "
                          "with one forward pass (a sequence-to-sequence model needs its encoder and a decoder step, "
                          "not built yet).")
    if getattr(prep, "long_sequences", "truncate") in ("window", "hierarchical"):
        raise ExportError(f"{run_dir}: this model reads documents in windows (data.long_sequences="
                          f"{prep.long_sequences}), which does "
                          "not export to ONNX yet (the window count per document is data-dependent: bincount); "
                          "train with --set data.long_sequences=truncate to export.")
    out = Path(output) if output is not None else run_dir / "model.onnx"
    if out.suffix != ".onnx":
        raise ConfigError(f"--output {out}: the file name must end in .onnx (the sidecar is written beside it as "
                          f"{out.name}.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    spec = task.onnx
    sig = Signature(spec.inputs(model, prep), spec.output, spec.output_axes)
    names = list(sig.inputs)
    graph = _Graph(model, spec, tuple(names[2:])).eval()
    sizes = spec.sizes(prep)
    example = example_batch(sig, [5, 8], **sizes)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' tracer notes (e.g. on the shape checks it skips)
            if exporter == "torchscript":
                axes = {n: v["axes"] for n, v in sig.inputs.items()} | {sig.output: sig.output_axes}
                torch.onnx.export(graph, args, str(tmp), dynamo=False, input_names=names, output_names=[sig.output],
                                  dynamic_axes=axes, opset_version=OPSET)
            else:
                dims: dict[str, torch.export.Dim] = {}
                shapes = {n: {a: dims.setdefault(name, torch.export.Dim(name)) for a, name in v["axes"].items()}
                          for n, v in sig.inputs.items()}
                torch.onnx.export(graph, args, str(tmp), dynamo=True, input_names=names, output_names=[sig.output],
                                  dynamic_shapes=shapes, opset_version=max(OPSET, 18), verbose=False)
        data = tmp.read_bytes()
    except Exception as exc:  # noqa: BLE001 - every exporter failure becomes one clear error
        raise ExportError(f"{run_dir}: the {exporter} exporter could not export this model: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    check = _self_check(ort, data, graph, sig, names, sizes, spec.check_lengths(cfg), exporter,
                        real_steps=spec.compare_real_steps)
    side = _sidecar(task, cfg, prep, sig, exporter, model)
    side["check"] = check
    side["onnx_sha256"] = hashlib.sha256(data).hexdigest()
    side["onnx_file"] = out.name
    _write_atomic(out, data)
    _write_atomic(out.with_name(out.name + ".json"), (json.dumps(side, indent=1) + "\n").encode())
    return side


def _self_check(ort, data: bytes, graph: _Graph, sig: Signature, names: list[str], sizes: dict, lengths: list[int],
                exporter: str, *, real_steps: bool = False) -> dict:
    """Run the graph in onnxruntime on mixed-length batches and compare with PyTorch; raise when it differs."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst, tried = 0.0, []
    for i, longest in enumerate(lengths):
        rows = sorted({max(1, longest // 3), max(1, longest - 2), longest})
        batch = example_batch(sig, rows, **sizes, seed=i + 1)
        try:
            got = session.run([sig.output], {n: batch[n] for n in names})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ExportError(f"the {exporter} exporter's graph fails in onnxruntime on a batch of lengths {rows}: "
                              f"{str(exc).splitlines()[0]}"
                              + (" (try --exporter torchscript)" if exporter == "dynamo" else "")) from exc
        ref = _torch_outputs(graph, batch, names)
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        if real_steps:  # an output per step: pads are not defined outputs, compare the real steps only
            diff = float(np.max(np.abs((got - ref)[batch["mask"]]))) if batch["mask"].any() else 0.0
        worst = max(worst, diff)
        tried.append({"lengths": rows, "max_abs_diff": diff})
    if worst > TOLERANCE:
        raise ExportError(f"the {exporter} exporter's graph differs from the PyTorch model by {worst:.3g} (more than "
                          f"{TOLERANCE:g}) on mixed-length batches; nothing was written"
                          + (" (try --exporter torchscript)" if exporter == "dynamo" else ""))
    return {"batches": tried, "max_abs_diff": worst, "tolerance": TOLERANCE,
            "runtime": f"onnxruntime {ort.__version__}"}


__all__ = ["EXPORTERS", "TOLERANCE", "ExportError", "example_batch", "export_onnx"]
