"""Pooling over time and classification heads on top of an ``EncoderOutput``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.encoder import EncoderOutput

POOLINGS = ("last", "attention", "mean")


def masked_mean(outputs: Tensor, mask: Tensor) -> Tensor:
    """Average of ``outputs`` over the real (mask=True) steps of every sequence.

    Args:
        outputs: (B, T, F) float tensor; values at pad positions are ignored, even NaN.
        mask: (B, T) bool, True at real steps.

    Returns:
        (B, F) tensor. A row without any real step gives zeros rather than NaN.

    Raises:
        ValueError: if the shapes do not match.
    """
    if outputs.dim() != 3 or mask.shape != outputs.shape[:2]:
        raise ValueError(
            f"masked_mean expects outputs (B, T, F) and mask (B, T), got {tuple(outputs.shape)} and {tuple(mask.shape)}"
        )
    summed = outputs.masked_fill(~mask.unsqueeze(-1), 0.0).sum(dim=1)  # (B, F)
    counts = mask.sum(dim=1, keepdim=True).clamp(min=1).to(outputs.dtype)  # (B, 1)
    return summed / counts


class AttentionPooling(nn.Module):
    """Additive self-attention pooling: ``score_t = v^T tanh(W h_t + b)``, softmax over real steps.

    Pad positions get a score of -inf before the softmax, so their weight is exactly 0.

    Args:
        input_size: F, features per step.
        attention_size: width of the tanh layer; defaults to ``input_size``.

    Raises:
        ValueError: if a size is not a positive integer.
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = input_size if attention_size is None else attention_size
        for name, value in (("input_size", input_size), ("attention_size", attention_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.proj = nn.Linear(input_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)  # v; a bias would cancel in softmax
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.xavier_uniform_(self.score.weight)

    def forward(self, outputs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool a padded batch.

        Args:
            outputs: (B, T, F) encoder outputs.
            mask: (B, T) bool, True at real steps; every row needs at least one True (a row
                of pads only would give NaN weights).

        Returns:
            ``(pooled, weights)``: pooled (B, F) and weights (B, T), each row summing to 1
            with exactly 0 at pads.
        """
        scores = self.score(torch.tanh(self.proj(outputs))).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, T)
        # Zero the pads in `outputs` too, so garbage there (NaN * 0 = NaN) cannot reach the sum.
        values = outputs.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, F)
        pooled = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, 1, T) @ (B, T, F) -> (B, F)
        return pooled, weights


class ClassificationHead(nn.Module):
    """Pool an ``EncoderOutput`` into one vector per sequence and map it to class logits.

    Args:
        input_size: F, the encoder's ``output_size``.
        num_classes: K, number of logits.
        pooling: ``"last"`` (``EncoderOutput.final``), ``"attention"`` (``AttentionPooling``)
            or ``"mean"`` (``masked_mean`` over real steps).
        dropout: dropout on the pooled vector before the output layer, in [0, 1).
        extra_size: width of extra per-sequence features concatenated after the pooled vector (the conv
            front-end's global average pooling); 0 for none.

    Raises:
        ValueError: on an unknown pooling, a non-positive size, or dropout outside [0, 1).
    """

    def __init__(self, input_size: int, num_classes: int, *, pooling: str = "last", dropout: float = 0.0,
                 extra_size: int = 0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        for name, value in (("input_size", input_size), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.pooling = pooling
        self.attention = AttentionPooling(input_size) if pooling == "attention" else None
        if isinstance(extra_size, bool) or not isinstance(extra_size, int) or extra_size < 0:
            raise ValueError(f"extra_size must be an integer >= 0, got {extra_size!r}")
        self.extra_size = extra_size
        self.dropout = nn.Dropout(float(dropout))
        self.out = nn.Linear(input_size + extra_size, num_classes)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def pool(self, enc: EncoderOutput, mask: Tensor) -> Tensor:
        """The (B, F) vector that the output layer sees, before dropout."""
        if self.pooling == "last":
            return enc.final
        if self.pooling == "mean":
            return masked_mean(enc.outputs, mask)
        pooled, _ = self.attention(enc.outputs, mask)
        return pooled

    def features(self, enc: EncoderOutput, mask: Tensor, extra: Tensor | None = None) -> Tensor:
        """The (B, input_size + extra_size) vector the output layer reads: the pooled encoder state, and the
        extra features after it.

        Args:
            enc: encoder output with ``outputs`` (B, T, F) and ``final`` (B, F).
            mask: (B, T) bool, True at real steps.
            extra: (B, extra_size) features concatenated to the pooled vector; needed when
                ``extra_size > 0``.
        """
        pooled = self.pool(enc, mask)
        if self.extra_size:
            if extra is None or extra.shape != (pooled.shape[0], self.extra_size):
                raise ValueError(f"this head concatenates {self.extra_size} extra features per sequence, got "
                                 f"{None if extra is None else tuple(extra.shape)}")
            pooled = torch.cat([pooled, extra], dim=-1)
        return pooled

    def logits(self, features: Tensor) -> Tensor:
        """(M, input_size + extra_size) vectors -> (M, K) logits: dropout, then the output layer."""
        return self.out(self.dropout(features))

    def forward(self, enc: EncoderOutput, mask: Tensor, extra: Tensor | None = None) -> Tensor:
        """Compute class logits: ``logits(features(enc, mask, extra))``.

        Args:
            enc: encoder output with ``outputs`` (B, T, F) and ``final`` (B, F).
            mask: (B, T) bool, True at real steps.
            extra: (B, extra_size) features concatenated to the pooled vector; needed when
                ``extra_size > 0``.

        Returns:
            (B, K) unnormalised logits.
        """
        return self.logits(self.features(enc, mask, extra))


__all__ = ["POOLINGS", "AttentionPooling", "ClassificationHead", "masked_mean"]
