"""`rnnkit export DIR --format onnx`: a trained run's model as an ONNX graph, with a sidecar JSON for inference.

What is exported, per family (one forward each, except the encoder-decoder):

- classify: ``inputs`` (B, T) int64 token ids or (B, T, C) float32 standardized features, ``mask`` (B, T) bool
  -> ``logits`` (B, K) (the plain logits: softmax gives the probabilities `rnnkit predict` writes).
- regress: the same inputs -> ``prediction`` (B, K) in z-scored target units (the sidecar holds the mean and
  standard deviation that map them back).
- forecast: ``inputs`` (B, L, C) float32 windows, ``mask`` (B, L) [, ``series_index`` (B,) int64 with
  forecast.series_embedding] -> ``prediction`` (B, H, K) in the z-scored units of each series.
- tag: ``inputs`` (B, T) word ids, ``mask`` [, ``chars`` (B, T, W) int64, ``char_lengths`` (B, T) int64] ->
  ``emissions`` (B, T, K); with a CRF the sidecar holds its start/end/transition scores for Viterbi decoding.
- seq2seq: two graphs beside the sidecar, ``NAME.encoder.onnx``: ``inputs`` (B, S) source ids, ``mask`` ->
  ``memory``, ``memory_keys``, the decoder's initial ``h`` [, ``c``]; and ``NAME.decoder_step.onnx``: ``token``
  (N,), ``h`` [, ``c``], ``memory``, ``memory_keys``, ``memory_mask`` -> ``log_probs`` (N, V), ``new_h``
  [, ``new_c``], ``attention`` (N, S), so that a runtime runs greedy or beam search (`rnnkit.generation` does).
  The sidecar adds both vocabularies, the pad/BOS/EOS ids and the decoding settings (method, beam, length
  penalty, steps). Its self-check compares the encoder's outputs on mixed-length batches and every decoder step
  of a full greedy decode in onnxruntime, whose tokens must equal the PyTorch model's own greedy decode.

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
from rnnkit.generation import ENCODER, STEP, Encoded, graph_files, greedy_search, onnx_encode
from rnnkit.tasks._onnx import MASK, TOKENS, GenerationSpec

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
    return {**_base_sidecar(task, cfg, prep, exporter, OPSET),
            "inputs": {k: {"dtype": v["dtype"], "axes": {str(a): n for a, n in v["axes"].items()}}
                       for k, v in sig.inputs.items()},
            "output": sig.output, **task.onnx.sidecar(cfg, prep, model)}


def _base_sidecar(task, cfg, prep, exporter: str, opset: int) -> dict:
    """What every sidecar holds: format, versions, task, how it was exported, the data options, the config."""
    d = cfg.data
    return {
        "format": SIDECAR_FORMAT, "rnnkit": __version__, "task": task.name, "exporter": exporter, "opset": opset,
        "serve": task.onnx.serve,
        "data": {"format": d.format, "input": d.input, "text_column": d.text_column,
                 "sequence_column": d.sequence_column, "label_column": d.label_column, "id_column": d.id_column,
                 "time_column": d.time_column, "feature_columns": d.feature_columns, "tokenize": d.tokenize,
                 "lowercase": d.lowercase, "delimiter": d.delimiter, "max_length": d.max_length,
                 "truncate_keep": d.truncate_keep, "batch_size": d.batch_size, "dataset": d.dataset,
                 "bad_rows": d.bad_rows, "max_bad_fraction": d.max_bad_fraction},
        "reader": _reader_options(cfg, prep),
        "truncation": _truncation(cfg, prep),
        "config": cfg.to_dict(),
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

    An encoder-decoder (`GenerationSpec`) writes two graphs instead of ``output``: ``NAME.encoder.onnx`` and
    ``NAME.decoder_step.onnx`` beside ``NAME.onnx.json`` (listed in the sidecar's ``graphs`` with their sha256).

    Returns:
        the sidecar's content (also written to ``OUTPUT.json``), with ``check``: the self-check's lengths and
        largest absolute difference between onnxruntime and PyTorch (an encoder-decoder's also counts the rows
        whose greedy decode gave PyTorch's tokens).

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
        raise ExportError(f"{run_dir}: task {task.name!r} cannot be exported: the family declares no ONNX export "
                          "(its Task has no onnx spec).")
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
    if isinstance(spec, GenerationSpec):
        return _export_generation(run_dir, out, exporter, ort, cfg, prep, task, model)
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
                                  dynamic_shapes=shapes, opset_version=max(OPSET, 18), verbose=False,
                                  external_data=False)  # one file: the weights inside (no .data beside it)
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


# ---------------------------------------------------------------------- encoder-decoder: two graphs


def _generation_io(states: list[str]) -> dict[str, tuple[dict, dict]]:
    """Per graph: ({input name: axes}, {output name: axes}), in the graphs' order."""
    source = {0: "batch", 1: "source_time"}
    return {
        ENCODER: ({"inputs": TOKENS["axes"], "mask": MASK["axes"]},
                  {"memory": {0: "batch", 1: "time"}, "memory_keys": {0: "batch", 1: "time"},
                   **{n: {1: "batch"} for n in states}}),
        STEP: ({"token": {0: "batch"}, **{n: {1: "batch"} for n in states}, "memory": source, "memory_keys": source,
                "memory_mask": source},
               {"log_probs": {0: "batch"}, **{f"new_{n}": {1: "batch"} for n in states}, "attention": source}),
    }


def _export_graph(module: nn.Module, args: tuple, inputs: dict, outputs: dict, exporter: str, tmp: Path,
                  run_dir: Path, what: str) -> bytes:
    """One module -> ONNX bytes with the dynamic axes of `inputs` / `outputs` ({name: {axis: axis name}})."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' tracer notes (e.g. on the shape checks it skips)
            if exporter == "torchscript":
                torch.onnx.export(module, args, str(tmp), dynamo=False, input_names=list(inputs),
                                  output_names=list(outputs), dynamic_axes={**inputs, **outputs}, opset_version=OPSET)
            else:
                dims: dict[str, torch.export.Dim] = {}
                shapes = tuple({a: dims.setdefault(name, torch.export.Dim(name)) for a, name in axes.items()}
                               for axes in inputs.values())
                torch.onnx.export(module, args, str(tmp), dynamo=True, input_names=list(inputs),
                                  output_names=list(outputs), dynamic_shapes=shapes, opset_version=max(OPSET, 18),
                                  verbose=False, external_data=False)  # one file: the weights inside
        return tmp.read_bytes()
    except Exception as exc:  # noqa: BLE001 - every exporter failure becomes one clear error
        raise ExportError(f"{run_dir}: the {exporter} exporter could not export this model's {what}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _export_generation(run_dir: Path, out: Path, exporter: str, ort, cfg, prep, task, model) -> dict:
    """The encoder and one decoder step as two graphs beside the sidecar (`rnnkit.generation.graph_files`)."""
    spec: GenerationSpec = task.onnx
    states = list(spec.state_names(model))
    io = _generation_io(states)
    modules = {ENCODER: spec.encoder(model).eval(), STEP: spec.step(model).eval()}
    sizes = spec.sizes(prep)
    sig = Signature({"inputs": TOKENS, "mask": MASK}, "memory", {})
    example = example_batch(sig, [5, 8], **sizes)
    src, mask = torch.from_numpy(example["inputs"]), torch.from_numpy(example["mask"])
    with torch.no_grad():  # not inference mode: the tracer records these tensors
        memory, keys, *state = modules[ENCODER](src, mask)
    bos = spec.special_ids(prep)["bos"]
    args = {ENCODER: (src, mask),
            STEP: (torch.full((src.shape[0],), bos, dtype=torch.int64), *state, memory, keys, mask)}
    files = graph_files(out)
    data = {}
    for name, module in modules.items():
        tmp = out.with_name(f".{files[name].name}.tmp-{os.getpid()}")
        data[name] = _export_graph(module, args[name], *io[name], exporter, tmp, run_dir,
                                   "encoder" if name == ENCODER else "decoder step")
    check = _check_generation(ort, data, modules, model, spec, states, sizes, spec.check_lengths(cfg),
                              spec.steps(cfg, model), spec.special_ids(prep), exporter)
    side = _base_sidecar(task, cfg, prep, exporter, OPSET if exporter == "torchscript" else max(OPSET, 18))
    side["graphs"] = {
        name: {"file": files[name].name, "sha256": hashlib.sha256(data[name]).hexdigest(),
               "inputs": {n: {str(a): v for a, v in axes.items()} for n, axes in io[name][0].items()},
               "outputs": {n: {str(a): v for a, v in axes.items()} for n, axes in io[name][1].items()}}
        for name in modules}
    side.update(spec.sidecar(cfg, prep, model))
    side["check"] = check
    for name in modules:
        _write_atomic(files[name], data[name])
    _write_atomic(out.with_name(out.name + ".json"), (json.dumps(side, indent=1) + "\n").encode())
    return side


def _check_generation(ort, data: dict, modules: dict, model, spec, states: list[str], sizes: dict,
                      lengths: list[int], steps: int, ids: dict, exporter: str) -> dict:
    """onnxruntime against PyTorch on mixed-length batches: the encoder's outputs (real steps), every decoder step
    of a full greedy decode (log-probabilities, state, attention), and the decoded tokens (exactly equal)."""
    hint = " (try --exporter torchscript)" if exporter == "dynamo" else ""
    sessions = {n: ort.InferenceSession(b, providers=["CPUExecutionProvider"]) for n, b in data.items()}
    sig = Signature({"inputs": TOKENS, "mask": MASK}, "memory", {})
    tried, worst_enc, worst_step, decoded, tokens = [], 0.0, 0.0, 0, 0
    for i, longest in enumerate(lengths):
        rows = sorted({max(1, longest // 3), max(1, longest - 2), longest})
        batch = example_batch(sig, rows, **sizes, seed=i + 1)
        try:
            enc = onnx_encode(sessions[ENCODER], batch["inputs"], batch["mask"], states)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ExportError(f"the {exporter} exporter's encoder graph fails in onnxruntime on a batch of lengths "
                              f"{rows}: {str(exc).splitlines()[0]}{hint}") from exc
        src, mask = torch.from_numpy(batch["inputs"]), torch.from_numpy(batch["mask"])
        with torch.inference_mode():
            ref = [t.float().numpy() for t in modules[ENCODER](src, mask)]
        got = [enc.memory, enc.keys, *enc.state]
        diff = max(float(np.max(np.abs((g - r)[batch["mask"]]))) for g, r in zip(got[:2], ref[:2], strict=True))
        diff = max(diff, *(float(np.max(np.abs(g - r))) for g, r in zip(got[2:], ref[2:], strict=True)))
        worst_enc = max(worst_enc, diff)
        step = _CheckedStep(sessions[STEP], modules[STEP], states, f"the {exporter} exporter's decoder step graph "
                            f"fails in onnxruntime on a batch of source lengths {rows}", hint)
        hyps = greedy_search(step, enc, bos=ids["bos"], eos=ids["eos"], pad=ids["pad"], steps=steps)
        worst_step = max(worst_step, step.worst)
        reference = spec.greedy(model, src, mask.sum(dim=1), mask, steps)
        for row, (h, want) in enumerate(zip(hyps, reference, strict=True)):
            if list(h[0]) != list(want):
                raise ExportError(f"the {exporter} exporter's graphs decode row {row} of a batch of source lengths "
                                  f"{rows} greedily to other tokens than PyTorch ({list(h[0])[:12]} against "
                                  f"{list(want)[:12]}); nothing was written{hint}")
        decoded += len(hyps)
        tokens += sum(len(h[0]) for h in hyps)
        tried.append({"lengths": rows, "max_abs_diff": max(diff, step.worst), "encoder_max_abs_diff": diff,
                      "decoder_step_max_abs_diff": step.worst, "decoder_steps": step.calls})
    worst = max(worst_enc, worst_step)
    if worst > TOLERANCE:
        raise ExportError(f"the {exporter} exporter's graphs differ from the PyTorch model by {worst:.3g} (more than "
                          f"{TOLERANCE:g}; encoder {worst_enc:.3g}, decoder step {worst_step:.3g}) on mixed-length "
                          f"batches; nothing was written{hint}")
    return {"batches": tried, "max_abs_diff": worst, "encoder_max_abs_diff": worst_enc,
            "decoder_step_max_abs_diff": worst_step, "tolerance": TOLERANCE,
            "greedy": {"rows_identical": decoded, "tokens": tokens, "max_steps": steps},
            "runtime": f"onnxruntime {ort.__version__}"}


class _CheckedStep:
    """The decoder step graph in onnxruntime, run in PyTorch as well on the same inputs: `worst` is the largest
    difference of any output (log-probabilities, new state, attention) over the calls."""

    def __init__(self, session, module: nn.Module, states: list[str], failure: str, hint: str):
        self.session, self.module, self.states, self.failure, self.hint = session, module, states, failure, hint
        self.worst, self.calls = 0.0, 0

    def __call__(self, token, state, encoded: Encoded):
        feeds = {"token": token, **dict(zip(self.states, state, strict=True)), "memory": encoded.memory,
                 "memory_keys": encoded.keys, "memory_mask": encoded.mask}
        try:
            got = self.session.run(None, feeds)  # log_probs, new state..., attention
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ExportError(f"{self.failure}: {str(exc).splitlines()[0]}{self.hint}") from exc
        with torch.inference_mode():
            want = self.module(*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
        for g, w in zip(got, want, strict=True):
            self.worst = max(self.worst, float(np.max(np.abs(g - w.float().numpy()))))
        self.calls += 1
        return got[0], tuple(got[1:1 + len(self.states)])


__all__ = ["EXPORTERS", "TOLERANCE", "ExportError", "example_batch", "export_onnx"]
