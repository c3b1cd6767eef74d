"""The season length a series' calendar implies, kept only where its history shows it.

Contract: `calendar_season(axis)` is the season the time step implies on a date axis (monthly 12,
quarterly 4, half-yearly 2, daily 7, hourly 24, a step that divides a day: the steps per day, up to
`MAX_SEASON`), or None (numeric times, yearly, weekly or irregular steps: no calendar season). `season_evidence`
measures whether history shows that season: the lag-m autocorrelation of the first differences
(differencing removes a trend, which would otherwise swamp the lag), pooled over every series and
target column, against the larger of 2/sqrt(n) (the usual 95% band of a sample autocorrelation) and
`MIN_AUTOCORRELATION`. It reads only the values it is given: the caller passes the span before test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnkit.data.time_axis import TimeAxis

MAX_SEASON = 96  # a day of quarter-hours; finer steps get no calendar season (windows of 3 days of 5-minute steps
# would cost the protocol search far more than their baseline is worth): set forecast.seasonality
MIN_AUTOCORRELATION = 0.2  # a lag-m autocorrelation of the changes below this is no season worth a model's input
_MONTHLY = {1: (12, "monthly"), 3: (4, "quarterly"), 6: (2, "half-yearly")}
_PER_DAY = {"D": 1, "h": 24, "m": 24 * 60, "s": 24 * 3600}
_NAMED_STEP = {("D", 1): "daily", ("h", 1): "hourly", ("m", 30): "half-hourly", ("m", 15): "quarter-hourly"}


def calendar_season(axis: TimeAxis) -> tuple[int, str] | None:
    """(season length in steps, the step in words) for a date axis whose step has a calendar season, else None."""
    if axis.kind != "date" or not axis.step or not float(axis.step).is_integer():
        return None
    step = int(axis.step)
    if axis.unit == "M":
        return _MONTHLY.get(step)
    per_day = _PER_DAY.get(axis.unit or "")
    if per_day is None or per_day % step:
        return None
    m = 7 if (axis.unit, step) == ("D", 1) else per_day // step  # daily: the week; finer: the day
    if not 2 <= m <= MAX_SEASON:
        return None
    words = {"h": "hour", "m": "minute", "s": "second"}
    return m, _NAMED_STEP.get((axis.unit, step), f"{step}-{words.get(axis.unit, 'day')} steps")


@dataclass(frozen=True)
class SeasonEvidence:
    season: int
    autocorrelation: float | None  # None: too little history (fewer than 3 seasons of changes in every series)
    threshold: float
    changes: int  # the first differences it pooled

    @property
    def shown(self) -> bool:
        return self.autocorrelation is not None and self.autocorrelation > self.threshold


def season_evidence(histories: list[np.ndarray], m: int) -> SeasonEvidence:
    """The pooled lag-`m` autocorrelation of the first differences of `histories` (each (T,) or (T, k)); series with
    fewer than 3*m changes are left out."""
    num = den = 0.0
    n = 0
    for h in histories:
        values = np.asarray(h, dtype=np.float64)
        for column in values.reshape(len(values), -1).T:
            d = np.diff(column[np.isfinite(column)])
            if len(d) < 3 * m:
                continue
            d = d - d.mean()
            num += float((d[m:] * d[:-m]).sum())
            den += float((d * d).sum())
            n += len(d)
    threshold = max(2 / math.sqrt(n), MIN_AUTOCORRELATION) if n else MIN_AUTOCORRELATION
    r = num / den if n and den > 0 else None
    return SeasonEvidence(m, r, threshold, n)
