"""From validated series to training examples: chronological splits, transforms, scaling, windows.

Data flow (each step one function a test can call alone; the series come from
`rnnkit.data.timeseries.read_series`):

    split_points(series)     -> where validation and test start in each series (chronological)
    plan_splits(series)      -> the same for many series: short ones on shorter windows, or set aside
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
    after `end` are not used (a `test_end` before the file's end). `input_length`: this series'
    window (None: the configured one; shorter for a series whose training span cannot hold it)."""

    val_start: int
    test_start: int
    end: int
    input_length: int | None = None


SHORT_SERIES = ("set_aside", "error")


@dataclass
class SeriesPlan:
    """What `plan_splits` decided: the series kept (file order), their spans, and the short ones.

    Attributes:
        series: the series to train, validate and test on.
        spans: one `Spans` per kept series (`input_length` set on every one).
        set_aside: per series left out: {"series", "file", "line", "length", "why"}.
        shorter: per kept series trained on a shorter window: {"series", "length", "input_length"}.
    """

    series: list[Series]
    spans: list[Spans]
    set_aside: list[dict]
    shorter: list[dict]


def _split_positions(table: SeriesTable, test_start: str | None, test_end: str | None,
                     test_size: int | None) -> tuple[float | None, float | None]:
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
    return start_pos, end_pos


def _series_spans(s: Series, start_pos, end_pos, *, horizon: int, test_size: int | None,
                  val_size: int | None) -> Spans:
    end = len(s) if end_pos is None else int(np.searchsorted(s.times, end_pos, side="right"))
    if start_pos is not None:
        t0 = int(np.searchsorted(s.times, start_pos, side="left"))
    else:
        t0 = end - (test_size if test_size is not None else max(horizon, round(0.1 * end)))
    v = val_size if val_size is not None else max(horizon, round(0.1 * t0))
    return Spans(t0 - v, t0, end)


def test_starts(table: SeriesTable, *, horizon: int, test_start: str | None = None, test_end: str | None = None,
                test_size: int | None = None) -> list[int]:
    """Where each series' test span begins (as `plan_splits` places it): what comes before is the history a choice
    may read."""
    start_pos, end_pos = _split_positions(table, test_start, test_end, test_size)
    return [max(0, _series_spans(s, start_pos, end_pos, horizon=horizon, test_size=test_size, val_size=0).test_start)
            for s in table.series]


def _shortfalls(spans: Spans, need: int, need_text: str, horizon: int) -> list[str]:
    why = []
    if spans.val_start < need:
        why.append(f"{max(spans.val_start, 0)} training steps, fewer than {need_text} = {need}")
    if spans.test_start - spans.val_start < horizon:
        why.append(f"{spans.test_start - spans.val_start} validation steps, fewer than the horizon {horizon}")
    if spans.end - spans.test_start < horizon:
        why.append(f"{spans.end - spans.test_start} test steps, fewer than the horizon {horizon}")
    return why


_SHORT_FIX = ("lower forecast.input_length / horizon / val_size / test_size, move forecast.test_start, or leave "
              "this series out")


def split_points(table: SeriesTable, *, input_length: int, horizon: int, test_start: str | None = None,
                 test_end: str | None = None, test_size: int | None = None,
                 val_size: int | None = None) -> list[Spans]:
    """Where validation and test begin in every series; never shuffled across time.

    The test span is the last `test_size` steps (default: 10% of the series, at least one
    horizon), or everything from the time `test_start` on; validation is the end of the
    training span (`val_size` steps, default 10% of what precedes the test span, at least one
    horizon). A series must leave room for one training window (input_length + horizon steps)
    before validation, and one horizon each in validation and test (`plan_splits` relaxes the
    first: a short series may train on a shorter window, or be set aside).

    Raises:
        ConfigError: test_start and test_size both given, or a time value that cannot be read.
        DataError: a series too short for these spans (each named, with its length).
    """
    start_pos, end_pos = _split_positions(table, test_start, test_end, test_size)
    out, problems = [], []
    for s in table.series:
        spans = _series_spans(s, start_pos, end_pos, horizon=horizon, test_size=test_size, val_size=val_size)
        why = _shortfalls(spans, input_length + horizon, "input_length + horizon", horizon)
        if why:
            problems.append(_short_problem(table, s, why, _SHORT_FIX))
        out.append(spans)
    if problems:
        raise DataError(problems, header="some series cannot be split chronologically")
    return out


def _short_problem(table: SeriesTable, s: Series, why: list[str], fix: str) -> Problem:
    name = f"series {s.id!r}" if s.id else "the series"
    return Problem(s.file, int(s.lines[0]), table.time_column, table.axis.format(s.times[0]),
                   f"{name} ({len(s)} steps) is too short for the split: " + "; ".join(why), fix, s.id or None)


def plan_splits(table: SeriesTable, *, input_length: int, horizon: int, test_start: str | None = None,
                test_end: str | None = None, test_size: int | None = None, val_size: int | None = None,
                min_input_length: int = 1, short_series: str = "set_aside") -> SeriesPlan:
    """`split_points` for many series, some of them short (forecast.short_series).

    A series whose training span cannot hold `input_length + horizon` steps trains on the longest
    window it holds (`Spans.input_length`, at least `min_input_length`): its windows are shorter, the
    batch pads them and the model reads only their real steps. A series that cannot hold even
    `min_input_length + horizon` training steps, or one horizon each of validation and test, is set
    aside (`short_series="set_aside"`, the default: named with its length and what it lacks) or stops
    the run (`"error"`: every such series listed, with the fix). With every series too short, or an
    `input_length` that no series holds in full, the run stops under both policies.

    Raises:
        ConfigError: as `split_points`; an unknown policy.
        DataError: series too short (policy error), or no series left.
    """
    if short_series not in SHORT_SERIES:
        raise ConfigError(f"forecast.short_series must be one of {', '.join(SHORT_SERIES)}, got {short_series!r}.")
    start_pos, end_pos = _split_positions(table, test_start, test_end, test_size)
    floor = max(1, min(min_input_length, input_length))
    kept, spans_out, aside, shorter, problems = [], [], [], [], []
    for s in table.series:
        spans = _series_spans(s, start_pos, end_pos, horizon=horizon, test_size=test_size, val_size=val_size)
        strict = short_series == "error"
        need = (input_length if strict else floor) + horizon
        why = _shortfalls(spans, need, "input_length + horizon" if strict else
                          f"the shortest window ({floor}) + horizon", horizon)
        if why:
            fix = (_SHORT_FIX + "; or set forecast.short_series=set_aside to train on shorter windows and set aside "
                   "the series that cannot hold one" if strict else _SHORT_FIX)
            problems.append(_short_problem(table, s, why, fix))
            aside.append({"series": s.id, "file": s.file, "line": int(s.lines[0]), "length": len(s),
                          "why": f"too short: {'; '.join(why)}"})
            continue
        length = min(input_length, spans.val_start - horizon)
        if length < input_length:
            shorter.append({"series": s.id, "length": len(s), "input_length": length})
        kept.append(s)
        spans_out.append(Spans(spans.val_start, spans.test_start, spans.end, length))
    if kept and not any(sp.input_length == input_length for sp in spans_out):
        # the window fits no series: a setting to change, not a short series to work around
        longest = max(sp.input_length for sp in spans_out)
        strict = [_short_problem(table, s, _shortfalls(sp, input_length + horizon, "input_length + horizon", horizon),
                                 f"lower forecast.input_length to {longest} or less (the longest window a series "
                                 "here holds), or lower forecast.horizon / val_size / test_size")
                  for s, sp in zip(kept, spans_out, strict=True)]
        raise DataError(strict + problems, header=f"forecast.input_length={input_length} is longer than the training "
                                                  "span of every series holds; some series cannot be split "
                                                  "chronologically")
    if problems and (short_series == "error" or not kept):
        header = "some series cannot be split chronologically"
        if not kept and short_series != "error":
            header += " (every series is too short: none is left to train on)"
        raise DataError(problems, header=header)
    return SeriesPlan(kept, spans_out, aside, shorter)


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
                 scale: np.ndarray, with_targets: bool = True, transform: str = "none",
                 series_index: int = 0) -> list[Example]:
    """Examples for one series: inputs (L, K + Q) float32 z-scored history [o - L, o) of targets
    then covariates; target (H, K) float32 z-scored targets [o, o + H) (None without targets);
    targets are transformed (`transform_targets`) before the z-score.

    `extra` keeps what scoring needs in original units: series id, origin, raw targets, the naive
    and seasonal naive forecasts from the same origin, and the series' MASE scale (K,); and
    `series_index`, the series' index for a series embedding (0: a series the model never saw)."""
    name = Path(s.file).name
    data = scaler.transform(scaled_inputs(s, transform))  # (N, K + Q) float32
    k = s.values.shape[1]
    out = []
    for o in origins:
        inputs = torch.from_numpy(np.ascontiguousarray(data[o - input_length:o]))  # (L, K + Q)
        extra = {"series": s.id, "series_index": int(series_index), "origin": int(o), "scale": scale}
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
