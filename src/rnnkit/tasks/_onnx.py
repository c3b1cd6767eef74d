"""What each family tells `rnnkit export` (`rnnkit.export`): its ONNX graph's inputs and output, the forward the
graph computes, the sizes of a random batch for the self-check, and its part of the sidecar JSON. A family without
an `OnnxSpec` (`Task.onnx` None) is not exported.

The graph always takes ``inputs`` and a boolean ``mask`` (B, T) first and computes the lengths from the mask; a
family may add inputs after them (a forecaster's ``series_index``, a tagger's ``chars``).

A family that generates token by token gives a `GenerationSpec` instead: its encoder and ONE decoder step export
as two graphs (`rnnkit.export` names their inputs and outputs, `rnnkit.generation` runs the search over them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MASK = {"dtype": "bool", "axes": {0: "batch", 1: "time"}}
TOKENS = {"dtype": "int64", "axes": {0: "batch", 1: "time"}}
FEATURES = {"dtype": "float32", "axes": {0: "batch", 1: "time", 2: "channels"}}


@dataclass(frozen=True)
class OnnxSpec:
    """A family's ONNX export.

    Attributes:
        inputs: (model, prep) -> {name: {"dtype", "axes"}}, in the graph's order ("inputs", "mask" first).
        output: the graph output's name; output_axes: its dynamic axes.
        forward: (model, inputs, lengths, mask, extra: dict of the added inputs) -> the output tensor.
        sizes: (prep) -> keywords of `rnnkit.export.example_batch` (vocab_size, channels, num_series, num_chars).
        check_lengths: (cfg) -> three maximum lengths for the self-check, the last beyond any training sequence.
        sidecar: (cfg, prep, model) -> the family's part of the sidecar JSON.
        serve: how `rnnkit predict --backend onnx` turns the output into a prediction file: "probabilities"
            (softmax over labels), "units" (z-scores mapped back with target_mean/std), or None (torch path only).
        compare_real_steps: the output has a time axis (B, T, ...): the self-check compares real steps only.
    """

    inputs: Callable
    output: str
    output_axes: dict
    forward: Callable
    sizes: Callable
    check_lengths: Callable
    sidecar: Callable
    serve: str | None = None
    compare_real_steps: bool = False


@dataclass(frozen=True)
class GenerationSpec:
    """An encoder-decoder family's ONNX export: the encoder and one decoder step, two graphs.

    The graphs' inputs and outputs, in order (``state`` is `state_names`, e.g. ``("h", "c")`` for an LSTM decoder,
    each (decoder layers, B, H)):

    - encoder: ``inputs`` (B, S) int64 source ids, ``mask`` (B, S) bool -> ``memory`` (B, S, D), ``memory_keys``
      (B, S, A) (the attention keys, computed once per source), then the decoder's initial ``state``.
    - decoder step: ``token`` (N,) int64 previous token, ``state``, ``memory``, ``memory_keys``, ``memory_mask``
      (N, S) bool -> ``log_probs`` (N, V), ``new_<state>``, ``attention`` (N, S) (0 on source pads).

    Attributes:
        encoder: (model) -> nn.Module computing the encoder graph.
        step: (model) -> nn.Module computing the decoder step graph.
        state_names: (model) -> the decoder state's names.
        greedy: (model, inputs, lengths, mask, steps) -> per row the token ids the model's own greedy decode
            produces (no BOS/EOS/pad): what the ONNX decode must reproduce exactly.
        special_ids: (prep) -> {"pad": id, "bos": id, "eos": id} of the target vocabulary.
        steps: (cfg, model) -> the most decoding steps the run's decoder takes.
        sizes: (prep) -> keywords of `rnnkit.export.example_batch` (vocab_size: the source vocabulary).
        check_lengths: (cfg) -> three maximum source lengths for the self-check, the last beyond any training one.
        sidecar: (cfg, prep, model) -> the family's part of the sidecar JSON.
        serve: how `rnnkit predict --backend onnx` writes the output ("generate": `rnnkit.generation`).
    """

    encoder: Callable
    step: Callable
    state_names: Callable
    greedy: Callable
    special_ids: Callable
    steps: Callable
    sizes: Callable
    check_lengths: Callable
    sidecar: Callable
    serve: str = "generate"


def sequence_inputs(model, prep) -> dict:
    """One sequence per row, tokens or numeric features (classify, regress)."""
    return {"inputs": TOKENS if prep.kind == "text" else FEATURES, "mask": MASK}


def sequence_sizes(prep) -> dict:
    return {"vocab_size": len(prep.vocab) if prep.vocab is not None else 0, "channels": prep.num_features or 0}


def sequence_lengths(cfg) -> list[int]:
    """Short, medium, and longer than `data.max_length` (no training sequence is longer)."""
    return [3, 17, int(cfg.data.max_length) + 9]


def sequence_sidecar(prep) -> dict:
    """Input kind, vocabulary or standardizer of a one-sequence-per-row family."""
    return {"kind": prep.kind, "num_features": prep.num_features,
            "vocab": prep.vocab.to_dict() if prep.vocab is not None else None,
            "standardizer": prep.standardizer.to_dict() if prep.standardizer is not None else None}


def plain_forward(model, inputs, lengths, mask, extra):
    return model(inputs, lengths, mask)


def sequence_spec(output: str, serve: str, extra: Callable) -> OnnxSpec:
    """The export of a one-sequence-per-row family (classify, regress): `output` of shape (B, K), served as
    `serve`, its sidecar the input encoding plus `extra(prep)` (labels, or target scaling)."""
    return OnnxSpec(inputs=sequence_inputs, output=output, output_axes={0: "batch"}, forward=plain_forward,
                    sizes=sequence_sizes, check_lengths=sequence_lengths, serve=serve,
                    sidecar=lambda cfg, prep, model: {**sequence_sidecar(prep), **extra(prep)})


__all__ = ["FEATURES", "MASK", "TOKENS", "GenerationSpec", "OnnxSpec", "plain_forward", "sequence_inputs",
           "sequence_lengths", "sequence_sidecar", "sequence_sizes", "sequence_spec"]
