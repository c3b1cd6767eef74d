"""The ONNX export of the sequence-to-sequence family (`rnnkit.tasks.seq2seq`): its encoder and one decoder step.

`rnnkit export` traces the two modules below into two graphs (`GenerationSpec` lists their inputs and outputs);
`rnnkit.generation` runs greedy or beam search over them with onnxruntime, as `rnnkit.models.seq2seq` does over
the PyTorch model. The step module repeats `Seq2Seq.step` and also returns the attention weights; the export's
self-check holds the two together (a full greedy decode must give the PyTorch model's own tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.tasks._onnx import GenerationSpec


def _state_names(model) -> tuple[str, ...]:
    return ("h", "c") if model.cell == "lstm" else ("h",)


def _stack(state: list) -> tuple[torch.Tensor, ...]:
    """Per decoder layer (h, c) or h, each (1, N, H) -> h (Ld, N, H)[, c (Ld, N, H)]."""
    if isinstance(state[0], tuple):
        return torch.cat([s[0] for s in state], 0), torch.cat([s[1] for s in state], 0)
    return (torch.cat(state, 0),)


def _unstack(tensors: tuple[torch.Tensor, ...]) -> list:
    layers = tensors[0].shape[0]
    if len(tensors) == 2:
        return [(tensors[0][i:i + 1], tensors[1][i:i + 1]) for i in range(layers)]
    return [tensors[0][i:i + 1] for i in range(layers)]


class Encoder(nn.Module):
    """inputs (B, S) int64, mask (B, S) bool -> memory, memory_keys, h[, c] (the decoder's initial state)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs, mask):
        memory = self.model.encode(inputs, mask.sum(dim=1), mask)
        return (memory.outputs, memory.keys, *_stack(memory.state))


class _Step(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def _step(self, token, state: tuple, memory, keys, mask):
        m = self.model
        x = m.target_embedding(token).unsqueeze(1)  # (N, 1, E)
        h, new_state = m._run_decoder(x, _unstack(state))  # (N, 1, Hd)
        context, weights = m.attention(h, keys, memory, mask)  # (N, 1, De), (N, 1, S)
        logits = m.output(m.dropout(torch.tanh(m.combine(torch.cat([h, context], dim=-1))))).squeeze(1)  # (N, V)
        return (torch.log_softmax(logits.float(), dim=-1), *_stack(new_state), weights.squeeze(1))


class LstmStep(_Step):
    """token (N,), h, c (Ld, N, H), memory, memory_keys, memory_mask -> log_probs (N, V), new_h, new_c, attention."""

    def forward(self, token, h, c, memory, memory_keys, memory_mask):
        return self._step(token, (h, c), memory, memory_keys, memory_mask)


class GruStep(_Step):
    """token (N,), h (Ld, N, H), memory, memory_keys, memory_mask -> log_probs (N, V), new_h, attention."""

    def forward(self, token, h, memory, memory_keys, memory_mask):
        return self._step(token, (h,), memory, memory_keys, memory_mask)


def _greedy(model, inputs, lengths, mask, steps: int) -> list[list[int]]:
    from rnnkit.models.seq2seq import greedy_decode

    with torch.inference_mode():
        return [list(h.ids) for h in greedy_decode(model, model.encode(inputs, lengths, mask), max_length=steps)]


def _decoding(cfg) -> dict:
    """How the run's `predict` decodes (`rnnkit.tasks.seq2seq.predict`): sampling, greedy (beam 1) or beam search."""
    s = cfg.seq2seq
    method = "sample" if s.sample else "greedy" if s.beam == 1 else "beam"
    return {"method": method, "beam": s.beam, "length_penalty": s.length_penalty,
            "max_decode_length": s.max_decode_length}


def _sidecar(cfg, prep, model) -> dict:
    from rnnkit.data.datasets import get_builtin

    d, s = cfg.data, cfg.seq2seq
    builtin = get_builtin(d.dataset).reader_options if d.dataset else {}
    return {
        "kind": "text",
        "source_vocab": prep.source_vocab.to_dict(), "target_vocab": prep.target_vocab.to_dict(),
        "source_tokenize": prep.source_tokenize, "target_tokenize": prep.target_tokenize,
        "special_ids": _special_ids(prep), "state": list(_state_names(model)),
        "decode": {**_decoding(cfg), "steps": model.decode_limit(s.max_decode_length)},
        "max_target_length": prep.max_target_length, "attention": s.attention,
        # what `load_inference` reads a predict file with: a built-in set's options, its format for its own files
        "reader": {"source_column": s.source_column, "target_column": s.target_column,
                   "format": d.format, "lowercase": bool(builtin.get("lowercase", d.lowercase)),
                   "dict_format": builtin.get("format")},
        "truncation": {"limit": int(d.max_length), "keep": "head", "head": 1.0, "by": "tokens"},
    }


def _special_ids(prep) -> dict:
    from rnnkit.models.seq2seq import PAD_ID

    return {"pad": PAD_ID, "bos": prep.bos_id, "eos": prep.eos_id}


ONNX = GenerationSpec(
    encoder=Encoder, step=lambda model: LstmStep(model) if model.cell == "lstm" else GruStep(model),
    state_names=_state_names, greedy=_greedy, special_ids=_special_ids,
    steps=lambda cfg, model: model.decode_limit(cfg.seq2seq.max_decode_length),
    sizes=lambda prep: {"vocab_size": len(prep.source_vocab), "channels": 0},
    check_lengths=lambda cfg: [3, 17, int(cfg.data.max_length) + 9], sidecar=_sidecar)

__all__ = ["ONNX", "Encoder", "GruStep", "LstmStep"]
