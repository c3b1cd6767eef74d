"""`forecast.tbptt: K`: train the forecaster on one long series by truncated backprop through time.

Instead of independent windows of `forecast.input_length` steps, each starting from a zero state, the training
span is laid out as `data.batch_size` contiguous streams (`rnnkit.data.streams`); each optimizer step trains
on the next K steps of every stream, from the encoder state the previous chunk left (carried, detached:
`rnnkit.training.tbptt`). The loss is at every position of the chunk: position t is trained to forecast the H
steps after it (y[t+1 .. t+H], z-scored) with the direct head on the state after step t, the same map the window
model applies to a window's last step. So the model is the family's usual forecaster, and validation, test,
`evaluate`, `predict` and export read it as before: rolling-origin windows of `forecast.input_length` steps,
the state warmed from zeros over each window; metrics stay comparable with window training.

What it needs (a clear ConfigError otherwise, before any data is read where it can): one series, the direct
head with `model.pooling=last`, a unidirectional encoder, `forecast.window_norm=false` (each window's own
statistics have no meaning for a stream) and no series embedding. `forecast.residual=last` adds each position's
own value; `seasonal` the value one season before each target (positions start once a season is observed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.data.streams import StreamPlan, chunk_examples, lay_out
from rnnkit.data.windows import scaled_inputs
from rnnkit.errors import ConfigError

KEY = "forecast.tbptt"


def enabled(cfg: C.Config) -> bool:
    return cfg.forecast.tbptt is not None


def check_config(cfg: C.Config, searched: list[str]) -> None:
    """What truncated BPTT needs of the resolved config (after the fallbacks fill head and window_norm).

    Raises:
        ConfigError: naming the key, its value and the fix.
    """
    f, m = cfg.forecast, cfg.model
    k = f.tbptt
    off = f"or {KEY}=null to train on windows"
    if f.head != "direct":
        raise ConfigError(f"{KEY}={k} trains the direct head at every step of a chunk; forecast.head={f.head!r} "
                          f"decodes from one origin. Set forecast.head=direct, {off}.")
    if f.window_norm or "window_norm" in searched:
        raise ConfigError(f"{KEY}={k} reads the series as one stream; forecast.window_norm scales each window by its "
                          f"own statistics, which a stream does not have. Set forecast.window_norm=false (and leave "
                          f"it out of forecast.auto_keys), {off}.")
    if m.bidirectional:
        raise ConfigError(f"{KEY}={k} carries the state forward in time; model.bidirectional=true reads each window "
                          f"backwards too. Set model.bidirectional=false, {off}.")
    if m.pooling != "last":
        raise ConfigError(f"{KEY}={k} forecasts from the state after every step; model.pooling={m.pooling!r} pools "
                          f"a whole window. Set model.pooling=last, {off}.")
    if f.series_embedding:
        raise ConfigError(f"{KEY}={k} trains on one series; forecast.series_embedding is for many. Set "
                          f"forecast.series_embedding=false, {off}.")


def plan(cfg: C.Config, table, spans, scalers, m: int, forward, loss) -> StreamPlan:
    """The training span of the table's one series as streams in chunks of `forecast.tbptt` steps.

    Args:
        table, spans: the series after `plan_splits` and their spans.
        scalers: per series, fitted on its training span.
        m: the seasonality (the seasonal residual's season).
        forward: (model, batch, state) -> (outputs, state), the family's chunk forward (`forward_chunk`).
        loss: the family's loss (it averages over every value of any shape).

    Raises:
        ConfigError: more than one series, or a training span too short for data.batch_size streams.
    """
    f = cfg.forecast
    if len(table.series) != 1:
        raise ConfigError(f"{KEY}={f.tbptt} trains on one long series; this file has {len(table.series)} series "
                          f"(forecast.series_column={f.series_column!r}). Train one series per run, or set "
                          f"{KEY}=null to train on windows of every series.")
    s, sp = table.series[0], spans[0]
    data = torch.from_numpy(np.ascontiguousarray(scalers[s.id].transform(scaled_inputs(s, f.transform))))  # (N, C)
    k, h = s.values.shape[1], f.horizon
    y = data[:, :k]  # (N, K) z-scored targets
    first = m - 1 if f.residual == "seasonal" else 0  # a seasonal base needs one season observed
    stop = sp.val_start - h  # position t trains on y[t+1 .. t+h], all inside the training span
    streams = cfg.data.batch_size
    if stop - first < streams:
        raise ConfigError(f"{KEY}={f.tbptt}: the training span has {max(stop - first, 0)} positions with "
                          f"{h} target steps after them, fewer than the {streams} streams data.batch_size asks "
                          f"for. Lower data.batch_size, or set {KEY}=null.")
    layout = lay_out(first, stop, streams=streams, chunk_steps=f.tbptt)
    ahead = torch.arange(1, h + 1)  # (H,)
    positions = torch.arange(stop)  # (P,) every position up to stop; those before `first` are never cut out
    targets = y[(positions[:, None] + ahead).clamp(max=len(y) - 1)]  # (P, H, K)
    extra = {}
    if f.residual == "seasonal":  # y[t + 1 - m + (h mod m)]: the seasonal naive forecast made at t + 1
        idx = positions[:, None] + 1 - m + torch.arange(h) % m
        extra["base"] = y[idx.clamp(min=0)]  # (P, H, K); positions < first are never used
    examples = chunk_examples(layout, data[:stop], targets, name=Path(s.file).name, extra=extra)
    info = {"chunk": f.tbptt, "targets": f"the {h} step(s) after every position (the direct head at each step)",
            "state": "carried from chunk to chunk, detached between them; zeros at the start of each pass",
            "evaluation": f"rolling-origin windows of forecast.input_length={f.input_length} steps, the state "
                          "warmed from zeros over each window (as with window training)"}
    return StreamPlan(layout=layout, dataset=SequenceDataset(examples), forward=forward, loss=loss, info=info)


def forward_chunk(model, batch, state):
    """One chunk of every stream from `state`: (ForecastOutput with prediction (B, T, H, K), new state)."""
    return getattr(model, "module", model).forward_stream(batch.inputs, state, base=batch.extra.get("base"))


def announce(cfg: C.Config, streams: StreamPlan) -> None:
    """The start line (stderr): TBPTT is on, with its chunk and streams."""
    if cfg.train.progress == "none":
        return
    lay = streams.layout
    left = f"; {lay.left_out} position(s) left over" if lay.left_out else ""
    print(f"rnnkit: {KEY}={cfg.forecast.tbptt}: truncated backprop through time on {lay.streams} contiguous streams "
          f"(data.batch_size) of {lay.stream_length} steps, chunks of {lay.chunk_steps} steps ({lay.chunks} per "
          f"pass{left}); the state is carried between chunks and detached; every position trains on the next "
          f"{cfg.forecast.horizon} step(s); validation and test: rolling-origin windows as without it",
          file=sys.stderr, flush=True)
