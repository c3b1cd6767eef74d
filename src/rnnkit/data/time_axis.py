"""The time axis of a series: time values (numbers or ISO dates) <-> positions, and the regular step.

Contract: `infer_axis` decides how a time column is read (numbers when most cells are numbers,
else dates on the coarsest calendar unit in which every date is exact; all month ends count as
monthly). Dates are ISO (2020-01-31, 2020-01, 2020-01-31T12:00), quarters (2020-Q1, 2020Q1, 2020 Q1,
Q1 2020: the quarter's first month) or months by English name (Jan 2020, January 2020, 2020-Jan); a
column of quarters or named months is written back in its own style. It returns the positions, NaN
where a cell cannot be read; `infer_step` is the most common positive difference between consecutive
positions. `TimeAxis.parse` / `format` convert one value either way, and `to_dict` / `from_dict` save
the axis with a model. Nothing here raises for bad data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_DATE_UNITS = ("Y", "M", "D", "h", "m", "s")  # coarsest first
_UNIT_NAMES = {"Y": "year", "M": "month", "D": "day", "h": "hour", "m": "minute", "s": "second"}
# what an unreadable time column is told it may hold
FORMATS = ("numbers (1, 2, 3 or 1980, 1981)", "ISO dates (2020-01-31, 2020-01, 2020-01-31T12:00)",
           "quarters (2020-Q1, 2020Q1, 2020 Q1)", "months by name (Jan 2020, January 2020)")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")
_QUARTER = re.compile(r"(?P<y>\d{4})(?P<sep>[-/ ]?)[Qq](?P<q>[1-4])|[Qq](?P<q2>[1-4])(?P<sep2>[-/ ])(?P<y2>\d{4})")
_NAMED = re.compile(r"(?P<m>[A-Za-z]{3,9})\.?(?P<sep>[-/ ])(?P<y>\d{4})"
                    r"|(?P<y2>\d{4})(?P<sep2>[-/ ])(?P<m2>[A-Za-z]{3,9})")


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
        text_style: dates written as quarters or month names: the template they are printed back with
            ("{y}-Q{q}", "{mon} {y}", "{month} {y}", ...); None for ISO dates.
    """

    kind: str
    step: float
    unit: str | None = None
    text_unit: str | None = None
    month_end: bool = False
    text_style: str | None = None

    @property
    def sorts_as_text(self) -> bool:
        """Times written this way sort in time order as text (ISO dates, 1980-Q1), unlike month names ('Apr 1950'
        before 'Jan 1949') or a quarter written first ('Q1 1981' before 'Q2 1980'). Numbers sort as numbers."""
        style = self.text_style
        return self.kind == "date" and (style is None or (style.startswith("{y}") and "{mon" not in style))

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
        if self.text_style:
            months = int(d.astype("datetime64[M]").astype(np.int64))
            y, m = 1970 + months // 12, months % 12 + 1
            name = _MONTH_NAMES[m - 1].capitalize()
            return self.text_style.format(y=y, q=(m - 1) // 3 + 1, mon=name[:3], month=name)
        if self.month_end:
            d = (d + 1).astype("datetime64[D]") - 1
        return str(d.astype(f"datetime64[{self.text_unit or self.unit}]"))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step, "unit": self.unit, "text_unit": self.text_unit,
                "month_end": self.month_end, "text_style": self.text_style}

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
        styled = _styled_date(text)
        return None if styled is None else styled[0]
    return None if np.isnat(d) else d


def _styled_date(text: str) -> tuple[np.datetime64, str] | None:
    """A quarter (2020-Q1: its first month) or a month by name (Jan 2020) -> (month, the template that writes it
    back), or None."""
    if q := _QUARTER.fullmatch(text):
        if q["y"]:
            y, n, style = q["y"], q["q"], "{y}" + q["sep"] + "Q{q}"
        else:
            y, n, style = q["y2"], q["q2"], "Q{q}" + q["sep2"] + "{y}"
        return np.datetime64(f"{y}-{3 * (int(n) - 1) + 1:02d}"), style
    if named := _NAMED.fullmatch(text):
        word, y = (named["m"], named["y"]) if named["m"] else (named["m2"], named["y2"])
        word = word.lower()
        month = next((i for i, full in enumerate(_MONTH_NAMES, 1) if full.startswith(word)), None)
        if month is None:
            return None
        token = "{month}" if len(word) > 3 else "{mon}"
        style = token + named["sep"] + "{y}" if named["m"] else "{y}" + named["sep2"] + token
        return np.datetime64(f"{y}-{month:02d}"), style
    return None


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
    # quarters or month names: printed back in the column's commonest style
    styles = Counter(st[1] for v in values if isinstance(v, str) and (st := _styled_date(v.strip())) is not None)
    style = max(styles, key=lambda k: (styles[k], "{month}" in k)) if styles else None
    axis = TimeAxis("date", 0.0, unit=unit, text_unit=text_unit, month_end=month_end, text_style=style)
    pos = np.full(len(values), np.nan)
    idx = [i for i, d in enumerate(dates) if d is not None]
    pos[idx] = _date_position(arr, unit, month_end)
    return axis, pos, bad


def _unit_rank_fine(u: str) -> int:
    order = {"Y": 0, "M": 1, "W": 2, "D": 3, "h": 4, "m": 5, "s": 6, "ms": 7, "us": 8, "ns": 9}
    return -order.get(u, 10)  # min() of the negated rank = the finest unit


def infer_step(position_lists: list[np.ndarray]) -> float:
    """The most common positive difference between consecutive times, in time order (rows out of order do not
    make up a step; ties: the smaller)."""
    diffs: Counter = Counter()
    for pos in position_lists:
        d = np.diff(np.sort(pos[np.isfinite(pos)]))
        diffs.update(float(f"{x:.10g}") for x in d if x > 0)
    if not diffs:
        return 1.0
    return min(diffs, key=lambda s: (-diffs[s], s))
