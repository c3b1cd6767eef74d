"""Time-series forecasting (`--task forecast`): windows of history -> the next H steps.

Data: `rnnkit.data.timeseries` (readers, chronological splits, an optional variance-stabilising
transform of the targets (`forecast.transform`: sqrt or log), per-series z-score fitted on the
training span only). Model: `rnnkit.models.forecaster` (direct multi-horizon or autoregressive
head; `forecast.window_norm` scales each window by its own statistics). Loss on z-scored targets
(MSE by default, `forecast.loss=mae`); every metric in original units: mse, mae, rmse, mase
(scaled by the in-sample seasonal-naive MAE of each series' training span, m =
`forecast.seasonality`, 1 when unset) and smape (in percent, 0..200). `summary.json`
always carries the naive and seasonal-naive forecasts' metrics on the same test windows under
`metrics.test.baselines`.

Defaults for forecasting (a layer under the user's config file and --set, see `config.resolve`;
listed in `summary.json` data.defaults_applied and printed; `forecast.task_defaults=false` turns
the model part off): a unidirectional encoder (`model.bidirectional=false`: the window is all past, and the
last step matters most), one layer of 64 units, light dropout (these series are short), patience
20, and a linear autoregressive path beside the network (`forecast.linear`, not with `forecast.tbptt`).
Built-in data sets add their own protocol (columns, split, seasonality, window) the same way, so the resolved
config.yaml shows what was used.

`forecast.auto` (default true, `rnnkit.tasks._forecast_auto`): input_length, transform, window_norm,
model.cell and residual, each one neither the user nor the built-in data set's protocol set
(`forecast.auto_keys`, filled by the default layer), are chosen by rolling-origin validation before the test
span; summary.json data.auto holds the choice, the ranking and `beats_seasonal_naive` (a fact the doctor can read).
Many series: `windows.plan_splits` gives a short series a shorter window or sets it aside
(`forecast.short_series`), reported in data.short_series. `forecast.series_embedding` adds one learned vector
per training series to the model's input (`ForecastPrep.series_ids` fixes their order; a window's
`extra["series_index"]` reaches the model through `collate_windows`; an unseen series takes index 0, the zero
vector), reported in data.series_embedding.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset, collate
from rnnkit.data.datasets import BuiltinDataset, get_builtin, register
from rnnkit.data.pipeline import PreparedData
from rnnkit.data.seasonality import calendar_season, season_evidence
from rnnkit.data.standardize import Standardizer
from rnnkit.data.time_axis import TimeAxis
from rnnkit.data.timeseries import Series, SeriesTable, read_series
from rnnkit.data.windows import (
    check_transform,
    denormalize,
    fit_scalers,
    make_windows,
    mase_scale,
    plan_splits,
    scaled_inputs,
    test_starts,
    window_origins,
)
from rnnkit.errors import ConfigError, DataError, Problem
from rnnkit.tasks import Task
from rnnkit.tasks import _forecast_auto as auto
from rnnkit.tasks import _forecast_tbptt as tbptt
from rnnkit.tasks._onnx import FEATURES, MASK, OnnxSpec
from rnnkit.tasks._samples import forecast_panels

PREP_FILE = "forecast.json"


@dataclass
class ForecastConfig:
    """Time-series forecasting (task forecast)."""

    time_column: str = "time"
    target_columns: list[str] | None = None  # default: every numeric column but time/series/covariates
    covariate_columns: list[str] | None = None
    series_column: str | None = None  # many series in long format
    input_length: int | None = None  # steps of history per window (null: chosen by forecast.auto, else 24, or the
    # built-in data set's)
    horizon: int | None = None  # steps ahead to forecast (null: 1, or the built-in data set's)
    stride: int = 1  # steps between window starts
    head: str = "auto"  # auto (direct, or the data set's) | direct (multi-horizon) | autoregressive (seq2seq)
    seasonality: int | None = None  # season length for seasonal naive, MASE and forecast.auto's windows (null: the
    # calendar's - monthly 12, quarterly 4, daily 7, hourly 24, the steps of a day for steps of 15 minutes or more -
    # when the history before the test span shows that season, else 1; numeric times: 1)
    val_size: int | None = None  # steps at the end of the training span held out (null: 10%)
    test_size: int | None = None  # steps at the end held out for test (null: 10%)
    test_start: str | None = None  # or: first time value of the test span (e.g. 1921)
    test_end: str | None = None  # last time value used (later steps are left out and counted); null: the end
    loss: str = "mse"  # mse | mae
    residual: str = "auto"  # auto (chosen by forecast.auto: none or seasonal, none or last without a season; else
    # none, or the data set's) | none | last | seasonal: forecast the change from the
    # naive / seasonal-naive forecast (the untrained network forecasts exactly that)
    transform: str = "auto"  # auto (forecast.auto's choice, else none, or the data set's) | none | sqrt | log:
    # variance-stabilising transform of the targets before z-scoring, inverted for metrics and output (sqrt needs
    # values >= 0, log values > 0)
    window_norm: bool | None = None  # null: forecast.auto's choice, else false, or the data set's. Normalise each
    # input window by its own mean and std, forecast in those units and scale back (reversible instance
    # normalisation, Kim et al. 2022): forecasts follow a level or amplitude the training span never reached
    linear: bool = False  # a linear autoregressive path beside the network (LSTNet's highway, Lai et al. 2018): a
    # linear map from each target's last input_length values to the horizon, added to the forecast, starting at zero.
    # The forecasting defaults turn it on (not with forecast.tbptt, nor in the built-in data sets' protocols)
    auto: bool = True  # choose input_length, transform, window_norm, model.cell and residual (each one that neither
    # you nor the built-in data set set) by rolling-origin validation at 3 origins inside the training span, never
    # reading the test span; the choice and the full ranking are in summary.json data.auto. false: 24, none, false,
    # lstm, none
    auto_budget: float = 120.0  # seconds forecast.auto may spend: round 1 trains every candidate briefly at the newest
    # origin, round 2 the best quarter longer at every origin; when it runs out, what was tried is ranked
    auto_keys: list[str] | None = None  # what forecast.auto chooses (null: the default layer fills in the keys you did
    # not set); a run's config.yaml saves [] with the chosen values, so a rerun or resume does not search again
    short_series: str = "set_aside"  # set_aside | error: a series whose training span cannot hold input_length +
    # horizon steps trains on the longest window it holds; one that cannot hold 1 step + horizon (or one horizon each of
    # validation and test) is set aside, named with its length in summary.json data.short_series and on stderr
    # (error: every such series stops the run, listed with the fix)
    series_embedding: bool = False  # many series (needs forecast.series_column): one learned vector per training
    # series, added to every input step of its windows, so the global model tells apart series whose windows look
    # alike after the per-series z-score but go on differently (e.g. each its own cycle length, a short window).
    # A series not in training gets the zero vector (no learned offset) at predict/evaluate time
    task_defaults: bool = True  # the forecasting model defaults (a layer under your own settings)
    tbptt: int | None = None  # steps per chunk of truncated backprop through time on one long series (null: off,
    # train on windows). The training span is cut into data.batch_size contiguous streams; each step trains on the
    # next tbptt steps of every stream, the state carried from the chunk before (detached), every position
    # forecasting the horizon after it. Validation and test keep the rolling-origin windows (tasks/_forecast_tbptt.py)


C.register_section(
    "forecast", ForecastConfig, task="forecast",
    choices={"head": ("auto", "direct", "autoregressive"), "loss": ("mse", "mae"),
             "residual": ("auto", "none", "last", "seasonal"), "transform": ("auto", "none", "sqrt", "log"),
             "short_series": ("set_aside", "error")},
    ranges={"input_length": (1, None), "horizon": (1, None), "stride": (1, None), "seasonality": (1, None),
            "val_size": (1, None), "test_size": (1, None), "auto_budget": (1.0, None), "tbptt": (1, None)},
    architecture=("input_length", "horizon", "head", "target_columns", "covariate_columns", "residual",
                  "transform", "window_norm", "series_embedding", "linear"))


# Forecasting defaults for keys left at their generic (classification-minded) defaults.
TASK_DEFAULTS = {
    "model.bidirectional": False,
    "model.num_layers": 1,
    "model.hidden_size": 64,
    "model.embedding_dim": 32,
    "model.dropout": 0.1,
    "model.recurrent_dropout": 0.0,
    "train.patience": 20,
}

register(BuiltinDataset(
    name="sunspots", task="forecast", package="statsmodels", install="pip install --no-deps statsmodels",
    description="yearly mean sunspot numbers 1700-2008 (statsmodels); Zhang (2003) protocol: train 1700-1920, "
                "test 1921-1987, one step ahead",
    reference="ARIMA test MSE 306.08, MAD 13.03 (Zhang 2003, 67 test years); ANN 351.19, hybrid 280.16",
    data_files={"train": "datasets/sunspots/sunspots.csv"},
    # Model settings chosen by rolling-origin validation inside 1700-1920 (4 origins, never the test span;
    # bench/bench_forecast.py --sweep --folds 4): the cycles' amplitude changes fourfold from one cycle to
    # the next, so the forecast follows each window's own level and amplitude, on the square-root scale.
    reader_options={"reader": {"format": "csv"},
                    "defaults": {"forecast.time_column": "YEAR", "forecast.target_columns": ["SUNACTIVITY"],
                                 "forecast.test_start": "1921", "forecast.test_end": "1987",
                                 "forecast.seasonality": 11, "forecast.input_length": 11,
                                 "forecast.val_size": 33, "forecast.horizon": 1,
                                 "forecast.transform": "sqrt", "forecast.window_norm": True, "model.cell": "gru",
                                 "forecast.residual": "none", "forecast.linear": False}},
))
register(BuiltinDataset(
    name="air_passengers", task="forecast", package="pmdarima", install="pip install --no-deps pmdarima",
    description="monthly international airline passengers 1949-1960 (Box & Jenkins series G, pmdarima); "
                "the last 12 months as test, forecast 12 months ahead from one origin",
    reference="seasonal naive RMSE 50.7; SARIMA(0,1,1)(0,1,1)12 on logs RMSE 18.6",
    data_files={"train": "datasets/airpassengers.py"},
    reader_options={"reader": {"format": "python_array",
                               "python_array": {"array_name": "rslt", "start": "1949-01", "unit": "M",
                                                "time_column": "month", "target": "passengers"}},
                    "defaults": {"forecast.time_column": "month", "forecast.target_columns": ["passengers"],
                                 "forecast.test_size": 12, "forecast.val_size": 12, "forecast.horizon": 12,
                                 "forecast.seasonality": 12, "forecast.input_length": 24,
                                 "forecast.residual": "seasonal", "forecast.head": "autoregressive",
                                 "forecast.linear": False}},
))

register(BuiltinDataset(
    name="taylor", task="forecast", package="pmdarima", install="pip install --no-deps pmdarima",
    description="half-hourly electricity demand of England and Wales, 5 June - 27 August 2000 (Taylor 2003, "
                "pmdarima; 4,032 steps, megawatts); the last 403 half-hours as test, one day (48 steps) ahead",
    reference="same windows (BENCHMARKS.md): naive MASE 2.967 / RMSE 7000, seasonal naive (m=48) 1.041 / 3087, "
              "ETS 1.148 / 2944",
    data_files={"train": "datasets/taylor.py"},
    # the benchmark's protocol (bench/bench_defaults.py): test = the last 10%, horizon one day, daily season
    reader_options={"reader": {"format": "python_array",
                               "python_array": {"array_name": "rslt", "start": "2000-06-05T00:00", "unit": "30m",
                                                "time_column": "time", "target": "demand"}},
                    "defaults": {"forecast.time_column": "time", "forecast.target_columns": ["demand"],
                                 "forecast.test_size": 403, "forecast.horizon": 48, "forecast.seasonality": 48}},
))


# --------------------------------------------------------------------------- preprocessing


@dataclass
class ForecastPrep:
    """What turns a file into windows and outputs back into units; saved as DIR/forecast.json."""

    axis: TimeAxis
    time_column: str
    target_columns: list[str]
    covariate_columns: list[str]
    series_column: str | None
    reader: dict  # format options of a built-in data set
    scalers: dict[str, Standardizer]  # per series, fitted on its training span
    scales: dict[str, list[float]]  # per series: in-sample seasonal naive MAE (MASE denominator)
    seasonality: int
    last_times: dict[str, str] = field(default_factory=dict)  # per series: last time seen in training
    transform: str = "none"  # of the targets before the z-score (forecast.transform)
    min_input_length: int = 1  # the shortest window a short series may use (seasonal residual: one season)
    series_ids: list[str] = field(default_factory=list)  # the training series in a fixed order: series_ids[i] has
    # series index i + 1 (forecast.series_embedding); index 0 is a series the model never saw

    def series_indices(self) -> dict[str, int]:
        """Series id -> its index for the series embedding (1 + its place in `series_ids`); a series not in it
        (one the model never saw) takes index 0."""
        return {sid: i + 1 for i, sid in enumerate(self.series_ids)}

    @property
    def num_targets(self) -> int:
        return len(self.target_columns)

    @property
    def num_features(self) -> int:
        return len(self.target_columns) + len(self.covariate_columns)

    def save(self, run_dir: Path) -> None:
        d = {"axis": self.axis.to_dict(), "time_column": self.time_column, "target_columns": self.target_columns,
             "covariate_columns": self.covariate_columns, "series_column": self.series_column,
             "reader": self.reader, "seasonality": self.seasonality, "last_times": self.last_times,
             "transform": self.transform, "min_input_length": self.min_input_length,
             "series_ids": self.series_ids,
             "scalers": {k: v.to_dict() for k, v in self.scalers.items()},
             "scales": {k: list(map(float, v)) for k, v in self.scales.items()}}
        (Path(run_dir) / PREP_FILE).write_text(json.dumps(d, indent=1))

    @classmethod
    def load(cls, run_dir: Path) -> ForecastPrep:
        d = json.loads((Path(run_dir) / PREP_FILE).read_text())
        d["axis"] = TimeAxis.from_dict(d["axis"])
        d["scalers"] = {k: Standardizer.from_dict(v) for k, v in d["scalers"].items()}
        return cls(**d)


FALLBACKS = {"forecast.input_length": 24, "forecast.horizon": 1, "forecast.residual": "none", "forecast.head": "direct",
             "forecast.transform": "none", "forecast.window_norm": False}
_SPLIT_KEYS = ("forecast.test_start", "forecast.test_size", "forecast.test_end", "forecast.val_size")


def defaults(dataset: str | None, user: dict) -> dict:
    """Forecasting's default layer (see `config.resolve`): under the user's file and --set.

    `TASK_DEFAULTS` (unless forecast.task_defaults=false), then the built-in data set's protocol
    (its split only when the user set none of test_start/test_size/test_end/val_size), then
    `FALLBACKS` for what is still unset.
    """
    wanted = dict(TASK_DEFAULTS) if user.get("forecast.task_defaults", True) is not False else {}
    if wanted and user.get("forecast.tbptt") is None:  # the linear path reads windows (a stream has none)
        wanted["forecast.linear"] = True
    protocol: dict = {}
    if dataset:
        builtin = get_builtin(dataset)
        if builtin.task == "forecast":
            protocol = dict(builtin.reader_options.get("defaults", {}))
            if any(k in user for k in _SPLIT_KEYS):
                protocol = {k: v for k, v in protocol.items() if k not in _SPLIT_KEYS}
            wanted.update(protocol)
    searched: list[str] = []
    if user.get("forecast.auto", True) is not False:
        if "forecast.auto_keys" in user:
            given = user["forecast.auto_keys"] or []
            searched = [k.strip() for k in given.split(",")] if isinstance(given, str) else list(given)
        else:  # what neither the user nor the data set's protocol set
            searched = [k for k in auto.SEARCHABLE if _full_key(k) not in user and _full_key(k) not in protocol]
            if user.get("forecast.tbptt") is not None:  # a stream has no window statistics: window_norm stays off
                searched = [k for k in searched if k != "window_norm"]
            wanted["forecast.auto_keys"] = searched
    for key, value in FALLBACKS.items():
        if key.removeprefix("forecast.") not in searched:  # a searched key stays unset until the search
            wanted.setdefault(key, value)
    return C.nest(wanted)


def _full_key(key: str) -> str:
    """auto.SEARCHABLE's names as config keys: "input_length" -> "forecast.input_length"."""
    return key if "." in key else f"forecast.{key}"


def fill_unset(cfg: C.Config) -> None:
    """For configs built without `config.resolve` (e.g. `Config(task="forecast")` in Python): fill the
    keys still null/"auto" from `FALLBACKS`, in place."""
    flat = C.flatten(cfg.to_dict())
    updates = {k: v for k, v in FALLBACKS.items() if flat[k] in (None, "auto")}
    if updates:
        new = C.merge(cfg, C.nest(updates), source="forecasting fallbacks")
        cfg.forecast = new.forecast


def applied_defaults(cfg: C.Config) -> list[str]:
    """The task/data-set defaults this config carries (value equal to the layer's, unlike the generic default)."""
    flat, generic = C.flatten(cfg.to_dict()), C.flatten(C.Config().to_dict())
    layer = C.flatten(defaults(cfg.data.dataset, {}))
    return [f"{k}={v!r}" for k, v in layer.items()
            if flat.get(k) == v and generic.get(k) != v and FALLBACKS.get(k, object()) != v
            and k != "forecast.auto_keys"]


# data.* keys of other families' readers that forecasting does not read, and the forecast key that does the job
NOT_READ = {"time_column": "forecast.time_column", "id_column": "forecast.series_column",
            "label_column": "forecast.target_columns", "feature_columns": "forecast.covariate_columns"}
SPLIT_NOTE = ("not read: forecasting splits each series by time inside one file (forecast.val_size and "
              "forecast.test_size steps, or forecast.test_start)")
CONFIG_NOTES = {"data.val": SPLIT_NOTE, "data.test": SPLIT_NOTE,
                **{f"data.{k}": f"not read by forecasting: set {v}" for k, v in NOT_READ.items()}}


def _source(cfg: C.Config) -> tuple[Path, dict]:
    generic = C.Config().data
    for key, instead in NOT_READ.items():
        if getattr(cfg.data, key) != getattr(generic, key):
            raise ConfigError(f"data.{key}={getattr(cfg.data, key)!r} is not read by forecasting; set {instead} "
                              f"instead (e.g. --set {instead}=...)")
    if cfg.data.val or cfg.data.test:
        raise ConfigError("forecasting splits each series chronologically inside one file; instead of --val/--test "
                          "files use forecast.test_start (a time), forecast.test_size and forecast.val_size (steps).")
    if cfg.data.dataset:
        builtin = get_builtin(cfg.data.dataset)
        if builtin.task != "forecast":
            raise ConfigError(f"data set {builtin.name!r} is for task {builtin.task!r}, not 'forecast'; "
                              f"use --task {builtin.task}.")
        return builtin.files()["train"], dict(builtin.reader_options.get("reader", {}))
    if not cfg.data.train:
        raise ConfigError("no training data: give a TRAIN_FILE, --dataset NAME, or data.train in the config.")
    return Path(cfg.data.train), {"format": cfg.data.format}


def _read(cfg: C.Config, path: Path, reader: dict, *, rejects: Path | None, axis: TimeAxis | None = None,
          columns: ForecastPrep | None = None) -> SeriesTable:
    f = cfg.forecast
    roles = (dict(time_column=columns.time_column, target_columns=columns.target_columns,
                  covariate_columns=columns.covariate_columns, series_column=columns.series_column)
             if columns is not None else
             dict(time_column=f.time_column, target_columns=f.target_columns, covariate_columns=f.covariate_columns,
                  series_column=f.series_column))
    fmt = reader.get("format", "auto")
    if fmt == "python_array" and path.suffix != ".py":
        fmt = "auto"  # a user's own file for a model trained on a built-in literal
    return read_series(path, format=fmt, python_array=reader.get("python_array"), bad_rows=cfg.data.bad_rows,
                       max_bad_fraction=cfg.data.max_bad_fraction, rejects_path=rejects, axis=axis, **roles)


FEW_VAL_WINDOWS = 5  # fewer validation windows than this (all series together): said, with the val_size for twice
RANGE_MARGIN = 0.05  # a target this share of the training span's range beyond its min or max is out of range


def out_of_range(table, spans, cfg: C.Config) -> dict:
    """The share of validation and test targets that lie outside the levels the training span covered (per series and
    target column, with a `RANGE_MARGIN` of its range): the doctor's evidence (data.out_of_range) when the test span
    reaches a level the model never saw. Read after every choice is made, and by nothing that chooses."""
    counts = {"val": [0, 0], "test": [0, 0]}
    for s, sp in zip(table.series, spans, strict=True):
        train = s.values[:sp.val_start]
        if not len(train):
            continue
        lo, hi = np.nanmin(train, axis=0), np.nanmax(train, axis=0)
        pad = RANGE_MARGIN * (hi - lo)
        for split, (a, b) in (("val", (sp.val_start, sp.test_start)), ("test", (sp.test_start, sp.end))):
            part = s.values[a:b]
            counts[split][0] += int(((part < lo - pad) | (part > hi + pad)).sum())
            counts[split][1] += int(np.isfinite(part).sum())
    f = cfg.forecast
    scaled = ("forecast.window_norm scales each window by its own level, yet how the series moves at a level it "
              "never reached is still new to the network" if f.window_norm else
              "the inputs are z-scored with the training span's mean and spread, so a new level is an input the "
              "network never saw" + (f" (forecast.residual={f.residual} forecasts a change from a past value, from "
                                     "those inputs)" if f.residual not in ("none", None, "auto") else ""))
    advice = [] if f.window_norm else ["scale each window by its own level: --set forecast.window_norm=true"]
    advice += ["train on a span that covers these levels (forecast.test_size, or more history)",
               "where the baselines in metrics.test.baselines forecast this span better, use them here"]
    return {**{k: {"outside": o, "targets": n, "share": o / n if n else 0.0} for k, (o, n) in counts.items()},
            "why": scaled, "advice": advice}


def infer_seasonality(cfg: C.Config, table: SeriesTable) -> dict | None:
    """forecast.seasonality left unset: the season the calendar implies (`rnnkit.data.seasonality`), set in `cfg`
    when the history before the test span shows it, else 1; said on stderr. None without a calendar season (numeric
    times, yearly steps): seasonality stays unset (1)."""
    f = cfg.forecast
    found = calendar_season(table.axis)
    if found is None:
        return None
    m, step = found
    ends = test_starts(table, horizon=f.horizon or 1, test_start=f.test_start, test_end=f.test_end,
                       test_size=f.test_size)
    ev = season_evidence([s.values[:end] for s, end in zip(table.series, ends, strict=True)], m)
    f.seasonality = m if ev.shown else 1
    r = "too little history to tell" if ev.autocorrelation is None else (
        f"lag-{m} autocorrelation of its changes {ev.autocorrelation:.2f}, "
        f"{'above' if ev.shown else 'not above'} {ev.threshold:.2f}")
    note = {"calendar": step, "candidate": m, "chosen": f.seasonality, "autocorrelation": ev.autocorrelation,
            "threshold": ev.threshold, "changes": ev.changes}
    if cfg.train.progress != "none":
        said = (f"the history before the test span repeats every {m} steps" if ev.shown else
                f"the history before the test span shows no {m}-step season")
        print(f"rnnkit: forecast.seasonality={f.seasonality}: {step} times, and {said} ({r}); set "
              "forecast.seasonality to choose it yourself", file=sys.stderr, flush=True)
    return note


def prepare(cfg: C.Config, run_dir: Path | None = None) -> PreparedData:
    """Read, validate, split chronologically, fit per-series scalers on the training spans, window.

    Raises:
        DataError / ConfigError: before any training step (see `rnnkit.data.timeseries`).
    """
    check_series_embedding(cfg)
    searched = auto.searched_keys(cfg)
    unknown = [k for k in cfg.forecast.auto_keys or [] if k not in auto.SEARCHABLE]
    if unknown:
        raise ConfigError(f"forecast.auto_keys: {', '.join(map(repr, unknown))} cannot be searched; it may list "
                          f"{', '.join(auto.SEARCHABLE)}.")
    fill_unset(cfg)
    if tbptt.enabled(cfg):
        tbptt.check_config(cfg, searched)
        if cfg.forecast.linear:
            raise ConfigError(f"forecast.tbptt={cfg.forecast.tbptt} forecasts from the state after every step; "
                              "forecast.linear=true reads a window's last input_length steps, which a stream does not "
                              "have. Set forecast.linear=false, or forecast.tbptt=null to train on windows.")
    applied = applied_defaults(cfg)
    if applied and cfg.train.progress != "none":
        print("rnnkit: forecasting defaults (set any key to override): " + ", ".join(applied),
              file=sys.stderr, flush=True)
    f = cfg.forecast
    path, reader = _source(cfg)
    table = _read(cfg, path, reader, rejects=(Path(run_dir) / "rejects.jsonl") if run_dir else None)
    season_note = infer_seasonality(cfg, table) if f.seasonality is None else None
    m = f.seasonality or 1
    floor = m if f.residual == "seasonal" else 1
    chosen = None
    if searched:  # the protocol from the span before the test start (rnnkit.tasks._forecast_auto)
        fixed_length = floor if "input_length" in searched else f.input_length
        base = plan_splits(table, input_length=fixed_length, horizon=f.horizon, test_start=f.test_start,
                           test_end=f.test_end, test_size=f.test_size, val_size=f.val_size, min_input_length=floor,
                           short_series=f.short_series)  # policy error: a series too short stops before the search
        kept = dataclasses.replace(table, series=base.series)
        hooks = auto.Hooks(make_prep=lambda scalers, scales, transform: ForecastPrep(
            axis=table.axis, time_column=table.time_column, target_columns=table.target_columns,
            covariate_columns=table.covariate_columns, series_column=table.series_column, reader=reader,
            scalers=scalers, scales=scales, seasonality=m, transform=transform, min_input_length=floor,
            series_ids=[s.id for s in kept.series]),
            build_model=build_model, task=TASK, metrics=forecast_metrics)
        chosen = auto.choose_everywhere(cfg, kept, base.spans, searched, hooks, floor=floor,
                             shortest=f.short_series == "error")
        floor = m if f.residual == "seasonal" else 1  # the residual may be the search's choice
    if f.residual == "seasonal" and m > f.input_length:
        raise ConfigError(f"forecast.residual=seasonal needs forecast.input_length ({f.input_length}) >= "
                          f"forecast.seasonality ({m}): the window must hold one season.")
    plan = plan_splits(table, input_length=f.input_length, horizon=f.horizon, test_start=f.test_start,
                       test_end=f.test_end, test_size=f.test_size, val_size=f.val_size, min_input_length=floor,
                       short_series=f.short_series)
    table = dataclasses.replace(table, series=plan.series)
    spans = plan.spans
    _print_short(plan, f.input_length, cfg)
    check_transform(table, f.transform)
    scalers = fit_scalers(table, spans, f.transform)
    scales = {s.id: mase_scale(s.values[:sp.val_start], m) for s, sp in zip(table.series, spans, strict=True)}
    prep = ForecastPrep(axis=table.axis, time_column=table.time_column, target_columns=table.target_columns,
                        covariate_columns=table.covariate_columns, series_column=table.series_column,
                        reader=reader, scalers=scalers, scales=scales, seasonality=m, transform=f.transform,
                        last_times={s.id: table.axis.format(s.times[sp.end - 1])
                                    for s, sp in zip(table.series, spans, strict=True)}, min_input_length=floor,
                        series_ids=[s.id for s in table.series])
    windows: dict[str, list] = {"train": [], "val": [], "test": []}
    for index, (s, sp) in enumerate(zip(table.series, spans, strict=True), start=1):
        length = sp.input_length or f.input_length
        for split, (a, b) in (("train", (0, sp.val_start)), ("val", (sp.val_start, sp.test_start)),
                              ("test", (sp.test_start, sp.end))):
            origins = window_origins(a, b, input_length=length, horizon=f.horizon, stride=f.stride)
            windows[split] += make_windows(s, scalers[s.id], origins, input_length=length,
                                           horizon=f.horizon, seasonality=m, scale=scales[s.id],
                                           transform=f.transform, series_index=index)
    empty = [k for k, v in windows.items() if not v]
    if empty:
        raise ConfigError(f"no {'/'.join(empty)} windows with forecast.stride={f.stride}; lower the stride.")
    if len(windows["val"]) < FEW_VAL_WINDOWS:
        more = f.horizon + (2 * FEW_VAL_WINDOWS - 1) * f.stride  # its windows: (steps - horizon) / stride + 1
        warnings.warn(f"validation holds only {len(windows['val'])} window(s) (forecast.val_size "
                      f"{spans[0].test_start - spans[0].val_start} steps, horizon {f.horizon}): the best epoch and "
                      f"early stopping rest on that many forecasts, mostly noise; forecast.val_size={more} gives "
                      f"{2 * FEW_VAL_WINDOWS} (fewer steps left to train on)", UserWarning, stacklevel=2)
    report = dict(table.report)
    unused = report.get("unused_numeric_columns") or []
    if unused and not cfg.data.dataset:  # a built-in's roles are its protocol's
        warnings.warn(f"{path}: numeric column(s) {', '.join(map(repr, unused))} are neither a target nor a covariate "
                      f"and are not used; to feed them to the model, name them with --set "
                      f"forecast.covariate_columns=[{', '.join(unused)}] (or add them to forecast.target_columns)",
                      UserWarning, stacklevel=2)
    report["out_of_range"] = out_of_range(table, spans, cfg)
    if season_note is not None:
        report["seasonality_inferred"] = season_note
    report["series"] = len(plan.series) + len(plan.set_aside)
    report["short_series"] = {"policy": f.short_series, "set_aside": plan.set_aside, "shorter_window": plan.shorter}
    report.update(sizes={k: len(v) for k, v in windows.items()}, defaults_applied=applied,
                  seasonality=m, spans=_describe_spans(table, spans),
                  unused_after_test_end=sum(len(s) - sp.end for s, sp in zip(table.series, spans, strict=True)))
    if f.series_embedding:
        report["series_embedding"] = {"series": len(prep.series_ids), "dim": cfg.model.embedding_dim,
                                      "unseen_series": "index 0, the zero vector"}
        if cfg.train.progress != "none":
            print(f"rnnkit: forecast.series_embedding: one learned {cfg.model.embedding_dim}-value vector per "
                  f"training series ({len(prep.series_ids)} series), added to each input step; a series not in "
                  "training gets the zero vector", file=sys.stderr, flush=True)
    if chosen is not None:
        report["auto"] = chosen
        v, metric = chosen["val"], chosen["metric"]
        picked = ", ".join(f"{k}={str(x).lower() if isinstance(x, bool) else x}" for k, x in chosen["chosen"].items())
        report.setdefault("notes", []).append(
            f"forecast.auto chose {picked} (validation {metric} {v[metric]:.4g}, seasonal naive "
            f"{v['seasonal_naive'][metric]:.4g}; {chosen['tried']} of {chosen['candidates']} candidates"
            f"{', budget exhausted' if chosen['budget_exhausted'] else ''}; ranking in summary.json data.auto)")
        if not chosen["beats_seasonal_naive"]:
            report["notes"].append(
                f"forecast.auto: the best protocol did not beat the seasonal naive forecast on validation "
                f"({chosen['metric']} {v[chosen['metric']]:.4g} vs {v['seasonal_naive'][chosen['metric']]:.4g}); "
                "compare the test metrics with metrics.test.baselines before using this model")
    if cfg.data.dataset:
        report["reference"] = get_builtin(cfg.data.dataset).reference
    streams = None
    if tbptt.enabled(cfg):
        streams = tbptt.plan(cfg, table, spans, scalers, m, tbptt.forward_chunk, loss)
        report["tbptt"] = {**streams.layout.describe(), **streams.info}
        tbptt.announce(cfg, streams)
    if run_dir is not None:
        prep.save(Path(run_dir))
    return PreparedData(datasets={k: SequenceDataset(v) for k, v in windows.items()}, prep=prep, report=report,
                        streams=streams)


def check_series_embedding(cfg: C.Config) -> None:
    """forecast.series_embedding needs a series column (before any data is read).

    Raises:
        ConfigError: series_embedding=true without forecast.series_column, naming both keys and the fix.
    """
    f = cfg.forecast
    if f.series_embedding and not f.series_column:
        raise ConfigError("forecast.series_embedding=true needs forecast.series_column (the column naming each "
                          "series in long format): one vector is learned per series. Set "
                          "forecast.series_column=COLUMN, or forecast.series_embedding=false for a file with one "
                          "series.")


def _print_short(plan, input_length: int, cfg: C.Config) -> None:
    """The short series, on stderr before training: those set aside by name, those on shorter windows counted."""
    if cfg.train.progress == "none" or not (plan.set_aside or plan.shorter):
        return
    if plan.shorter:
        shortest = min(x["input_length"] for x in plan.shorter)
        print(f"rnnkit: {len(plan.shorter)} series train on windows shorter than forecast.input_length={input_length} "
              f"(their training spans are short; the shortest window is {shortest} steps)", file=sys.stderr, flush=True)
    if plan.set_aside:
        names = ", ".join(f"{x['series']!r} ({x['length']} steps)" for x in plan.set_aside[:20])
        more = f" and {len(plan.set_aside) - 20} more" if len(plan.set_aside) > 20 else ""
        print(f"rnnkit: {len(plan.set_aside)} series set aside, too short for one window + validation + test "
              f"(listed in summary.json data.short_series; forecast.short_series=error stops instead): {names}{more}",
              file=sys.stderr, flush=True)


def _describe_spans(table: SeriesTable, spans) -> dict:
    """First and last target time of each split (of the first series; counts for all)."""
    s, sp = table.series[0], spans[0]
    fmt = table.axis.format
    out = {"train": [fmt(s.times[0]), fmt(s.times[sp.val_start - 1])],
           "val": [fmt(s.times[sp.val_start]), fmt(s.times[sp.test_start - 1])],
           "test": [fmt(s.times[sp.test_start]), fmt(s.times[sp.end - 1])]}
    if len(table.series) > 1:
        out["note"] = f"times of series {s.id!r}; each of the {len(table.series)} series is split the same way"
    return out


# --------------------------------------------------------------------------- model, loss, metrics


def build_model(cfg: C.Config, prep: ForecastPrep):
    from rnnkit.models.forecaster import Forecaster, build_forecaster

    known = set(inspect.signature(Forecaster).parameters) | {"residual"}
    options = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k in known}
    f = cfg.forecast
    check_series_embedding(cfg)
    if f.series_embedding and not prep.series_ids:
        raise ConfigError("forecast.series_embedding=true but this run's forecast.json lists no training series "
                          "(series_ids: written by an rnnkit without series embeddings?); train a new run, or set "
                          "forecast.series_embedding=false.")
    return build_forecaster(options, num_features=prep.num_features, num_targets=prep.num_targets,
                            horizon=f.horizon, head=f.head, residual=f.residual, seasonality=prep.seasonality,
                            loss=f.loss, window_norm=bool(f.window_norm),
                            num_series=len(prep.series_ids) if f.series_embedding else 0,
                            ar_window=int(f.input_length) if f.linear else 0)


def collate_windows(examples, pad_value: float = 0.0):
    """`rnnkit.data.collate.collate`, plus batch.extra["series_index"]: (B,) int64, each window's series index
    (`ForecastPrep.series_ids`; 0, the unseen series, for an example that carries none)."""
    batch = collate(examples, pad_value=pad_value)
    batch.extra["series_index"] = torch.tensor([int(ex.extra.get("series_index", 0)) for ex in examples],
                                               dtype=torch.int64)
    return batch


def forward(model, batch, step=None):
    """ForecastOutput, prediction (B, H, K); the series index goes to a model with a series embedding only (any
    other forecaster keeps the (inputs, lengths, mask) signature)."""
    if getattr(getattr(model, "module", model), "series_embedding", None) is None:
        return model(batch.inputs, batch.lengths, batch.mask)
    return model(batch.inputs, batch.lengths, batch.mask, batch.extra.get("series_index"))


def loss(out, batch) -> tuple[torch.Tensor, int]:
    """Mean squared (or absolute) error over every target value of the batch, in z-scored units."""
    err = out.prediction.float() - batch.targets  # (B, H, K)
    value = err.abs().mean() if out.loss == "mae" else err.pow(2).mean()
    return value, err.numel()


def predict(model, batch, out, cfg) -> list[torch.Tensor]:
    """Per example: the (H, K) forecast in z-scored units (`score`/`write_predictions` de-normalise)."""
    return list(out.prediction.float().cpu())


def forecast_metrics(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> dict:
    """mse, mae, rmse, mase, smape of forecasts in original units.

    Args:
        pred, true: (N, H, K) forecasts and actual values.
        scale: (N, K) MASE denominator of each window's series (in-sample seasonal naive MAE).

    Returns:
        dict of floats; smape in percent (0..200), 0 where both the value and forecast are 0;
        mase NaN when a series' scale is 0 or unknown.
    """
    err = pred - true
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = np.abs(true) + np.abs(pred)
        smape = np.where(denom > 0, 200.0 * np.abs(err) / denom, 0.0)
        scaled = np.abs(err) / scale[:, None, :]  # (N, H, K) / (N, 1, K)
    mse = float(np.mean(err ** 2))
    mase = float(np.mean(scaled)) if np.isfinite(scaled).all() else float("nan")
    return {"mse": mse, "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(mse)), "mase": mase,
            "smape": float(np.mean(smape))}


def _truth(examples) -> tuple[np.ndarray, np.ndarray]:
    true = np.stack([ex.extra["raw_target"] for ex in examples])  # (N, H, K)
    scale = np.stack([np.asarray(ex.extra["scale"], dtype=np.float64) for ex in examples])  # (N, K)
    return true, scale


def score(preds, examples, prep: ForecastPrep, cfg) -> dict:
    """Metrics in original units: each forecast de-normalised with its series' training scaler."""
    pred = np.stack([denormalize(p.double().numpy(), prep.scalers[ex.extra["series"]], prep.num_targets, prep.transform)
                     for p, ex in zip(preds, examples, strict=True)])  # (N, H, K)
    true, scale = _truth(examples)
    return forecast_metrics(pred, true, scale)


def baselines(data: PreparedData, cfg, split: str = "test") -> dict:
    """The naive and seasonal naive forecasts from the same origins as a split's windows (test, or val), same
    metrics."""
    return _baselines_of(data.datasets[split].examples, data.prep.seasonality)


def file_baselines(dataset, prep: ForecastPrep, cfg) -> dict:
    """`baselines` for the windows of a file `evaluate` scores."""
    return _baselines_of(dataset.examples, prep.seasonality)


def _baselines_of(examples, m: int) -> dict:
    true, scale = _truth(examples)
    return {"naive": forecast_metrics(np.stack([ex.extra["naive"] for ex in examples]), true, scale),
            "seasonal_naive": {"seasonality": m,
                               **forecast_metrics(np.stack([ex.extra["snaive"] for ex in examples]), true, scale)}}


# --------------------------------------------------------------------------- inference


@dataclass
class ForecastRecord:
    """One forecast to write: its series and the times of its H target steps."""

    series: str  # as written to the CSV (a file without a series column: the file's stem)
    key: str  # the series id in the data ("" without a series column)
    times: list[str]
    file: str
    line: int


def _inference_scaler(prep: ForecastPrep, s: Series, embedding: bool) -> tuple[Standardizer, np.ndarray]:
    if s.id in prep.scalers:
        return prep.scalers[s.id], np.asarray(prep.scales[s.id])
    # A series the model never saw: scaled by its own history in this file (the model is global).
    warnings.warn(f"series {s.id!r} was not in the training data: it is z-scored with its own history in "
                  f"{s.file}" + ("; its series embedding is the neutral zero vector (forecast.series_embedding: "
                                 "no learned offset)" if embedding else ""), stacklevel=3)
    scaler = Standardizer().fit([scaled_inputs(s, prep.transform)])
    return scaler, mase_scale(s.values, prep.seasonality)


def load_inference(cfg, prep: ForecastPrep, path, with_targets: bool, run_dir=None):
    """Windows of a new file, read with the training columns and time axis.

    With targets (evaluate): every window of each series with L steps of history and H targets
    (stride `forecast.stride`). Without (predict): one window per series, its last L steps, to
    forecast the H steps after the series' end.
    """
    f = cfg.forecast
    table = _read(cfg, Path(path), prep.reader, rejects=None, axis=prep.axis, columns=prep)
    check_transform(table, prep.transform)
    examples, records, short = [], [], []
    indices = prep.series_indices()  # a series not in training: 0
    for s in table.series:
        scaler, scale = _inference_scaler(prep, s, bool(f.series_embedding))
        if s.id not in prep.scalers:
            prep.scalers[s.id] = scaler
        n = len(s)
        # a series shorter than the window is read with all the history it has (at least prep.min_input_length)
        length = max(min(f.input_length, n - (f.horizon if with_targets else 0)), prep.min_input_length)
        origins = (window_origins(0, n, input_length=length, horizon=f.horizon, stride=f.stride)
                   if with_targets else range(n, n + 1) if n >= length else range(0))
        name = s.id or Path(s.file).stem  # as the predictions name it
        if not origins:
            need = length + (f.horizon if with_targets else 0)
            what = (f"{length} step{'s' if length != 1 else ''} of history"
                    + (f" + the horizon {f.horizon}" if with_targets else ""))
            short.append(Problem(s.file, int(s.lines[0]), table.time_column, prep.axis.format(s.times[0]),
                                 f"series {name!r} has {n} steps; {'evaluation' if with_targets else 'a forecast'} "
                                 f"needs at least {need} ({what})",
                                 f"give more history (the model was trained on windows of {f.input_length} steps)",
                                 s.id or None))
            continue
        if length < f.input_length and not with_targets:
            warnings.warn(f"series {name!r} has {n} steps, fewer than the model's forecast.input_length "
                          f"{f.input_length}: forecast from the {length} it has (a shorter window than training's "
                          f"reads less of the past; give the file more history)", UserWarning, stacklevel=3)
        made = make_windows(s, scaler, origins, input_length=length, horizon=f.horizon,
                            seasonality=prep.seasonality, scale=scale, with_targets=with_targets,
                            transform=prep.transform, series_index=indices.get(s.id, 0))
        for ex in made:
            o = ex.extra["origin"]
            times = [prep.axis.format(s.times[0] + (o + h) * prep.axis.step) for h in range(f.horizon)]
            records.append(ForecastRecord(name, s.id, times, s.file, int(s.lines[min(o, n) - 1])))
        examples += made
    if short:
        raise DataError(short, header="some series are too short to forecast")
    return SequenceDataset(examples), records


def write_predictions(output: Path, records, preds, prep: ForecastPrep, cfg) -> int:
    """CSV: series, time (of the forecast target), step (1..H), then the forecast in original units: one column
    `forecast`, or `forecast_<target>` per target when there are several (never the target's own name, so
    that a join with the actual values keeps both)."""
    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["series", prep.time_column, "step", *forecast_columns(prep.target_columns)])
        rows = 0
        for rec, p in zip(records, preds, strict=True):
            values = denormalize(p.double().numpy(), prep.scalers[rec.key], prep.num_targets, prep.transform)  # (H, K)
            for h, (t, row) in enumerate(zip(rec.times, values, strict=True), start=1):
                w.writerow([rec.series, t, h, *[f"{v:.6g}" for v in row]])
                rows += 1
    return rows


def forecast_columns(targets: list[str]) -> list[str]:
    """The prediction file's value columns (see `write_predictions`)."""
    return ["forecast"] if len(targets) == 1 else [f"forecast_{t}" for t in targets]


def zero_forecast_loss(prep) -> float:
    """MSE of forecasting the training mean (0 in z-scored units): about 1 on the training span."""
    return 1.0


def negative_mse(metrics: dict) -> float:
    """The estimator's `score`: -MSE (higher is better, as scikit-learn's scorers expect)."""
    return -metrics["mse"]


def describe_model(cfg: C.Config) -> str:
    """The report's words for the forecasting head and window."""
    f = cfg.forecast
    return (f"; {f.head} head, input length {f.input_length}, horizon {f.horizon}"
            + (", series embedding (one learned vector per training series)" if f.series_embedding else ""))


def _onnx_inputs(model, prep) -> dict:
    inputs = {"inputs": FEATURES, "mask": MASK}
    if getattr(model, "series_embedding", None) is not None:
        inputs["series_index"] = {"dtype": "int64", "axes": {0: "batch"}}
    return inputs


def _onnx_sidecar(cfg, prep, model) -> dict:
    f = cfg.forecast
    return {"forecast": {"input_length": f.input_length, "horizon": f.horizon, "transform": prep.transform,
                         "seasonality": prep.seasonality, "target_columns": prep.target_columns,
                         "covariate_columns": prep.covariate_columns, "series_column": prep.series_column,
                         "series_ids": list(prep.series_ids),
                         "scalers": {k: v.to_dict() for k, v in prep.scalers.items()}}}


ONNX = OnnxSpec(inputs=_onnx_inputs, output="prediction", output_axes={0: "batch"},
                forward=lambda model, inputs, lengths, mask, extra: model(inputs, lengths, mask,
                                                                          extra.get("series_index")).prediction,
                sizes=lambda prep: {"vocab_size": 0, "channels": prep.num_features, "num_series": len(prep.series_ids)},
                check_lengths=lambda cfg: [max(1, int(cfg.forecast.input_length) // 2), int(cfg.forecast.input_length),
                                           2 * int(cfg.forecast.input_length)],
                sidecar=_onnx_sidecar)

TASK = Task(name="forecast", prepare=prepare, load_prep=ForecastPrep.load, build_model=build_model,
            collate=collate_windows, forward=forward, loss=loss, predict=predict, score=score,
            load_inference=load_inference, write_predictions=write_predictions, baselines=baselines,
            file_baselines=file_baselines,
            metric_names=("mse", "rmse", "mae", "mase", "smape"), defaults=defaults, chance_loss=zero_forecast_loss,
            baseline=("mse", "naive", False), baseline_trivial=False,
            baseline_alternatives=("seasonal_naive",), baseline_metrics=("mase",), config_notes=CONFIG_NOTES,
            headline_score=negative_mse,
            describe_model=describe_model,
            metric_notes=("loss is in standardized units (the training objective); the other metrics are in the "
                          "data's own units",),
            long_sequence_advice=("a shorter window (the guide: 512-1024 steps at most): --set "
                                  "forecast.input_length=512",),
            search_advice=("a larger search budget (more candidates, longer runs): --set forecast.auto_budget=600",
                           "check forecast.seasonality (the season length) and forecast.horizon",
                           "forecast the change from the seasonal-naive forecast: --set forecast.residual=seasonal "
                           "(forecast.auto tries it unless forecast.residual or forecast.auto_keys was set)",
                           "if nothing beats it, the seasonal-naive forecast is the one to use for this series"),
            onnx=ONNX, title="time-series forecasting", hub_tasks=(None, "time-series-forecasting"),
            test_samples=forecast_panels)
