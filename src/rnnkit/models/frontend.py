"""Front-ends that shorten a long numeric sequence before the recurrent layers, with exact masks.

A recurrent layer over a few hundred steps of a univariate series learns little from few cases (the
gradient must travel the whole length, one sample at a time). A front-end turns the (B, T, F) input into
(B, T', E) with T' = ceil(T / r) for a reduction factor r, and the encoder runs on T' steps:

* ``ConvFrontend`` (``model.frontend: conv``): three Conv1d blocks (kernels 7/5/3, widths E/2E/E as in
  the FCN of Karim et al.'s LSTM-FCN), the strides multiplying to r, each block Conv1d -> masked batch
  norm -> ReLU. It also returns the masked mean over time of its last block (the FCN's global average
  pooling), which the classifier concatenates to the pooled recurrent state.
* ``PatchFrontend`` (``model.frontend: patch``): non-overlapping patches of r steps, each flattened
  (r*F values) and projected linearly to E.

Masking is exact: pad positions are set to 0 before every convolution (so a pad reads as the zero
padding a sequence alone would see at its end), the output length of every sequence is computed from its
input length (``ceil(L / stride)`` per block, the kernels being odd with padding (k-1)/2), and the batch
norm's statistics are taken over real steps only. In evaluation mode (running statistics) a sequence's
output is therefore the same alone and batched with longer ones; in training the statistics depend on
the batch's real steps, as any batch norm's do, but never on its pads.

``choose_frontend`` decides what ``model.frontend: auto`` means for a data set (``AUTO_RULE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

FRONTENDS = ("auto", "none", "conv", "patch")
AUTO_MIN_MEDIAN = 100  # auto: a conv front-end when the median training length is above this
TARGET_STEPS = 100  # the reduction brings the median length to at most this many steps
KERNELS = (7, 5, 3)
AUTO_RULE = (f"numeric input whose median training length is above {AUTO_MIN_MEDIAN} steps gets the conv "
             f"front-end, reducing by the smallest power of 2 that brings the median to <= {TARGET_STEPS} "
             "steps; token input, and shorter series, get none")


@dataclass(frozen=True)
class FrontendChoice:
    """What a model's front-end is: ``kind`` ("none" | "conv" | "patch"), the reduction factor r (1 for
    none), the training median length it was chosen from (None: unknown), and why, in words."""

    kind: str
    reduction: int
    median_length: float | None
    reason: str

    def describe(self) -> str:
        """Words for the model line, e.g. "conv front-end /4 (median 251 -> 63 steps; auto: ...)"."""
        if self.kind == "none":
            return f"no front-end ({self.reason})"
        steps = ""
        if self.median_length is not None:
            steps = f"median {self.median_length:g} -> {math.ceil(self.median_length / self.reduction)} steps; "
        return f"{self.kind} front-end /{self.reduction} ({steps}{self.reason})"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reduction": self.reduction, "median_length": self.median_length,
                "reason": self.reason}


def auto_reduction(median_length: float | None) -> int:
    """The smallest power of 2 that brings ``median_length`` to at most ``TARGET_STEPS`` (1 when unknown)."""
    if median_length is None or median_length <= TARGET_STEPS:
        return 1
    return 2 ** math.ceil(math.log2(median_length / TARGET_STEPS))


def choose_frontend(setting: str, reduction: int | None, *, token_input: bool,
                    median_length: float | None) -> FrontendChoice:
    """Resolve ``model.frontend`` / ``model.frontend_reduction`` for a data set.

    Args:
        setting: "auto" | "none" | "conv" | "patch".
        reduction: the reduction factor r >= 1, or None for ``auto_reduction(median_length)`` (at least 2
            when the front-end is set explicitly).
        token_input: the input is token ids (text): never a front-end (auto gives none; conv/patch raise).
        median_length: the median training sequence length (after truncation); None when unknown (a run
            saved before front-ends existed): auto then gives none.

    Raises:
        ValueError: an unknown setting, an invalid reduction, or a front-end asked for token input.
    """
    if setting not in FRONTENDS:
        raise ValueError(f"frontend must be one of {list(FRONTENDS)}, got {setting!r}")
    if reduction is not None and (isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1):
        raise ValueError(f"frontend_reduction must be an integer >= 1 or null, got {reduction!r}")
    if setting == "none":
        return FrontendChoice("none", 1, median_length, "model.frontend none")
    if token_input:
        if setting == "auto":
            return FrontendChoice("none", 1, median_length, "auto: token input")
        raise ValueError(f"model.frontend {setting} works on numeric sequences only; this input is token ids "
                         "(text). Use model.frontend auto or none.")
    if setting == "auto":
        if median_length is None:
            return FrontendChoice("none", 1, None, "auto: training lengths unknown")
        if median_length <= AUTO_MIN_MEDIAN:
            return FrontendChoice("none", 1, median_length,
                                  f"auto: median length {median_length:g} <= {AUTO_MIN_MEDIAN}")
        r = reduction if reduction is not None else auto_reduction(median_length)
        if r == 1:
            return FrontendChoice("none", 1, median_length, "auto: model.frontend_reduction 1")
        return FrontendChoice("conv", r, median_length, f"auto: median length > {AUTO_MIN_MEDIAN}")
    r = reduction if reduction is not None else max(2, auto_reduction(median_length))
    return FrontendChoice(setting, r, median_length, f"model.frontend {setting}")


def split_strides(reduction: int, blocks: int = 3) -> tuple[int, ...]:
    """Strides of ``blocks`` conv blocks whose product is ``reduction``, largest first, as even as possible.

    A power of 2 is split into factors of 2 spread over the blocks (16 -> 4, 2, 2); any other factor goes
    to the first block whole after its powers of 2 are spread (12 -> 6, 2, 1).
    """
    strides = [1] * blocks
    rest = reduction
    i = 0
    while rest % 2 == 0 and rest > 1:
        strides[i % blocks] *= 2
        rest //= 2
        i += 1
    strides[0] *= rest
    return tuple(sorted(strides, reverse=True))


def conv_lengths(lengths: Tensor, stride: int) -> Tensor:
    """Output lengths of a conv block with an odd kernel, padding (k-1)/2 and ``stride``: ceil(L / stride)."""
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")


def lengths_mask(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(B, steps) bool, True at t < lengths[b]."""
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


class MaskedBatchNorm1d(nn.Module):
    """Batch norm over the channels of a (B, T, C) batch whose statistics count real steps only.

    Training: per-channel mean and (biased) variance over the real steps of the batch normalise it, and
    running estimates (unbiased variance, ``momentum``) are updated, as ``nn.BatchNorm1d`` does. Evaluation:
    the running estimates, so each step is normalised alone. Pads come out as 0.
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, C) float, mask (B, T) bool -> (B, T, C), 0 at pads."""
        m = mask.unsqueeze(-1)  # (B, T, 1)
        xf = x.float().masked_fill(~m, 0.0)  # statistics in fp32, also under bf16/fp16 autocast
        if self.training:
            count = mask.sum().clamp(min=1).float()
            mean = xf.sum(dim=(0, 1)) / count  # (C,)
            var = ((xf - mean).masked_fill(~m, 0.0) ** 2).sum(dim=(0, 1)) / count  # (C,), biased
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight.float() + self.bias.float()
        return y.masked_fill(~m, 0.0).to(x.dtype)


class ConvFrontend(nn.Module):
    """Three strided Conv1d -> masked batch norm -> ReLU blocks over a padded (B, T, F) batch.

    Args:
        in_features: F, channels of the input.
        width: E, the output channels (the blocks are E, 2E, E wide).
        reduction: r, the product of the blocks' strides (``split_strides``).

    Attributes:
        output_size: E.
        strides: the three strides.
    """

    def __init__(self, in_features: int, width: int, reduction: int) -> None:
        super().__init__()
        self.strides = split_strides(reduction, len(KERNELS))
        widths = (width, 2 * width, width)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in = in_features
        for k, s, c_out in zip(KERNELS, self.strides, widths, strict=True):
            k = max(k, s + 1 + s % 2)  # odd and wider than the stride, so every input step is read
            conv = nn.Conv1d(c_in, c_out, kernel_size=k, stride=s, padding=(k - 1) // 2, bias=False)
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
            self.convs.append(conv)
            self.norms.append(MaskedBatchNorm1d(c_out))
            c_in = c_out
        self.output_size = width
        self.reduction = reduction

    def output_lengths(self, lengths: Tensor) -> Tensor:
        for s in self.strides:
            lengths = conv_lengths(lengths, s)
        return lengths

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, F), lengths (B,) CPU int64, mask (B, T) -> (h (B, T', E), lengths' (B,), mask' (B, T')).

        ``h`` is 0 at the pads of ``mask'``; T' = ceil(T / r) and lengths' = the per-block ceil(L / s)."""
        h = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        for conv, norm, s in zip(self.convs, self.norms, self.strides, strict=True):
            lengths = conv_lengths(lengths, s)
            h = conv(h.transpose(1, 2)).transpose(1, 2)  # (B, T_i, C_i)
            mask = lengths_mask(lengths, h.shape[1], h.device)
            h = torch.relu(norm(h, mask)).masked_fill(~mask.unsqueeze(-1), 0.0)
        return h, lengths, mask


class PatchFrontend(nn.Module):
    """Non-overlapping patches of ``reduction`` steps, flattened and projected: (B, T, F) -> (B, ceil(T/r), E).

    The last patch of a sequence whose length is not a multiple of r is completed with zeros (its pads, set
    to 0 first), as it would be alone.
    """

    def __init__(self, in_features: int, width: int, reduction: int) -> None:
        super().__init__()
        self.reduction = reduction
        self.proj = nn.Linear(in_features * reduction, width)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.output_size = width

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return conv_lengths(lengths, self.reduction)

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r = self.reduction
        b, t, f = x.shape
        h = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        steps = -(-t // r)
        h = nn.functional.pad(h, (0, 0, 0, steps * r - t)).reshape(b, steps, r * f)  # (B, T', r*F)
        lengths = self.output_lengths(lengths)
        mask = lengths_mask(lengths, steps, h.device)
        return self.proj(h).masked_fill(~mask.unsqueeze(-1), 0.0), lengths, mask


__all__ = ["AUTO_RULE", "FRONTENDS", "ConvFrontend", "FrontendChoice", "MaskedBatchNorm1d", "PatchFrontend",
           "auto_reduction", "choose_frontend", "conv_lengths", "split_strides"]
