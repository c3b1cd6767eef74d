"""Encoder-decoder with attention (Luong-style), and its decoders: greedy, batched beam search, sampling.

Shape of the model::

    source ids -> embedding -> RNNEncoder (bidirectional) -> memory (B, S, De), final (B, De)
    final -> bridge -> decoder initial state (per decoder layer, h and for LSTM c)
    shifted target ids -> embedding -> decoder RNN (B, L, Hd)
    decoder outputs attend over memory (masked on source padding) -> context (B, L, De)
    tanh(W [h; context]) -> dropout -> vocabulary logits (B, L, V)

Attention is applied to the decoder's *outputs* (Luong et al. 2015, without input feeding), so under
full teacher forcing the whole shifted target goes through each decoder layer in ONE fused
``nn.LSTM``/``nn.GRU`` call: training never loops over time in Python (CPU speed, see DESIGN.md).
Scheduled sampling (a teacher-forcing ratio below 1) must feed the model's own predictions back and
therefore steps through time; so do all decoders.

Token ids: 0 = pad (never generated), `bos_id` starts every target, `eos_id` ends it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from rnnkit.models.encoder import RNNEncoder, WeightDropRNN, init_recurrent_

ATTENTIONS = ("additive", "multiplicative")
PAD_ID = 0


@dataclass
class Memory:
    """The encoded source, reused by every decoding step.

    Attributes:
        outputs: (N, S, De) encoder outputs (0 at pads).
        keys: (N, S, A) attention keys precomputed from `outputs`.
        mask: (N, S) bool, True on real source steps.
        state: decoder initial state: per decoder layer, (h, c) each (1, N, Hd) for LSTM, h for GRU.
    """

    outputs: Tensor
    keys: Tensor
    mask: Tensor
    state: list

    def repeat(self, k: int) -> Memory:
        """Each row repeated k times in place (row b -> rows b*k .. b*k+k-1), for beam search."""
        return Memory(self.outputs.repeat_interleave(k, 0), self.keys.repeat_interleave(k, 0),
                      self.mask.repeat_interleave(k, 0), reorder_state(self.state,
                                                                      torch.arange(self.mask.shape[0]).repeat_interleave(k)))


def reorder_state(state: list, index: Tensor) -> list:
    """Select rows `index` of every layer's state (dim 1 of each (1, N, Hd) tensor)."""
    out = []
    for s in state:
        if isinstance(s, tuple):
            out.append(tuple(x.index_select(1, index.to(x.device)) for x in s))
        else:
            out.append(s.index_select(1, index.to(s.device)))
    return out


class Attention(nn.Module):
    """Additive (Bahdanau) or multiplicative (Luong "general") attention, masked on source padding.

    additive: score(q, k) = v^T tanh(W_q q + W_k k); memory per call O(B*L*S*A).
    multiplicative: score(q, k) = q^T W k.

    Args:
        kind: "additive" or "multiplicative".
        query_size: Hd, decoder output size.
        key_size: De, encoder output size.
        attention_size: A for additive attention (multiplicative uses Hd).
    """

    def __init__(self, kind: str, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention must be one of {list(ATTENTIONS)}, got {kind!r}")
        self.kind = kind
        if kind == "additive":
            self.key_proj = nn.Linear(key_size, attention_size)
            self.query_proj = nn.Linear(query_size, attention_size, bias=False)
            self.v = nn.Linear(attention_size, 1, bias=False)
        else:
            self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """(N, S, De) -> (N, S, A): the query-independent half, computed once per source."""
        return self.key_proj(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Args: query (N, L, Hd), keys (N, S, A), memory (N, S, De), mask (N, S) True on real steps.

        Returns:
            context (N, L, De) and weights (N, L, S); weights are exactly 0 on pad steps.
        """
        if self.kind == "additive":
            q = self.query_proj(query).unsqueeze(2)  # (N, L, 1, A)
            scores = self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(-1)  # (N, L, S, A) -> (N, L, S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))  # (N, L, Hd) x (N, Hd, S) -> (N, L, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # (N, L, S)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory), weights  # (N, L, De)


class Seq2Seq(nn.Module):
    """Attention encoder-decoder over token ids.

    Args:
        source_vocab, target_vocab: vocabulary sizes (id 0 = pad on both sides).
        bos_id, eos_id: target-side start and end ids.
        embedding_dim, hidden_size, num_layers, cell, bidirectional, dropout, input_dropout,
            recurrent_dropout, layer_norm, residual, packing: the encoder's options (RNNEncoder);
            `hidden_size` is also the decoder size, `dropout` also applies to the decoder
            embedding, between decoder layers and before the output layer.
        decoder_layers: stacked decoder layers.
        attention: "additive" or "multiplicative".
        max_target_length: longest training target (tokens, without BOS/EOS); decoders stop at
            twice that unless a smaller limit is given.
    """

    def __init__(self, *, source_vocab: int, target_vocab: int, bos_id: int, eos_id: int, embedding_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 2, cell: str = "lstm", bidirectional: bool = True,
                 dropout: float = 0.3, input_dropout: float = 0.0, recurrent_dropout: float = 0.2,
                 layer_norm: bool = False, residual: bool | None = None, packing: str = "auto",
                 decoder_layers: int = 1, attention: str = "additive", max_target_length: int = 50) -> None:
        super().__init__()
        self.bos_id, self.eos_id = bos_id, eos_id
        self.target_vocab = target_vocab
        self.cell = cell
        self.hidden_size = hidden_size
        self.decoder_layers = decoder_layers
        self.max_target_length = max_target_length
        # teacher forcing schedule in optimizer steps; set by the task from the config (pure function of the step)
        self.teacher_forcing = (1.0, 1.0, 0)

        self.source_embedding = nn.Embedding(source_vocab, embedding_dim, padding_idx=PAD_ID)
        self.target_embedding = nn.Embedding(target_vocab, embedding_dim, padding_idx=PAD_ID)
        for emb in (self.source_embedding, self.target_embedding):
            nn.init.xavier_uniform_(emb.weight)
            emb.weight.data[PAD_ID].zero_()
        self.encoder = RNNEncoder(embedding_dim, hidden_size, num_layers=num_layers, cell=cell,
                                  bidirectional=bidirectional, dropout=dropout, input_dropout=input_dropout,
                                  recurrent_dropout=recurrent_dropout, layer_norm=layer_norm,
                                  residual=num_layers > 2 if residual is None else residual, packing=packing)
        enc = self.encoder.output_size
        # the bidirectional final state (2H) is projected to every decoder layer's initial state
        self.bridge_h = nn.Linear(enc, decoder_layers * hidden_size)
        self.bridge_c = nn.Linear(enc, decoder_layers * hidden_size) if cell == "lstm" else None
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.decoder = nn.ModuleList()
        for layer in range(decoder_layers):
            rnn = rnn_class(embedding_dim if layer == 0 else hidden_size, hidden_size, batch_first=True)
            init_recurrent_(rnn)
            self.decoder.append(WeightDropRNN(rnn, recurrent_dropout))
        self.attention = Attention(attention, hidden_size, enc, hidden_size)
        self.combine = nn.Linear(hidden_size + enc, hidden_size)
        self.output = nn.Linear(hidden_size, target_vocab)
        self.dropout = nn.Dropout(dropout)

    # ------------------------------------------------------------------ encoder side

    def encode(self, source: Tensor, lengths: Tensor, mask: Tensor) -> Memory:
        """source (B, S) ids (pad positions may hold anything), lengths (B,) CPU, mask (B, S)."""
        x = self.source_embedding(source.masked_fill(~mask, PAD_ID))  # (B, S, E)
        enc = self.encoder(x, lengths, mask)
        batch = source.shape[0]
        h = torch.tanh(self.bridge_h(enc.final)).view(batch, self.decoder_layers, -1)  # (B, Ld, Hd)
        h = h.transpose(0, 1).contiguous()  # (Ld, B, Hd)
        if self.bridge_c is not None:
            c = self.bridge_c(enc.final).view(batch, self.decoder_layers, -1).transpose(0, 1).contiguous()
            state = [(h[i:i + 1], c[i:i + 1]) for i in range(self.decoder_layers)]  # each (1, B, Hd)
        else:
            state = [h[i:i + 1] for i in range(self.decoder_layers)]
        return Memory(enc.outputs, self.attention.keys(enc.outputs), mask, state)

    # ------------------------------------------------------------------ decoder side

    def _run_decoder(self, x: Tensor, state: list, weights: list | None = None) -> tuple[Tensor, list]:
        """Every decoder layer over x (N, L, E) from `state`; `weights` are pre-dropped recurrent
        matrices (scheduled sampling keeps one DropConnect mask for the whole sequence)."""
        new_state = []
        for layer, rnn in enumerate(self.decoder):
            if layer > 0:
                x = self.dropout(x)
            if weights is not None and weights[layer] is not None:
                x, s = functional_call(rnn.module, {"weight_hh_l0": weights[layer]}, (x, state[layer]))
            else:
                x, s = rnn(x, state[layer])
            new_state.append(s)
        return x, new_state  # (N, L, Hd)

    def _logits(self, h: Tensor, memory: Memory) -> Tensor:
        """Decoder outputs (N, L, Hd) -> vocabulary logits (N, L, V) through attention."""
        context, _ = self.attention(h, memory.keys, memory.outputs, memory.mask)  # (N, L, De)
        combined = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))  # (N, L, Hd)
        return self.output(self.dropout(combined))

    def forward(self, source: Tensor, lengths: Tensor, mask: Tensor, target_in: Tensor,
                teacher_forcing: float = 1.0) -> Tensor:
        """Training/scoring pass.

        Args:
            source, lengths, mask: the padded source (see `encode`).
            target_in: (B, L) shifted target ids (BOS first; pads after the end are harmless:
                the decoder runs forward only, so they never reach a real position).
            teacher_forcing: probability of feeding the gold previous token; 1.0 runs the fused
                path, below 1 steps through time feeding back argmax predictions.

        Returns:
            (B, L, V) logits for the next token at every position.
        """
        return self.teacher_forced(self.encode(source, lengths, mask), target_in, teacher_forcing)

    def teacher_forced(self, memory: Memory, target_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """`forward` after the encoder: (B, L) shifted target ids -> (B, L, V) logits."""
        if teacher_forcing >= 1.0:
            x = self.dropout(self.target_embedding(target_in))  # (B, L, E)
            h, _ = self._run_decoder(x, memory.state)  # (B, L, Hd): one fused call per layer
            return self._logits(h, memory)
        return self._scheduled_sampling(memory, target_in, teacher_forcing)

    def _scheduled_sampling(self, memory: Memory, target_in: Tensor, ratio: float) -> Tensor:
        weights = None
        if self.training:  # one DropConnect mask per layer for the whole sequence, as the fused path
            weights = [F.dropout(r.module.weight_hh_l0, p=r.p, training=True) if r.p > 0 else None
                       for r in self.decoder]
        state, logits = memory.state, []
        token = target_in[:, 0]
        for t in range(target_in.shape[1]):
            x = self.dropout(self.target_embedding(token)).unsqueeze(1)  # (B, 1, E)
            h, state = self._run_decoder(x, state, weights)
            step = self._logits(h, memory)  # (B, 1, V)
            logits.append(step)
            if t + 1 < target_in.shape[1]:
                gold = target_in[:, t + 1]
                own = step.squeeze(1).argmax(-1)
                use_gold = torch.rand(gold.shape, device=gold.device) < ratio
                token = torch.where(use_gold, gold, own)
        return torch.cat(logits, dim=1)  # (B, L, V)

    @torch.no_grad()
    def attention_weights(self, source: Tensor, lengths: Tensor, mask: Tensor, target_in: Tensor) -> Tensor:
        """(B, L) target ids (BOS first) read under teacher forcing -> (B, L, S) attention weights: row t is where
        the decoder looks while it predicts the token after target_in[:, t]. Without input feeding the decoder's
        state depends on the tokens fed only, so for a decoded sequence (BOS + its tokens) these are the weights
        its decoding used. Rows sum to 1; exactly 0 on source pads."""
        memory = self.encode(source, lengths, mask)
        h, _ = self._run_decoder(self.dropout(self.target_embedding(target_in)), memory.state)  # (B, L, Hd)
        return self.attention(h, memory.keys, memory.outputs, memory.mask)[1]

    def step(self, token: Tensor, state: list, memory: Memory) -> tuple[Tensor, list]:
        """One decoding step: token (N,) -> log-probabilities (N, V) and the new state."""
        x = self.target_embedding(token).unsqueeze(1)  # (N, 1, E)
        h, state = self._run_decoder(x, state)
        return torch.log_softmax(self._logits(h, memory).squeeze(1).float(), dim=-1), state

    def decode_limit(self, max_length: int | None) -> int:
        limit = max(10, 2 * self.max_target_length + 1)  # +1: room for EOS
        return limit if max_length is None else min(limit, max_length)


def teacher_forcing_ratio(step: int | None, start: float, end: float, total_steps: int) -> float:
    """Scheduled-sampling ratio at optimizer `step`: linear from `start` to `end` over `total_steps`,
    then `end`. None (evaluation) -> 1.0: losses are always measured under teacher forcing."""
    if step is None:
        return 1.0
    if total_steps <= 0 or step >= total_steps:
        return float(end)
    return float(start + (end - start) * step / total_steps)


# ---------------------------------------------------------------------- decoders


@dataclass
class Hypothesis:
    """A decoded target: token ids (no BOS/EOS/pad) and its total log-probability under the model
    (EOS included when it was generated); `greedy` holds the greedy ids when computed alongside."""

    ids: tuple[int, ...]
    score: float
    greedy: tuple[int, ...] | None = None


def _forbid(logp: Tensor, model: Seq2Seq) -> Tensor:
    """Pad and BOS are never generated."""
    logp = logp.clone()
    logp[:, PAD_ID] = float("-inf")
    logp[:, model.bos_id] = float("-inf")
    return logp


def _strip(ids: list[int], eos: int) -> tuple[int, ...]:
    out = []
    for i in ids:
        if i in (eos, PAD_ID):
            break
        out.append(i)
    return tuple(out)


def _decode_one_token_at_a_time(model: Seq2Seq, memory: Memory, choose, max_length: int | None) -> list[Hypothesis]:
    """The step loop greedy decoding and sampling share: `choose(logp) -> (N,) token ids` picks the next
    token of every row; scores are the model's own log-probabilities of the chosen tokens; a row stops
    at EOS (pad afterwards), the loop when every row has stopped or at the length limit."""
    n = memory.mask.shape[0]
    device = memory.mask.device
    token = torch.full((n,), model.bos_id, dtype=torch.long, device=device)
    state = memory.state
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    score = torch.zeros(n, device=device)
    out = []
    for _ in range(model.decode_limit(max_length)):
        logp, state = model.step(token, state, memory)
        logp = _forbid(logp, model)  # (N, V)
        token = choose(logp)
        score += torch.where(finished, 0.0, logp.gather(1, token[:, None]).squeeze(1))
        token = token.masked_fill(finished, PAD_ID)
        out.append(token)
        finished |= token == model.eos_id
        if bool(finished.all()):
            break
    ids = torch.stack(out, 1).tolist()  # (N, L)
    return [Hypothesis(_strip(row, model.eos_id), float(s)) for row, s in zip(ids, score.tolist(), strict=True)]


@torch.no_grad()
def greedy_decode(model: Seq2Seq, memory: Memory, max_length: int | None = None) -> list[Hypothesis]:
    """Argmax at every step, batched; stops when every row has produced EOS or at the limit."""
    return _decode_one_token_at_a_time(model, memory, lambda logp: logp.argmax(-1), max_length)


@torch.no_grad()
def beam_search(model: Seq2Seq, memory: Memory, beam: int, *, length_penalty: float = 1.0,
                max_length: int | None = None) -> list[Hypothesis]:
    """Batched beam search.

    All B*K hypotheses advance together. A hypothesis that produced EOS stays in its beam with
    its score frozen (its only continuation is pad at cost 0). Candidates are ranked by the
    length-normalised score ``log p / len**length_penalty`` (len = generated tokens, EOS
    included); the search stops early once every beam of every row has ended with EOS, or at
    the length limit (unfinished hypotheses are then returned as they are). With a beam as wide
    as the number of candidates nothing is pruned and the result is the exhaustive optimum.

    Returns:
        per source row, the best hypothesis by normalised score; `score` is its log-probability.
    """
    b = memory.mask.shape[0]
    k = beam
    device = memory.mask.device
    mem = memory.repeat(k)
    state = mem.state
    token = torch.full((b * k,), model.bos_id, dtype=torch.long, device=device)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per row at the start
    lengths = torch.zeros(b, k, device=device)
    finished = torch.zeros(b, k, dtype=torch.bool, device=device)
    history = torch.zeros(b, k, 0, dtype=torch.long, device=device)
    v = model.target_vocab
    frozen = torch.full((v,), float("-inf"), device=device)
    frozen[PAD_ID] = 0.0  # a finished hypothesis continues with pad at no cost
    offsets = (torch.arange(b, device=device) * k).unsqueeze(1)  # (B, 1)
    for t in range(model.decode_limit(max_length)):
        logp, state = model.step(token, state, mem)
        logp = _forbid(logp, model).view(b, k, v)  # (B, K, V)
        logp = torch.where(finished.unsqueeze(-1), frozen, logp)
        cand = scores.unsqueeze(-1) + logp  # (B, K, V)
        new_len = (lengths + (~finished).float()).unsqueeze(-1).expand(-1, -1, v)  # (B, K, V)
        ranked = cand / new_len.clamp(min=1.0) ** length_penalty
        _, idx = ranked.view(b, k * v).topk(k, dim=1)  # (B, K)
        origin = idx // v
        tok = idx % v
        scores = cand.view(b, k * v).gather(1, idx)
        lengths = new_len.reshape(b, k * v).gather(1, idx)
        finished = finished.gather(1, origin) | (tok == model.eos_id)
        history = torch.cat([history.gather(1, origin.unsqueeze(-1).expand(-1, -1, t)), tok.unsqueeze(-1)], -1)
        state = reorder_state(state, (origin + offsets).view(-1))
        token = tok.view(-1)
        if bool(finished.all()):
            break
    final = scores / lengths.clamp(min=1.0) ** length_penalty  # (B, K)
    best = final.argmax(1)
    rows = history[torch.arange(b, device=device), best].tolist()
    best_scores = scores.gather(1, best[:, None]).squeeze(1).tolist()
    return [Hypothesis(_strip(r, model.eos_id), float(s)) for r, s in zip(rows, best_scores, strict=True)]


@torch.no_grad()
def sample_decode(model: Seq2Seq, memory: Memory, *, temperature: float = 1.0, top_k: int = 0,
                  generator: torch.Generator | None = None, max_length: int | None = None) -> list[Hypothesis]:
    """Ancestral sampling from softmax(logits / temperature), optionally among the top_k tokens only.

    `score` is the sample's log-probability under the model itself (temperature 1, no top-k), so
    samples and beam outputs compare on one scale. Reproducible for a given `generator` state.
    """

    def choose(logp: torch.Tensor) -> torch.Tensor:
        scaled = logp / temperature
        if 0 < top_k < scaled.shape[-1]:
            kth = scaled.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logp.device)

    return _decode_one_token_at_a_time(model, memory, choose, max_length)


@torch.no_grad()
def sequence_log_prob(model: Seq2Seq, memory: Memory, target: list[int]) -> float:
    """Log-probability of one target (ids, EOS included if it ends the hypothesis) for row 0 of `memory`,
    computed step by step (used to check the decoders against exhaustive search)."""
    token = torch.tensor([model.bos_id])
    state, total = memory.state, 0.0
    for t in target:
        logp, state = model.step(token, state, memory)
        logp = _forbid(logp, model)
        total += float(logp[0, t])
        if math.isinf(total):
            return total
        token = torch.tensor([t])
    return total


__all__ = ["ATTENTIONS", "Attention", "Hypothesis", "Memory", "Seq2Seq", "beam_search", "greedy_decode",
           "reorder_state", "sample_decode", "sequence_log_prob", "teacher_forcing_ratio"]
