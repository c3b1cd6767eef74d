"""The time axis of a series: time values (numbers or ISO dates) <-> positions, and the regular step.

Contract: `infer_axis` decides how a time column is read (numbers when most cells are numbers,
else ISO dates on the coarsest calendar unit in which every date is exact; all month ends count as
monthly) and returns the positions, NaN where a cell cannot be read; `infer_step` is the most
common positive difference between consecutive positions. `TimeAxis.parse` / `format` convert one
value either way, and `to_dict` / `from_dict` save the axis with a model. Nothing here raises for
bad data.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_DATE_UNITS = ("Y", "M", "D", "h", "m", "s")  # coarsest first
_UNIT_NAMES = {"Y": "year", "M": "month", "D": "day", "h": "hour", "m": "minute", "s": "second"}


@dataclass
class TimeAxis:
    """How time values map to numbers and back.

    Attributes:
        kind: "number" (times are plain numbers) or "date" (calendar times).
        unit: for dates, the numpy datetime unit the series is regular in ("M", "D", ...);
            positions are integer counts of it since 1970. None for numbers.
        step: the regular distance between consecutive steps, in positions.
        text_unit: for dates, the unit the file wrote its times in (a monthly series written as
            "1949-01-01" is printed back the same way).
        month_end: dates are month ends ("1949-01-31"): regular in months, printed as month ends.
    """

    kind: str
    step: float
    unit: str | None = None
    text_unit: str | None = None
    month_end: bool = False

    def describe(self) -> str:
        if self.kind == "number":
            return f"numeric times, step {self.step:g}"
        name = _UNIT_NAMES[self.unit]
        return f"dates, step {self.step:g} {name}{'s' if self.step != 1 else ''}"

    def parse(self, value: Any) -> float | None:
        """One time value -> its position on this axis, or None when it cannot be read."""
        if self.kind == "number":
            return as_number(value)
        d = _as_date(value)
        if d is None:
            return None
        return _date_position(np.array([d]), self.unit, self.month_end)[0]

    def format(self, position: float) -> str:
        """A position -> the time as the file would write it."""
        if self.kind == "number":
            return f"{position:.0f}" if float(position).is_integer() else f"{position:g}"
        d = np.datetime64(int(round(position)), self.unit)
        if self.month_end:
            d = (d + 1).astype("datetime64[D]") - 1
        return str(d.astype(f"datetime64[{self.text_unit or self.unit}]"))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step, "unit": self.unit, "text_unit": self.text_unit,
                "month_end": self.month_end}

    @classmethod
    def from_dict(cls, d: dict) -> TimeAxis:
        return cls(**d)


def as_number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _as_date(v: Any) -> np.datetime64 | None:
    if v is None or isinstance(v, (bool, int, float)):
        return None
    text = str(v).strip()
    if not text:
        return None
    if hasattr(v, "isoformat") and not isinstance(v, str):  # datetime/date/Timestamp from Parquet or Arrow
        text = v.isoformat()
    try:
        d = np.datetime64(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError:
        return None
    return None if np.isnat(d) else d


def _date_position(dates: np.ndarray, unit: str, month_end: bool) -> np.ndarray:
    """Integer count of `unit` since 1970 for each date (month ends count as their month)."""
    if month_end:
        return dates.astype("datetime64[M]").astype(np.int64).astype(np.float64)
    return dates.astype(f"datetime64[{unit}]").astype(np.int64).astype(np.float64)


def infer_axis(values: list[Any]) -> tuple[TimeAxis, np.ndarray, list[int]]:
    """Decide how to read a time column and read it.

    Numbers win when most cells are numbers; otherwise cells are read as ISO dates and the
    axis unit is the coarsest calendar unit in which every date is exact (dates that are all
    month ends count as monthly).

    Returns:
        (axis with step 0 (set by `infer_step`), positions (NaN where unreadable), indices of
        the unreadable cells).
    """
    numbers = [as_number(v) for v in values]
    if sum(x is not None for x in numbers) * 2 >= len(values):
        bad = [i for i, x in enumerate(numbers) if x is None]
        pos = np.array([np.nan if x is None else x for x in numbers], dtype=np.float64)
        return TimeAxis("number", 0.0), pos, bad
    dates = [_as_date(v) for v in values]
    bad = [i for i, d in enumerate(dates) if d is None]
    good = [d for d in dates if d is not None]
    if not good:
        return TimeAxis("number", 0.0), np.full(len(values), np.nan), list(range(len(values)))
    text_unit = min((np.datetime_data(d.dtype)[0] for d in good), key=_unit_rank_fine)
    arr = np.array(good, dtype="datetime64[s]")
    unit = "s"
    for u in _DATE_UNITS:
        if (arr.astype(f"datetime64[{u}]").astype("datetime64[s]") == arr).all():
            unit = u
            break
    month_end = False
    if unit == "D":
        days = arr.astype("datetime64[D]")
        if ((days + 1).astype("datetime64[M]") != days.astype("datetime64[M]")).all():
            month_end, unit = True, "M"
    axis = TimeAxis("date", 0.0, unit=unit, text_unit=text_unit, month_end=month_end)
    pos = np.full(len(values), np.nan)
    idx = [i for i, d in enumerate(dates) if d is not None]
    pos[idx] = _date_position(arr, unit, month_end)
    return axis, pos, bad


def _unit_rank_fine(u: str) -> int:
    order = {"Y": 0, "M": 1, "W": 2, "D": 3, "h": 4, "m": 5, "s": 6, "ms": 7, "us": 8, "ns": 9}
    return -order.get(u, 10)  # min() of the negated rank = the finest unit


def infer_step(position_lists: list[np.ndarray]) -> float:
    """The most common positive difference between consecutive times (ties: the smaller)."""
    diffs: Counter = Counter()
    for pos in position_lists:
        d = np.diff(pos[np.isfinite(pos)])
        diffs.update(float(f"{x:.10g}") for x in d if x > 0)
    if not diffs:
        return 1.0
    return min(diffs, key=lambda s: (-diffs[s], s))
