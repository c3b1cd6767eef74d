"""Forecasting models: input projection + ``RNNEncoder`` + a multi-horizon head, by composition.

Two heads:

* ``DirectHead`` (many-to-one): the encoder's pooled final state -> all H x K outputs at once.
  No error feeds back across the horizon; one linear layer per window.
* ``AutoregressiveHead`` (many-to-many, seq2seq): a one-layer recurrent decoder initialised from
  the encoder state decodes H steps, each step fed the previous step's *prediction* (the last
  observed value for the first step), in training and in inference alike, so the model is trained
  on the inputs it will see at forecast time (no exposure bias). H is small, so the decoder's
  H-step Python loop is cheap; the encoder stays on the fused kernel.

Optionally the network forecasts a *change*: ``residual="last"`` adds the last observed value
(a naive forecast) and ``residual="seasonal"`` the value one season earlier (seasonal naive) to
the head's output, so an untrained network starts from the baseline it has to beat: the head's output layer is
initialised to zero there, so before the first step the forecast is that baseline exactly (the output layer's
gradient is not zero, so the first step moves it and the rest of the network learns from there).

``window_norm=True`` normalises each input window by its own per-channel mean and standard
deviation over the real steps, and maps the forecast back with the target channels' statistics
(reversible instance normalisation without the affine part, Kim et al., ICLR 2022). The network
then models the *shape* of what follows a window, and its forecasts scale with the window's level
and amplitude, also beyond the range seen in training, where a tanh network would saturate.

``ar_window = q > 0`` adds a linear autoregressive path beside the network (the "highway" component of LSTNet,
Lai et al., SIGIR 2018): one linear map from each target's last q observed values to its H forecasts, shared by
the targets, added to the head's output (in window_norm's units when it is on). It starts at zero, so it changes
nothing before training; being linear, it fits weighted averages of past values (e.g. of several seasons) from
few windows, which the recurrent path learns slowly.

``num_series > 0`` adds a series embedding: one learned vector per training series (index 1..N; index 0,
a series the model never saw, is the zero vector and is never trained), added to every real step of the
projected input before the encoder. One global model then tells apart series whose windows look alike
(after the per-series z-score) but whose futures differ by series.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.models.encoder import RNNEncoder
from rnnkit.models.heads import ClassificationHead

HEADS = ("direct", "autoregressive")
RESIDUALS = ("none", "last", "seasonal")


class ForecastOutput(NamedTuple):
    """What ``Forecaster.forward`` returns: the forecast and the loss the model was built for.

    Attributes:
        prediction: (B, H, K) forecasts in the z-scored units of the targets.
        loss: "mse" or "mae" (the task's loss function reads it: its signature has no config).
    """

    prediction: Tensor
    loss: str


SERIES_EMBEDDING_INIT_STD = 0.01  # initial scale of the series vectors (the projected inputs are of order 0.1..1)
WINDOW_NORM_EPS = 1e-2  # added to each window's variance (in the series' z-scored units): a flat window stays finite


def window_statistics(inputs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-window, per-channel mean and standard deviation over the real steps.

    Args:
        inputs: (B, L, C); mask: (B, L) bool, True on real steps.

    Returns:
        loc, scale: (B, 1, C) each; scale = sqrt(var + WINDOW_NORM_EPS).
    """
    w = mask.unsqueeze(-1).to(inputs.dtype)  # (B, L, 1)
    count = w.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    loc = (inputs * w).sum(dim=1, keepdim=True) / count  # (B, 1, C)
    var = (((inputs - loc) * w) ** 2).sum(dim=1, keepdim=True) / count
    return loc, (var + WINDOW_NORM_EPS).sqrt()


def last_steps(mask: Tensor) -> Tensor:
    """(B,) int64 index of each window's last real step (windows are padded at the end)."""
    return mask.sum(dim=1).long() - 1


def baseline_forecast(inputs: Tensor, num_targets: int, horizon: int, residual: str, seasonality: int,
                      mask: Tensor | None = None) -> Tensor:
    """The naive (``"last"``) or seasonal naive (``"seasonal"``) forecast from the input window.

    Args:
        inputs: (B, L, C) windows whose first K channels are the targets; each window's real
            length >= seasonality for ``"seasonal"``.
        mask: (B, L) bool, True on real steps (a short series' window is shorter, padded at the end);
            None: every step is real.

    Returns:
        (B, H, K): y[n - 1] for every step, or y[n - m + (h mod m)] for step h (n: the window's length).
    """
    y = inputs[:, :, :num_targets]  # (B, L, K)
    b, length = y.shape[0], y.shape[1]
    n = (torch.full((b,), length, dtype=torch.long, device=inputs.device) if mask is None
         else last_steps(mask) + 1)  # (B,)
    if residual == "last":
        idx = (n - 1).unsqueeze(1).expand(-1, horizon)  # (B, H)
    else:
        idx = n.unsqueeze(1) - seasonality + torch.arange(horizon, device=inputs.device) % seasonality
    return torch.gather(y, 1, idx.unsqueeze(-1).expand(-1, -1, y.shape[2]))  # (B, H, K)


class DirectHead(nn.Module):
    """Pooled encoder state -> (B, H, K) in one linear map (pooling as ``ClassificationHead``)."""

    def __init__(self, input_size: int, horizon: int, num_targets: int, *, pooling: str, dropout: float):
        super().__init__()
        self.horizon, self.num_targets = horizon, num_targets
        self.proj = ClassificationHead(input_size, horizon * num_targets, pooling=pooling, dropout=dropout)

    def forward(self, enc, mask: Tensor, inputs: Tensor, base: Tensor | None) -> Tensor:
        out = self.proj(enc, mask).view(-1, self.horizon, self.num_targets)  # (B, H*K) -> (B, H, K)
        return out if base is None else out + base


class AutoregressiveHead(nn.Module):
    """Decode H steps with a recurrent cell, feeding each prediction back as the next input.

    The decoder state starts as tanh(W final + b) of the encoder's final state (and the LSTM
    cell state as a second such map); the first input is the last observed target value.
    """

    def __init__(self, input_size: int, hidden_size: int, horizon: int, num_targets: int, *, cell: str,
                 dropout: float):
        super().__init__()
        self.horizon, self.num_targets, self.cell_type = horizon, num_targets, cell
        self.init_h = nn.Linear(input_size, hidden_size)
        self.init_c = nn.Linear(input_size, hidden_size) if cell == "lstm" else None
        self.cell = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(num_targets, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_targets)

    def forward(self, enc, mask: Tensor, inputs: Tensor, base: Tensor | None) -> Tensor:
        h = torch.tanh(self.init_h(enc.final))  # (B, Hd)
        c = torch.tanh(self.init_c(enc.final)) if self.init_c is not None else None
        rows = torch.arange(inputs.shape[0], device=inputs.device)
        prev = inputs[rows, last_steps(mask), :self.num_targets]  # (B, K) last observed targets
        steps = []
        for t in range(self.horizon):
            if c is not None:
                h, c = self.cell(prev, (h, c))
            else:
                h = self.cell(prev, h)
            y = self.out(self.dropout(h))  # (B, K)
            if base is not None:
                y = y + base[:, t]
            steps.append(y)
            prev = y
        return torch.stack(steps, dim=1)  # (B, H, K)


class Forecaster(nn.Module):
    """Forecast H future steps of K targets from a window of L past steps of C channels.

    Args:
        num_features: C, channels per input step (the K targets first, then covariates).
        num_targets: K.
        horizon: H.
        head: "direct" or "autoregressive".
        residual: "none", "last" or "seasonal" (see the module docstring).
        window_norm: normalise each window by its own statistics (see the module docstring).
        seasonality: m for ``residual="seasonal"``; must not exceed the input length.
        loss: "mse" or "mae" (carried in the output for the task's loss function).
        num_series: N > 0 adds a series embedding of N + 1 rows (see the module docstring); 0: none.
        ar_window: q > 0 adds the linear autoregressive path on the last q steps (see the module docstring); 0: none.
        embedding_dim ... packing: the encoder options of the config's model section
            (``pooling`` applies to the direct head).

    Raises:
        ValueError: an unknown head or residual, or invalid sizes.
    """

    def __init__(self, *, num_features: int, num_targets: int, horizon: int, head: str = "direct",
                 residual: str = "none", seasonality: int = 1, loss: str = "mse", embedding_dim: int = 64,
                 hidden_size: int = 64, num_layers: int = 1, cell: str = "lstm", bidirectional: bool = False,
                 dropout: float = 0.0, input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 layer_norm: bool = False, residual_layers: bool | None = None, pooling: str = "last",
                 packing: str = "auto", window_norm: bool = False, num_series: int = 0, ar_window: int = 0):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {list(HEADS)}, got {head!r}")
        if residual not in RESIDUALS:
            raise ValueError(f"residual must be one of {list(RESIDUALS)}, got {residual!r}")
        for name, value in (("num_features", num_features), ("num_targets", num_targets), ("horizon", horizon),
                            ("seasonality", seasonality)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("num_series", num_series), ("ar_window", ar_window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if num_targets > num_features:
            raise ValueError(f"num_targets ({num_targets}) cannot exceed num_features ({num_features})")
        self.num_targets, self.horizon, self.residual, self.seasonality, self.loss = (
            num_targets, horizon, residual, seasonality, loss)
        self.window_norm = window_norm
        self.embedding = nn.Linear(num_features, embedding_dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        nn.init.zeros_(self.embedding.bias)
        self.num_series = num_series
        self.series_embedding: nn.Embedding | None = None
        if num_series > 0:
            self.series_embedding = nn.Embedding(num_series + 1, embedding_dim, padding_idx=0)
            # small next to the projected inputs: training starts close to the model without it
            nn.init.normal_(self.series_embedding.weight, std=SERIES_EMBEDDING_INIT_STD)
            with torch.no_grad():
                self.series_embedding.weight[0].zero_()  # the unseen series: no offset
        self.encoder = RNNEncoder(embedding_dim, hidden_size, num_layers=num_layers, cell=cell,
                                  bidirectional=bidirectional, dropout=dropout, input_dropout=input_dropout,
                                  recurrent_dropout=recurrent_dropout, layer_norm=layer_norm,
                                  residual=num_layers > 2 if residual_layers is None else residual_layers,
                                  packing=packing)
        size = self.encoder.output_size
        if head == "direct":
            self.head: nn.Module = DirectHead(size, horizon, num_targets, pooling=pooling, dropout=dropout)
        else:
            self.head = AutoregressiveHead(size, hidden_size, horizon, num_targets, cell=cell, dropout=dropout)
        if residual != "none":  # the head's output layer starts at zero: the untrained network IS the baseline
            last = self.head.proj.out if isinstance(self.head, DirectHead) else self.head.out
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.ar_window = ar_window
        self.ar: nn.Linear | None = None
        if ar_window > 0:
            self.ar = nn.Linear(ar_window, horizon)
            nn.init.zeros_(self.ar.weight)
            nn.init.zeros_(self.ar.bias)

    def forward(self, inputs: Tensor, lengths: Tensor, mask: Tensor,
                series_index: Tensor | None = None) -> ForecastOutput:
        """Args: inputs (B, L, C) float; lengths (B,) on CPU; mask (B, L) bool; series_index (B,) int64 in
        0..num_series, read only with a series embedding (None there: every window is an unseen series, 0).
        Returns: ``ForecastOutput`` with prediction (B, H, K)."""
        if inputs.dim() != 3 or not inputs.is_floating_point():
            raise ValueError(f"inputs must be a float tensor (B, L, C), got {inputs.dtype} {tuple(inputs.shape)}")
        if self.window_norm:
            loc, scale = window_statistics(inputs, mask)  # (B, 1, C) each
            inputs = (inputs - loc) / scale
        x = self.embedding(inputs.masked_fill(~mask.unsqueeze(-1), 0.0))  # (B, L, E)
        if self.series_embedding is not None and series_index is not None:
            offset = self.series_embedding(series_index.to(x.device, torch.long))  # (B, E)
            x = x + (offset.unsqueeze(1) * mask.unsqueeze(-1)).to(x.dtype)  # real steps only
        enc = self.encoder(x, lengths, mask)
        base = None
        if self.residual != "none":
            base = baseline_forecast(inputs, self.num_targets, self.horizon, self.residual, self.seasonality, mask)
        prediction = self.head(enc, mask, inputs, base)  # (B, H, K)
        if self.ar is not None:
            prediction = prediction + self._autoregressive(inputs, mask)
        if self.window_norm:
            k = self.num_targets
            prediction = prediction * scale[:, :, :k] + loc[:, :, :k]
        return ForecastOutput(prediction, self.loss)

    def _autoregressive(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """(B, H, K): the linear path on each target's last q real steps (steps before a short window's start
        count as 0)."""
        q, k = self.ar_window, self.num_targets
        idx = (last_steps(mask) + 1).unsqueeze(1) - q + torch.arange(q, device=inputs.device)  # (B, q)
        past = torch.gather(inputs[:, :, :k], 1, idx.clamp_min(0).unsqueeze(-1).expand(-1, -1, k))  # (B, q, K)
        past = past * (idx >= 0).unsqueeze(-1).to(past.dtype)
        return self.ar(past.transpose(1, 2)).transpose(1, 2)  # (B, K, q) -> (B, K, H) -> (B, H, K)

    def forward_stream(self, inputs: Tensor, state: dict[str, Tensor] | None = None, base: Tensor | None = None,
                       series_index: Tensor | None = None) -> tuple[ForecastOutput, dict[str, Tensor]]:
        """The forecast at every step of a chunk of B long sequences, continuing from `state` (truncated
        backprop through time): position t's forecast is the direct head on the encoder state after step t,
        the very map ``forward`` applies to a window's last step, so a model trained on chunks forecasts
        windows as it is.

        Args:
            inputs: (B, T, C) float, every row T real steps (the next T steps of each row's sequence).
            state: the encoder state after the previous chunk (``EncoderOutput.state``; detached by the caller
                between chunks); None: zeros, the start of each sequence.
            base: (B, T, H, K) the seasonal-naive forecast from every position (needed with
                ``residual="seasonal"``, which a chunk cannot compute from its own steps); the naive one of
                ``residual="last"`` is each position's own value.
            series_index: (B,) int64, as in ``forward``.

        Returns:
            (ForecastOutput with prediction (B, T, H, K), the encoder state after step T).

        Raises:
            ValueError: an autoregressive head, window_norm, a pooling other than "last", a bidirectional
                encoder (none of them forecasts from one step's state), or residual="seasonal" without `base`.
        """
        head = self.head
        if not isinstance(head, DirectHead) or head.proj.pooling != "last" or self.window_norm \
                or self.encoder.bidirectional or self.ar is not None:
            raise ValueError("forward_stream needs the direct head with pooling 'last', no window_norm, no linear path "
                             "and a unidirectional encoder: it forecasts from the state after every step")
        if inputs.dim() != 3 or not inputs.is_floating_point():
            raise ValueError(f"inputs must be a float tensor (B, T, C), got {inputs.dtype} {tuple(inputs.shape)}")
        b, t = inputs.shape[0], inputs.shape[1]
        x = self.embedding(inputs)  # (B, T, E)
        if self.series_embedding is not None and series_index is not None:
            x = x + self.series_embedding(series_index.to(x.device, torch.long)).unsqueeze(1).to(x.dtype)
        lengths = torch.full((b,), t, dtype=torch.int64)
        mask = torch.ones(b, t, dtype=torch.bool, device=inputs.device)
        enc = self.encoder(x, lengths, mask, state=state, carry=True)
        out = head.proj.logits(enc.outputs).view(b, t, self.horizon, self.num_targets)  # (B, T, H*K) -> (B, T, H, K)
        if self.residual == "last":
            out = out + inputs[:, :, None, :self.num_targets]  # each position's own value, for every step ahead
        elif self.residual == "seasonal":
            if base is None:
                raise ValueError("residual='seasonal' needs base, the seasonal-naive forecast from every position")
            out = out + base.to(out.dtype)
        return ForecastOutput(out, self.loss), enc.state


def build_forecaster(model_options: dict, *, num_features: int, num_targets: int, horizon: int, head: str,
                     residual: str, seasonality: int, loss: str, window_norm: bool = False,
                     num_series: int = 0, ar_window: int = 0) -> Forecaster:
    """A ``Forecaster`` from the config's model section plus the forecast settings.

    The model section's ``residual`` (residual connections between encoder layers) is passed as
    ``residual_layers``; ``forecast.residual`` is the naive/seasonal skip of the head."""
    options = dict(model_options)
    options["residual_layers"] = options.pop("residual", None)
    return Forecaster(num_features=num_features, num_targets=num_targets, horizon=horizon, head=head,
                      residual=residual, seasonality=seasonality, loss=loss, window_norm=window_norm,
                      num_series=num_series, ar_window=ar_window, **options)


__all__ = ["HEADS", "RESIDUALS", "SERIES_EMBEDDING_INIT_STD", "WINDOW_NORM_EPS", "AutoregressiveHead", "DirectHead",
           "ForecastOutput", "Forecaster", "baseline_forecast", "build_forecaster", "last_steps", "window_statistics"]
