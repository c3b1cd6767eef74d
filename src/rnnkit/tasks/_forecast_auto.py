"""`forecast.auto`: forecasting chooses its protocol by rolling-origin validation inside the training span.

What is searched: each of `forecast.input_length`, `forecast.transform`, `forecast.window_norm`,
`model.cell` and `forecast.residual` that neither the user (config file, --set) nor a built-in data set's protocol set
(`forecast.auto_keys` lists them; the forecasting default layer fills it). What is never read: the test
span. Each series is cut at its test start, and K = `ORIGINS` validation spans (each as long as the run's
own validation span) end at that cut, one span earlier, two spans earlier; each candidate is trained on what
precedes a span and scored on it (a series too short for an older origin sits that origin out). The
transform's candidates follow the data's domain (sqrt needs every value >= 0, log every value > 0: a
property of the data that `forecast.transform` checks on every value anyway, not a score). The residual's
candidates are none and the data's own baseline: `seasonal` (forecast the change from the seasonal naive
forecast) when m > 1 and every window of every origin holds one season, else `last` (the change from the naive
forecast); with a residual the untrained network forecasts that baseline exactly (`rnnkit.models.forecaster`).

Budget (successive halving within `forecast.auto_budget` seconds): round 1 trains every candidate briefly
(`ROUND1_EPOCHS`, or train.max_epochs when lower) at the newest origin, in a seeded random order; round 2
trains the best quarter (at least 3) longer (`ROUND2_EPOCHS`) at every origin, origin by origin. When the
budget runs out (a candidate cut short by it is not scored), round 1 ranks what it tried (the rest are
counted as not tried) and round 2 ranks by the origins every finalist completed; `budget_exhausted` says
so (the choice then depends on the machine's speed).

Ranking: mean validation MASE over the origins (MSE where a series' MASE scale is 0); the seasonal naive
forecast from the same origins is scored alike, and `beats_seasonal_naive` says whether the winner beat it.

This module names no other family module; `rnnkit.tasks.forecast` passes in what it needs (`Hooks`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset, length_array
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.data.timeseries import SeriesTable
from rnnkit.data.windows import Spans, fit_scalers, make_windows, mase_scale, window_origins
from rnnkit.training import distributed
from rnnkit.training.evaluation import evaluate
from rnnkit.training.loop import fit
from rnnkit.training.precision import resolve_device, resolve_precision

SEARCHABLE = ("input_length", "transform", "window_norm", "model.cell", "residual")
ORIGINS = 3  # validation spans ending at the test start, one span earlier, two spans earlier
ROUND1_EPOCHS, ROUND1_PATIENCE = 15, 5
ROUND2_EPOCHS, ROUND2_PATIENCE = 40, 10
FINALISTS = 0.25  # share of round 1's candidates that round 2 trains again (at least 3)


@dataclass
class Hooks:
    """What the search needs from the forecasting family: a prep for one candidate and fold
    (`make_prep(scalers, scales, transform)`, whose series_ids are the searched table's series in order: the
    windows carry series index i + 1 for `table.series[i]`), `build_model(cfg, prep)`, the family's `Task`, and
    `metrics(pred, true, scale)` (forecast_metrics)."""

    make_prep: Callable
    build_model: Callable
    task: object
    metrics: Callable


def searched_keys(cfg: C.Config) -> list[str]:
    """The keys `forecast.auto` chooses in this config ([] when it is off).

    `forecast.auto_keys` when set (the default layer of `config.resolve` sets it to the keys you did not
    set); for a config built without `resolve` (auto_keys null), the forecast keys still unset
    (input_length null, transform auto, window_norm null); model.cell only when listed."""
    f = cfg.forecast
    if not f.auto:
        return []
    if f.auto_keys is not None:
        return [k for k in SEARCHABLE if k in f.auto_keys]
    unset = {"input_length": f.input_length is None, "transform": f.transform == "auto",
             "window_norm": f.window_norm is None, "residual": f.residual == "auto"}
    return [k for k in SEARCHABLE if unset.get(k, False)]


def input_lengths(m: int, longest: int) -> list[int]:
    """Candidate windows: one, two and three seasons (m > 1), else 5, 11 and 24 steps; never longer than
    `longest` (what the median series' training span holds at the oldest origin), which replaces those above it."""
    base = [m, 2 * m, 3 * m] if m > 1 else [5, 11, 24]
    return sorted({max(1, min(v, longest)) for v in base})


def transforms(table: SeriesTable) -> list[str]:
    """none, and sqrt / log where every target value is in their domain (>= 0 / > 0)."""
    low = min(float(s.values.min()) for s in table.series)
    return ["none"] + (["sqrt"] if low >= 0 else []) + (["log"] if low > 0 else [])


def residuals(m: int, window: int) -> list[str]:
    """none, and the data's own baseline as the network's starting point: seasonal naive (`seasonal`) when there
    is a season (m > 1) and `window`, the shortest window any candidate trains on at any origin, holds one;
    else naive (`last`)."""
    return ["none", "seasonal" if m > 1 and window >= m else "last"]


def _describe(c: dict) -> str:
    return ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in c.items())


def _folds(table: SeriesTable, spans: list[Spans], horizon: int, floor: int) -> list[list[tuple[int, int, int] | None]]:
    """Per origin, per series: (train_end, val_end, series index) or None when the series is too short there."""
    out = []
    for k in range(ORIGINS):
        fold = []
        for i, sp in enumerate(spans):
            v = sp.test_start - sp.val_start
            val_end = sp.test_start - k * v
            train_end = val_end - v
            fold.append((train_end, val_end, i) if train_end >= floor + horizon and v >= horizon else None)
        if any(x is not None for x in fold):
            out.append(fold)
    return out


def choose(cfg: C.Config, table: SeriesTable, spans: list[Spans], searched: list[str], hooks: Hooks, *,
           floor: int, shortest: bool = False) -> dict:
    """Rank the candidates, set the winner on `cfg` (forecast.input_length / transform / window_norm,
    model.cell) and return the record for summary.json (data.auto).

    Window candidates are clipped to what the median series holds at the oldest origin (shorter series
    train on shorter windows); with `shortest` (forecast.short_series=error) to what the shortest holds."""
    f, m = cfg.forecast, cfg.forecast.seasonality or 1
    started = time.perf_counter()
    budget = float(f.auto_budget)
    deadline = started + budget
    folds = _folds(table, spans, f.horizon, floor)
    oldest = folds[-1]
    holds = sorted(x[0] - f.horizon for x in oldest if x is not None)
    longest = holds[0] if shortest else holds[len(holds) // 2]
    options = {"input_length": input_lengths(m, longest) if "input_length" in searched else [f.input_length],
               "transform": transforms(table) if "transform" in searched else [f.transform],
               "window_norm": [False, True] if "window_norm" in searched else [bool(f.window_norm)],
               "model.cell": ["lstm", "gru"] if "model.cell" in searched else [cfg.model.cell]}
    if f.residual == "seasonal" and "residual" not in searched:
        options["input_length"] = [v for v in options["input_length"] if v >= m] or [m]
    # the shortest window a candidate trains on: its input length, or less where a series' span is shorter
    shortest_window = min(min(options["input_length"]),
                          min(x[0] - f.horizon for fold in folds for x in fold if x is not None))
    options["residual"] = residuals(m, shortest_window) if "residual" in searched else [f.residual]
    grid = [dict(zip(options, combo, strict=True)) for combo in itertools.product(*options.values())]
    random.Random(cfg.train.seed).shuffle(grid)  # a budget cut leaves a uniform sample of the grid
    show = cfg.train.progress != "none"
    fixed = {k: (cfg.model.cell if k == "model.cell" else getattr(f, k)) for k in SEARCHABLE if k not in searched}
    if show:
        print(f"rnnkit: forecast.auto: choosing {', '.join(searched)} from {len(grid)} candidates by rolling-origin "
              f"validation at {len(folds)} origin(s) inside the training span (the test span is not read; budget "
              f"forecast.auto_budget={budget:g} s; set a key, or forecast.auto=false, to skip the search)",
              file=sys.stderr, flush=True)
    scores: dict[int, dict] = {}
    exhausted = False
    for i, cand in enumerate(grid):
        if time.perf_counter() > deadline and scores:
            exhausted = True
            break
        result = _train_and_score(cfg, table, spans, folds[0], cand, hooks, min(ROUND1_EPOCHS, cfg.train.max_epochs),
                                  ROUND1_PATIENCE, deadline)
        if result["cut"] and scores:  # stopped by the budget before it finished: not a fair score
            exhausted = True
            break
        scores[i] = {"folds": [result]}
    key = _rank_key()
    round1 = sorted(scores, key=lambda i: key(scores[i]["folds"]))
    finalists = round1[:max(3, math.ceil(FINALISTS * len(grid)))] if len(folds) > 1 or len(round1) > 1 else round1
    final: dict[int, list] = {i: [] for i in finalists}
    if exhausted:  # the budget ran out in round 1: its scores rank what was tried
        final = {}
    else:
        for fold in folds:
            for i in finalists:
                if time.perf_counter() > deadline:
                    exhausted = True
                    break
                result = _train_and_score(cfg, table, spans, fold, grid[i], hooks,
                                          min(ROUND2_EPOCHS, cfg.train.max_epochs), ROUND2_PATIENCE, deadline)
                if result["cut"]:
                    exhausted = True
                    break
                final[i].append(result)
            if exhausted:
                break
        done = min(len(v) for v in final.values())
        if done == 0:  # not one origin for every finalist: round 1 decides
            final = {}
        else:
            final = {i: v[:done] for i, v in final.items()}
    ranking = []
    for i in sorted(final, key=lambda i: key(final[i])):
        ranking.append(_row(grid[i], final[i], round_=2))
    for i in round1:
        if i not in final:
            ranking.append(_row(grid[i], scores[i]["folds"], round_=1))
    best = ranking[0]
    chosen = {k: best[k] for k in searched}
    apply(cfg, chosen)
    metric = best["metric"]
    snaive = best["seasonal_naive"]
    beats = best[f"val_{metric}"] < snaive[metric]
    record = {"by": "forecast.auto", "budget_key": "forecast.auto_budget", "searched": searched, "fixed": fixed,
              "chosen": chosen, "metric": metric,
              "origins": len(folds), "origin_times": _origin_times(table, spans, folds),
              "candidates": len(grid), "tried": len(scores), "not_tried": len(grid) - len(scores),
              "finalists": len(final), "budget_seconds": budget, "seconds": round(time.perf_counter() - started, 2),
              "budget_exhausted": exhausted, "beats_seasonal_naive": bool(beats),
              "val": {metric: best[f"val_{metric}"], "seasonal_naive": snaive}, "ranking": ranking}
    if show:
        runner = f"; runner-up {_describe({k: ranking[1][k] for k in searched})} {ranking[1]['val_' + metric]:.4g}" \
            if len(ranking) > 1 else ""
        print(f"rnnkit: forecast.auto chose {_describe(chosen)} (validation {metric} {best['val_' + metric]:.4g} "
              f"over {len(best['folds'])} origin(s), seasonal naive {snaive[metric]:.4g}{runner}; "
              f"{len(scores)} of {len(grid)} candidates tried in {record['seconds']:.0f} s"
              f"{_exhausted_words(exhausted, len(best['folds']), len(folds))}; full ranking in summary.json data.auto)",
              file=sys.stderr, flush=True)
        if not beats:
            print(f"rnnkit: note: forecast.auto: no candidate beat the seasonal naive forecast on validation "
                  f"({metric} {best['val_' + metric]:.4g} vs {snaive[metric]:.4g})", file=sys.stderr, flush=True)
    return record


def _exhausted_words(exhausted: bool, scored: int, origins: int) -> str:
    """What the budget cut: the longer round at every origin (its winner scored at fewer), or candidates."""
    if not exhausted:
        return ""
    if scored < origins:
        return (f", budget exhausted before the longer round at all {origins} origins (the choice rests on {scored}; "
                "a larger forecast.auto_budget gives it more)")
    return ", budget exhausted"


def apply(cfg: C.Config, chosen: dict) -> None:
    """Set a choice on `cfg` in place; `forecast.auto_keys = []`, so the saved config reproduces it without a search."""
    for k, v in chosen.items():
        if k == "model.cell":
            cfg.model.cell = v
        else:
            setattr(cfg.forecast, k, v)
    cfg.forecast.auto_keys = []


def choose_everywhere(cfg: C.Config, *args, **kwargs) -> dict:
    """`choose` on rank 0 only under torchrun, its record handed to every rank (the budget is wall-clock time,
    so ranks searching apart could choose apart); `choose` itself in a single process."""
    dist = distributed.current()
    if not dist.enabled:
        return choose(cfg, *args, **kwargs)
    record = dist.main_only(choose, cfg, *args, **kwargs)  # an error on rank 0 stops every rank
    apply(cfg, record["chosen"])
    return record


def _origin_times(table: SeriesTable, spans: list[Spans], folds) -> list[list[str]]:
    """First and last validation target time of each origin (of the first series that takes part in it)."""
    out = []
    for fold in folds:
        entry = next(x for x in fold if x is not None)
        train_end, val_end, i = entry
        s = table.series[i]
        out.append([table.axis.format(s.times[train_end]), table.axis.format(s.times[val_end - 1])])
    return out


def _rank_key() -> Callable:
    def key(folds: list[dict]) -> tuple:
        metric = "mase" if all(np.isfinite(x["mase"]) for x in folds) else "mse"
        value = float(np.mean([x[metric] for x in folds]))
        return (not np.isfinite(value), value)
    return key


def _row(cand: dict, folds: list[dict], round_: int) -> dict:
    metric = "mase" if all(np.isfinite(x["mase"]) for x in folds) else "mse"
    return {**cand, "metric": metric, "round": round_,
            "val_mase": float(np.mean([x["mase"] for x in folds])),
            "val_mse": float(np.mean([x["mse"] for x in folds])),
            "folds": [{k: round(v, 6) for k, v in x.items() if k in ("mase", "mse")} for x in folds],
            "epochs": [x["epochs"] for x in folds],
            "seasonal_naive": {k: float(np.mean([x["snaive"][k] for x in folds])) for k in ("mase", "mse")}}


class _Deadline:
    """Stops a candidate's training at the search's deadline (the epoch in progress ends first)."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def on_epoch_end(self, state, record) -> None:
        if time.perf_counter() > self.deadline:
            state.stop_reason = "auto_budget"


def _train_and_score(cfg: C.Config, table: SeriesTable, spans: list[Spans], fold, cand: dict, hooks: Hooks,
                     epochs: int, patience: int, deadline: float) -> dict:
    """Train one candidate on what precedes one origin's validation span; its metrics there (original units)."""
    f, m = cfg.forecast, cfg.forecast.seasonality or 1
    length, transform = int(cand["input_length"]), cand["transform"]
    parts = [(table.series[i], Spans(train_end, val_end, val_end), i + 1) for x in fold if x is not None
             for train_end, val_end, i in [x]]  # i + 1: the series' index in the prep's series_ids (see Hooks)
    sub = dataclasses.replace(table, series=[s for s, _, _ in parts])
    fold_spans = [sp for _, sp, _ in parts]
    scalers = fit_scalers(sub, fold_spans, transform)
    scales = {s.id: mase_scale(s.values[:sp.val_start], m) for s, sp, _ in parts}
    windows: dict[str, list] = {"train": [], "val": []}
    for s, sp, index in parts:
        own = min(length, sp.val_start - f.horizon)
        for split, (a, b) in (("train", (0, sp.val_start)), ("val", (sp.val_start, sp.test_start))):
            origins = window_origins(a, b, input_length=own, horizon=f.horizon, stride=f.stride)
            windows[split] += make_windows(s, scalers[s.id], origins, input_length=own, horizon=f.horizon,
                                           seasonality=m, scale=scales[s.id], transform=transform,
                                           series_index=index)
    prep = hooks.make_prep(scalers, scales, transform)
    trial = C.from_dict(cfg.to_dict())
    trial.forecast.input_length, trial.forecast.transform = length, transform
    trial.forecast.window_norm, trial.model.cell = bool(cand["window_norm"]), cand["model.cell"]
    trial.forecast.residual = cand["residual"]
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    precision = resolve_precision(cfg.train.precision, device)
    model = hooks.build_model(trial, prep).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.optim.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=cfg.optim.lr,
                                  betas=tuple(cfg.optim.betas))
    train_set, val_set = SequenceDataset(windows["train"]), SequenceDataset(windows["val"])
    sampler = BucketBatchSampler(length_array(train_set), cfg.data.batch_size, bucketing=cfg.data.bucketing,
                                 chunk_batches=cfg.data.bucket_chunk, shuffle=True, seed=cfg.train.seed)
    steps = math.ceil(len(sampler) / cfg.optim.accumulate)
    schedule = dict(base_lr=cfg.optim.lr, warmup_steps=round(cfg.optim.warmup_epochs * steps),
                    total_steps=epochs * steps, cooldown_steps=0, min_lr=cfg.optim.min_lr,
                    factor=cfg.optim.plateau_factor)
    result = fit(model, optimizer, train_set, val_set, hooks.task, sampler=sampler, schedule=schedule,
                 clip_norm=cfg.optim.clip_norm, accumulate=cfg.optim.accumulate, max_epochs=epochs,
                 patience=patience, plateau_patience=cfg.optim.plateau_patience, log_every=10 ** 9,
                 checkpoint_every=10 ** 9, precision=precision, device=device, callbacks=(_Deadline(deadline),),
                 summarize=lambda model, state: {"epochs": state.epoch, "cut": state.stop_reason == "auto_budget"})
    metrics, _ = evaluate(model, val_set, hooks.task, prep, trial, device=device, precision=precision)
    true = np.stack([ex.extra["raw_target"] for ex in val_set.examples])
    scale = np.stack([np.asarray(ex.extra["scale"], dtype=np.float64) for ex in val_set.examples])
    snaive = hooks.metrics(np.stack([ex.extra["snaive"] for ex in val_set.examples]), true, scale)
    return {"mase": metrics["mase"], "mse": metrics["mse"], "epochs": result["epochs"], "snaive": snaive,
            "cut": result["cut"]}
