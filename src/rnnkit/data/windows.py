"""From validated series to training examples: chronological splits, transforms, scaling, windows.

Data flow (each step one function a test can call alone; the series come from
`rnnkit.data.timeseries.read_series`):

    split_points(series)     -> where validation and test start in each series (chronological)
    check_transform(series)  -> the values a variance-stabilising transform (sqrt, log) cannot take
    fit_scalers(series)      -> one z-score per series (of the transformed targets), training span only
    make_windows(series)     -> Examples: inputs (L, C) of history, target (H, K) of the future

Contract: nothing is shuffled across time, and no statistic is fitted on steps after a series'
training span. `denormalize` and `invert_transform` take predictions back to original units;
`mase_scale` and `naive_forecasts` give the baselines that scoring compares against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.collate import Example
from rnnkit.data.standardize import Standardizer
from rnnkit.data.timeseries import Series, SeriesTable
from rnnkit.errors import ConfigError, DataError, Problem


@dataclass(frozen=True)
class Spans:
    """Chronological boundaries in one series (indices): train targets [0, val_start),
    validation targets [val_start, test_start), test targets [test_start, end). Steps at and
    after `end` are not used (a `test_end` before the file's end)."""

    val_start: int
    test_start: int
    end: int


def split_points(table: SeriesTable, *, input_length: int, horizon: int, test_start: str | None = None,
                 test_end: str | None = None, test_size: int | None = None,
                 val_size: int | None = None) -> list[Spans]:
    """Where validation and test begin in every series; never shuffled across time.

    The test span is the last `test_size` steps (default: 10% of the series, at least one
    horizon), or everything from the time `test_start` on; validation is the end of the
    training span (`val_size` steps, default 10% of what precedes the test span, at least one
    horizon). A series must leave room for one training window (input_length + horizon steps)
    before validation, and one horizon each in validation and test.

    Raises:
        ConfigError: test_start and test_size both given, or a time value that cannot be read.
        DataError: a series too short for these spans (each named, with its length).
    """
    if test_start is not None and test_size is not None:
        raise ConfigError("give forecast.test_start (a time) or forecast.test_size (steps), not both.")
    axis = table.axis
    start_pos = end_pos = None
    for key, value in (("test_start", test_start), ("test_end", test_end)):
        if value is None:
            continue
        pos = axis.parse(value)
        if pos is None:
            raise ConfigError(f"forecast.{key}={value!r} is not a time of this data ({axis.describe()}); "
                              f"e.g. {axis.format(table.series[0].times[-1])}.")
        start_pos, end_pos = (pos, end_pos) if key == "test_start" else (start_pos, pos)
    out, problems = [], []
    for s in table.series:
        end = len(s) if end_pos is None else int(np.searchsorted(s.times, end_pos, side="right"))
        if start_pos is not None:
            t0 = int(np.searchsorted(s.times, start_pos, side="left"))
        else:
            t0 = end - (test_size if test_size is not None else max(horizon, round(0.1 * end)))
        v = val_size if val_size is not None else max(horizon, round(0.1 * t0))
        spans = Spans(t0 - v, t0, end)
        need = input_length + horizon
        name = f"series {s.id!r}" if s.id else "the series"
        why = []
        if spans.val_start < need:
            why.append(f"{max(spans.val_start, 0)} training steps, fewer than input_length + horizon = {need}")
        if spans.test_start - spans.val_start < horizon:
            why.append(f"{spans.test_start - spans.val_start} validation steps, fewer than the horizon {horizon}")
        if spans.end - spans.test_start < horizon:
            why.append(f"{spans.end - spans.test_start} test steps, fewer than the horizon {horizon}")
        if why:
            problems.append(Problem(s.file, int(s.lines[0]), table.time_column, axis.format(s.times[0]),
                                    f"{name} ({len(s)} steps) is too short for the split: " + "; ".join(why),
                                    "lower forecast.input_length / horizon / val_size / test_size, move "
                                    "forecast.test_start, or leave this series out", s.id or None))
        out.append(spans)
    if problems:
        raise DataError(problems, header="some series cannot be split chronologically")
    return out


TRANSFORMS = ("none", "sqrt", "log")


def transform_targets(values: np.ndarray, transform: str) -> np.ndarray:
    """The targets on the scale the network sees before z-scoring: y, sqrt(y) or log(y)."""
    if transform == "sqrt":
        return np.sqrt(values)
    if transform == "log":
        return np.log(values)
    return values


def invert_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """Back to original units: z, max(z, 0)^2 or exp(z) (a square root below 0 has no preimage)."""
    if transform == "sqrt":
        return np.square(np.maximum(values, 0.0))
    if transform == "log":
        return np.exp(values)
    return values


def check_transform(table: SeriesTable, transform: str) -> None:
    """Every target value the transform cannot take (sqrt: < 0; log: <= 0) as a Problem, before training.

    Raises:
        ConfigError: an unknown transform.
        DataError: the offending values, each with file:line, column and value.
    """
    if transform not in TRANSFORMS:
        raise ConfigError(f"forecast.transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}.")
    if transform == "none":
        return
    rule = "sqrt needs values >= 0" if transform == "sqrt" else "log needs values > 0"
    problems = []
    for s in table.series:
        bad = s.values < 0 if transform == "sqrt" else s.values <= 0  # (N, K)
        for i, k in zip(*np.nonzero(bad), strict=True):
            problems.append(Problem(s.file, int(s.lines[i]), table.target_columns[k], float(s.values[i, k]),
                                    f"forecast.transform={transform}: {rule}",
                                    "use forecast.transform=none, or shift the column so it is "
                                    f"{'non-negative' if transform == 'sqrt' else 'positive'}", s.id or None))
    if problems:
        raise DataError(problems, header=f"target values outside the domain of forecast.transform={transform}")


def scaled_inputs(s: Series, transform: str) -> np.ndarray:
    """(N, K + Q): transformed targets then covariates, the columns a series' scaler works on."""
    return np.concatenate([transform_targets(s.values, transform), s.covariates], axis=1)


def fit_scalers(table: SeriesTable, spans: list[Spans], transform: str = "none") -> dict[str, Standardizer]:
    """One z-score per series over its (transformed) targets and covariates, fitted on its training
    span only (steps before validation): statistics from later steps would leak the future into training."""
    return {s.id: Standardizer().fit([scaled_inputs(s, transform)[:sp.val_start]])
            for s, sp in zip(table.series, spans, strict=True)}


def mase_scale(values: np.ndarray, seasonality: int) -> np.ndarray:
    """In-sample MAE of the seasonal naive forecast y[t] = y[t - m] over `values` (N, K): (K,).

    m falls back to 1 when the span is not longer than m. A constant span gives 0 (MASE is then
    undefined and reported as NaN)."""
    m = seasonality if len(values) > seasonality else 1
    if len(values) <= m:
        return np.full(values.shape[1], np.nan)
    return np.abs(values[m:] - values[:-m]).mean(axis=0)


def window_origins(start: int, stop: int, *, input_length: int, horizon: int, stride: int) -> range:
    """Origins o (index of the first target step) whose targets [o, o + H) lie inside [start, stop)
    and whose history [o - L, o) exists. A window whose targets are in validation or test may
    take its history from earlier spans: that history is observed before the forecast is made."""
    return range(max(start, input_length), stop - horizon + 1, stride)


def naive_forecasts(values: np.ndarray, origin: int, horizon: int, seasonality: int) -> tuple[np.ndarray, np.ndarray]:
    """(naive, seasonal naive) forecasts (H, K) made at `origin` from values[:origin] only.

    naive: the last observed value for every step; seasonal naive: the value one season
    earlier, y[o - m + (h mod m)] (the naive one when fewer than m steps were observed)."""
    last = values[origin - 1]
    naive = np.repeat(last[None, :], horizon, axis=0)  # (H, K)
    m = seasonality
    if origin - m < 0:
        return naive, naive.copy()
    idx = origin - m + (np.arange(horizon) % m)
    return naive, values[idx]


def make_windows(s: Series, scaler: Standardizer, origins, *, input_length: int, horizon: int, seasonality: int,
                 scale: np.ndarray, with_targets: bool = True, transform: str = "none") -> list[Example]:
    """Examples for one series: inputs (L, K + Q) float32 z-scored history [o - L, o) of targets
    then covariates; target (H, K) float32 z-scored targets [o, o + H) (None without targets);
    targets are transformed (`transform_targets`) before the z-score.

    `extra` keeps what scoring needs in original units: series id, origin, raw targets, the naive
    and seasonal naive forecasts from the same origin, and the series' MASE scale (K,)."""
    name = Path(s.file).name
    data = scaler.transform(scaled_inputs(s, transform))  # (N, K + Q) float32
    k = s.values.shape[1]
    out = []
    for o in origins:
        inputs = torch.from_numpy(np.ascontiguousarray(data[o - input_length:o]))  # (L, K + Q)
        extra = {"series": s.id, "origin": int(o), "scale": scale}
        target = None
        if with_targets:
            target = torch.from_numpy(np.ascontiguousarray(data[o:o + horizon, :k]))  # (H, K)
            extra["raw_target"] = s.values[o:o + horizon]
            extra["naive"], extra["snaive"] = naive_forecasts(s.values, o, horizon, seasonality)
            line = int(s.lines[o])
        else:
            line = int(s.lines[o - 1])
        out.append(Example(id=f"{name}:{line}", inputs=inputs, target=target, extra=extra))
    return out


def denormalize(pred: np.ndarray, scaler: Standardizer, num_targets: int, transform: str = "none") -> np.ndarray:
    """(..., K) z-scored targets -> original units: the series' training mean and std, then the
    inverse of the transform."""
    return invert_transform(pred * scaler.std[:num_targets] + scaler.mean[:num_targets], transform)
