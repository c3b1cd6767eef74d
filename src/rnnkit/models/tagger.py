"""Sequence labeler: word embedding (+ optional character features) -> RNNEncoder -> per-token head
(-> optional linear-chain CRF), by composition.

No maintained CRF package fits (pytorch-crf 0.7.2 and TorchCRF 1.1.0 are unmaintained since
2019/2020 and add nothing that needs more than the ~80 lines below), so `CRF` is written here and
tested against brute-force enumeration of every tag sequence on tiny inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.encoder import RNNEncoder

IGNORE_INDEX = -100  # target value at pad positions
UNK_ID = 1  # rnnkit.data.vocab.Vocab.UNK


class CRF(nn.Module):
    """Linear-chain conditional random field over K tags.

    Score of a tag path y for emissions e (one sequence of length L):
    ``start[y_0] + sum_t e[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{L-1}]``.
    Masks must be prefixes (True for t < length, length >= 1), as `collate` makes them.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # [from, to]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log sum over all paths of exp(score), per sequence: (B, T, K), (B, T) -> (B,)."""
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # (B, K, 1) + (K, K) + (B, 1, K) -> logsumexp over the previous tag -> (B, K)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)  # finished sequences keep their alpha
        return torch.logsumexp(alpha + self.end, dim=1)

    def path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Score of the given tag paths: (B, T, K), (B, T) (any value at pads), (B, T) -> (B,)."""
        tags = tags.masked_fill(~mask, 0)  # pads may hold IGNORE_INDEX
        m = mask.to(emissions.dtype)  # (B, T)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        score = self.start[tags[:, 0]] + (emit * m).sum(1)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + (trans * m[:, 1:]).sum(1)
        last = mask.sum(1) - 1  # (B,)
        return score + self.end[tags.gather(1, last.unsqueeze(1)).squeeze(1)]

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Negative log-likelihood per sequence (B,)."""
        return self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)

    def viterbi(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Best tag path per sequence, (B, T) int64; values at pads repeat nothing meaningful (0)."""
        batch, steps, k = emissions.shape
        score = self.start + emissions[:, 0]  # (B, K)
        identity = torch.arange(k, device=emissions.device).expand(batch, k)  # (B, K)
        back = []
        for t in range(1, steps):
            cand = score.unsqueeze(2) + self.transitions  # (B, K_prev, K)
            best, arg = cand.max(dim=1)  # (B, K)
            live = mask[:, t].unsqueeze(1)  # (B, 1)
            score = torch.where(live, best + emissions[:, t], score)
            back.append(torch.where(live, arg, identity))  # past the end: keep the tag, so backtracking passes
        tag = (score + self.end).argmax(dim=1)  # (B,)
        path = [tag]
        for arg in reversed(back):
            tag = arg.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        out = torch.stack(path[::-1], dim=1)  # (B, T)
        return out.masked_fill(~mask, 0)


class CharWordEncoder(nn.Module):
    """One vector per word from its characters: a char BiLSTM (final states) or a char CNN (max-pooled).

    Only real words are encoded (pads are skipped), and character pads never reach a real
    output: the BiLSTM is `RNNEncoder` (exact masking) and the CNN max-pools over real characters.
    """

    def __init__(self, num_chars: int, char_dim: int, kind: str = "lstm") -> None:
        super().__init__()
        if kind not in ("lstm", "cnn"):
            raise ValueError(f"char encoder must be 'lstm' or 'cnn', got {kind!r}")
        self.kind = kind
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.output_size = 2 * char_dim
        if kind == "lstm":
            self.rnn = RNNEncoder(char_dim, char_dim, num_layers=1, bidirectional=True)
        else:
            self.conv = nn.Conv1d(char_dim, self.output_size, kernel_size=3, padding=1)

    def forward(self, chars: Tensor, char_lengths: Tensor, mask: Tensor) -> Tensor:
        """(B, T, C) char ids, (B, T) char counts (CPU), (B, T) word mask -> (B, T, 2*char_dim), 0 at pads."""
        batch, steps, width = chars.shape
        flat = chars[mask]  # (N, C) real words only
        lens = char_lengths[mask.cpu()].clamp(1, width)  # (N,) on CPU
        char_mask = torch.arange(width).unsqueeze(0) < lens.unsqueeze(1)  # (N, C)
        char_mask = char_mask.to(chars.device)
        x = self.embedding(flat.masked_fill(~char_mask, 0))  # (N, C, E)
        if self.kind == "lstm":
            vec = self.rnn(x, lens, char_mask).final  # (N, 2E)
        else:
            h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (N, C, 2E)
            vec = h.masked_fill(~char_mask.unsqueeze(2), float("-inf")).max(dim=1).values  # (N, 2E)
        out = vec.new_zeros(batch, steps, self.output_size)
        out[mask] = vec
        return out  # (B, T, 2E)


class TokenTagger(nn.Module):
    """Tag every token of a padded batch.

    ``word ids -> embedding (+ char features) -> RNNEncoder -> dropout -> Linear -> emissions (B, T, K)``;
    with ``crf=True`` a `CRF` scores tag paths and decodes with Viterbi, otherwise each token takes the
    arg-max tag and the loss is cross-entropy over real tokens.

    Args:
        vocab_size: word ids including pad 0 and unk 1.
        num_tags: K >= 1.
        num_chars: character ids including pad 0 and unk 1; None disables char features.
        char_dim, char_encoder: see `CharWordEncoder`.
        word_dropout: in training, each real word id becomes <unk> with this probability, so the
            <unk> vector is trained and the model leans on characters/context for rare words.
        crf: add the CRF output layer.
        embedding_dim, hidden_size, num_layers, cell, bidirectional, dropout, input_dropout,
            recurrent_dropout, layer_norm, residual, packing: as for `RNNEncoder`.
    """

    def __init__(self, *, vocab_size: int, num_tags: int, num_chars: int | None = None, char_dim: int = 32,
                 char_encoder: str = "lstm", word_dropout: float = 0.0, crf: bool = False,
                 embedding_dim: int = 128, hidden_size: int = 128, num_layers: int = 2, cell: str = "lstm",
                 bidirectional: bool = True, dropout: float = 0.3, input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.2, layer_norm: bool = False, residual: bool | None = None,
                 packing: str = "auto") -> None:
        super().__init__()
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout!r}")
        self.num_tags = num_tags
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        nn.init.xavier_uniform_(self.embedding.weight)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.chars = CharWordEncoder(num_chars, char_dim, char_encoder) if num_chars else None
        width = embedding_dim + (self.chars.output_size if self.chars is not None else 0)
        self.encoder = RNNEncoder(width, hidden_size, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
                                  dropout=dropout, input_dropout=input_dropout, recurrent_dropout=recurrent_dropout,
                                  layer_norm=layer_norm, residual=num_layers > 2 if residual is None else residual,
                                  packing=packing)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(self.encoder.output_size, num_tags)
        self.crf = CRF(num_tags) if crf else None

    def forward(self, inputs: Tensor, lengths: Tensor, mask: Tensor, chars: Tensor | None = None,
                char_lengths: Tensor | None = None) -> Tensor:
        """Emission scores (B, T, K) for (B, T) word ids, (B,) CPU lengths, (B, T) mask; pads give any value."""
        ids = inputs.masked_fill(~mask, 0)  # pads may hold any id
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < self.word_dropout) & mask
            ids = ids.masked_fill(drop, UNK_ID)
        x = self.embedding(ids)  # (B, T, E)
        if self.chars is not None:
            if chars is None or char_lengths is None:
                raise ValueError("this tagger uses character features: pass chars and char_lengths")
            x = torch.cat([x, self.chars(chars, char_lengths, mask)], dim=-1)  # (B, T, E + 2C)
        h = self.encoder(x, lengths, mask).outputs  # (B, T, D*H)
        return self.out(self.dropout(h))  # (B, T, K)

    def loss(self, emissions: Tensor, targets: Tensor, mask: Tensor) -> tuple[Tensor, int]:
        """(mean loss per real token, real tokens). CRF: summed sentence NLL / tokens; else masked CE."""
        count = int(mask.sum())
        if self.crf is not None:
            return self.crf.nll(emissions.float(), targets, mask).sum() / max(count, 1), count
        return nn.functional.cross_entropy(emissions[mask].float(), targets[mask]), count  # (N, K), (N,)

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Predicted tag ids (B, T); 0 at pads."""
        if self.crf is not None:
            return self.crf.viterbi(emissions.float(), mask)
        return emissions.argmax(-1).masked_fill(~mask, 0)


__all__ = ["CRF", "IGNORE_INDEX", "CharWordEncoder", "TokenTagger"]
