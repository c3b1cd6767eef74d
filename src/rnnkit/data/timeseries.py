"""Time series: readers, the time axis, chronological splits, windows and per-series scaling.

Data flow (each step one function a test can call alone):

    read_series(file)        -> SeriesTable (validated: every bad row a Problem with file:line)
    split_points(series)     -> where validation and test start in each series (chronological)
    check_transform(series)  -> the values a variance-stabilising transform (sqrt, log) cannot take
    fit_scalers(series)      -> one z-score per series (of the transformed targets), training span only
    make_windows(series)     -> Examples: inputs (L, C) of history, target (H, K) of the future

Layout of a file: one row per time step; a time column; one or more target columns; optional
covariate columns (observed alongside the targets, used as past inputs only); optional series id
column for many series in one file (long format). Within a series the rows must be in increasing
time order with a regular step: duplicate or decreasing timestamps, missing steps (gaps), and
non-numeric, NaN or Inf values are errors that name the row (file:line), column, value, rule and
fix. The step is inferred (the most common difference between consecutive timestamps); numeric
times (1700, 1701...) and dates ("1949-01", "2020-03-05", "2020-03-05T10:00") are understood.

Bad-row policy: a skipped row inside a series would leave a gap, and a window across that gap
would pretend two distant steps are neighbours. So under ``data.bad_rows=skip`` the unit that
is skipped is the whole *series* holding a bad row (written to rejects.jsonl, counted against
``data.max_bad_fraction`` of all series), never a single row.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.collate import Example
from rnnkit.data.readers import (
    EXTENSIONS,
    ReadResult,
    Table,
    TableRow,
    load_table,
    parse_scalar,
)
from rnnkit.data.records import Record
from rnnkit.data.standardize import Standardizer
from rnnkit.data.validate import validate_splits
from rnnkit.errors import ConfigError, DataError, Problem, shorten

_DATE_UNITS = ("Y", "M", "D", "h", "m", "s")  # coarsest first
_UNIT_NAMES = {"Y": "year", "M": "month", "D": "day", "h": "hour", "m": "minute", "s": "second"}
_SORT_FIX = "sort the rows by time (within each series), e.g. `sort -t, -k1,1n`, or pandas sort_values"
_GAP_FIX = ("fill the missing steps (e.g. interpolate or carry the last value forward, and say so), or give the "
            "parts before and after the gap different series ids")


# --------------------------------------------------------------------------- the time axis


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
            return _as_number(value)
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


def _as_number(v: Any) -> float | None:
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
    if hasattr(v, "isoformat") and not isinstance(v, str):  # datetime/date/Timestamp from Parquet
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
    numbers = [_as_number(v) for v in values]
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


# --------------------------------------------------------------------------- series and reading


@dataclass
class Series:
    """One regular series, validated.

    Attributes:
        id: the series id ("" stands for the only series of a file without a series column).
        file: the file it was read from.
        lines: (N,) 1-based line (Parquet: row) of each step.
        times: (N,) positions on the table's `TimeAxis`, increasing by exactly `axis.step`.
        values: (N, K) float64 targets.
        covariates: (N, Q) float64 covariates (Q may be 0).
    """

    id: str
    file: str
    lines: np.ndarray
    times: np.ndarray
    values: np.ndarray
    covariates: np.ndarray

    def __len__(self) -> int:
        return int(self.times.shape[0])


@dataclass
class SeriesTable:
    """What `read_series` found: the good series, the axis, the column roles and a report."""

    series: list[Series]
    axis: TimeAxis
    time_column: str
    target_columns: list[str]
    covariate_columns: list[str]
    series_column: str | None
    report: dict = field(default_factory=dict)


def _problem(file: str, line: int | None, column: str | None, value: Any, rule: str, fix: str,
             sid: str | None = None) -> Problem:
    return Problem(file, line, column, shorten(value), rule, fix, sid)


def _load_python_array(p: Path, file: str, *, array_name: str, start: str, unit: str, time_column: str,
                       target: str) -> Table:
    """A numeric list literal assigned to `array_name` in a Python source file (parsed, never run).

    Each number keeps the line it is written on, so problems still name file:line. Times are
    generated: `start` plus one `unit` per element (e.g. start "1949-01", unit "M").
    """
    try:
        tree = ast.parse(p.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise DataError([_problem(file, None, None, file, f"cannot parse the Python file: {exc}",
                                  "reinstall the package that ships it")], header=f"cannot read {file}") from None
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == array_name for t in node.targets):
            found = next((n for n in ast.walk(node.value) if isinstance(n, ast.List)), None)
            break
    if found is None:
        raise DataError([_problem(file, None, None, array_name, f"no list literal assigned to {array_name!r}",
                                  "reinstall the package that ships the data")], header=f"cannot read {file}")
    first = np.datetime64(start, unit)
    rows = []
    for i, elt in enumerate(found.elts):
        try:
            value = ast.literal_eval(elt)
        except ValueError:
            value = ast.unparse(elt)
        rows.append(TableRow(elt.lineno, {time_column: str(first + i), target: value}, f"{ast.unparse(elt)}\n"))
    return Table([time_column, target], rows)


def _load_table(path: Path, fmt: str, options: dict) -> tuple[Table, bool]:
    file = str(path)
    if fmt == "auto":
        fmt = EXTENSIONS.get(path.suffix.lower(), "csv" if path.suffix.lower() != ".py" else "python_array")
    if not path.is_file():
        raise DataError([_problem(file, None, None, file, "file not found",
                                  "check the path (it is relative to the current directory)")],
                        header=f"cannot read {file}")
    if fmt in ("csv", "tsv", "jsonl", "parquet"):
        return load_table(path, file, fmt), fmt in ("csv", "tsv")  # (table, values arrive as text)
    if fmt == "python_array":
        return _load_python_array(path, file, **options), False
    raise ConfigError(f"data.format={fmt!r}: forecasting reads csv, tsv, jsonl or parquet files.")


def _numeric_column(table: Table, column: str) -> bool:
    cells = [r.fields.get(column) for r in table.rows[:50] if r.broken is None]
    filled = [c for c in cells if c is not None and str(c).strip()]
    return bool(filled) and sum(_as_number(c) is not None for c in filled) * 2 > len(filled)


def _resolve_columns(table: Table, file: str, time_column: str, target_columns: list[str] | None,
                     covariate_columns: list[str] | None, series_column: str | None) -> tuple[list[str], list[str]]:
    covariates = list(covariate_columns or [])
    if target_columns:
        targets = list(target_columns)
    else:
        special = {time_column, series_column, *covariates}
        targets = [c for c in table.columns if c not in special and _numeric_column(table, c)]
    missing = []
    for key, names in (("time_column", [time_column]), ("target_columns", targets),
                       ("covariate_columns", covariates), ("series_column", [series_column] if series_column else [])):
        for name in names:
            if name not in table.columns:
                found = ", ".join(repr(c) for c in table.columns)
                missing.append(_problem(file, None, name, name, f"column not found; columns found: {found}",
                                        f"set --set forecast.{key}=<column>, or rename the column"))
    if missing:
        raise DataError(missing, header=f"cannot read {file}")
    if not targets:
        raise DataError([_problem(file, None, None, ", ".join(table.columns), "no numeric target column found",
                                  "name the target with --set forecast.target_columns=COLUMN")],
                        header=f"cannot read {file}")
    overlap = set(targets) & set(covariates)
    if overlap:
        raise ConfigError(f"forecast.target_columns and forecast.covariate_columns share {sorted(overlap)}; a column "
                          "is either forecast or used as an input covariate.")
    return targets, covariates


def _series_issues(sid: str, rows: list[TableRow], positions: np.ndarray, axis: TimeAxis, time_column: str,
                   file: str) -> list[Problem]:
    """Duplicate, decreasing and missing timestamps within one series, in file order."""
    issues = []
    step = axis.step
    latest = None  # index of the latest time so far: a row out of order is reported once, not again as a gap
    for i in range(len(rows)):
        b = positions[i]
        if not np.isfinite(b):
            continue
        if latest is None:
            latest = i
            continue
        a, j = positions[latest], latest
        here, prev = rows[i].fields.get(time_column), rows[j].fields.get(time_column)
        where = f"series {sid!r}, " if sid else ""
        if b == a:
            issues.append(_problem(file, rows[i].line, time_column, here,
                                   f"duplicate timestamp ({where}the same time as line {rows[j].line})",
                                   "remove the duplicate row, or aggregate the rows of one time into one", sid))
            continue
        if b < a:
            issues.append(_problem(file, rows[i].line, time_column, here,
                                   f"timestamps out of order ({where}earlier than {prev!r} on line {rows[j].line})",
                                   _SORT_FIX, sid))
            continue
        latest = i
        k = (b - a) / step
        if abs(k - round(k)) > 1e-6:
            issues.append(_problem(file, rows[i].line, time_column, here,
                                   f"irregular spacing ({where}{b - a:g} after {prev!r} on line "
                                   f"{rows[j].line}; the series step is {axis.describe()})",
                                   "resample the series to a regular step", sid))
        elif round(k) > 1:
            first, last = axis.format(a + step), axis.format(b - step)
            gap = first if round(k) == 2 else f"{first} .. {last}"
            issues.append(_problem(file, rows[i].line, time_column, here,
                                   f"gap: {round(k) - 1} missing step(s) ({gap}) between line {rows[j].line} "
                                   f"({prev!r}) and this row; {where}{axis.describe()}", _GAP_FIX, sid))
    return issues


def read_series(path: str | Path, *, format: str = "auto", time_column: str = "time",
                target_columns: list[str] | None = None, covariate_columns: list[str] | None = None,
                series_column: str | None = None, bad_rows: str = "error", max_bad_fraction: float = 0.01,
                rejects_path: Path | None = None, axis: TimeAxis | None = None,
                python_array: dict | None = None) -> SeriesTable:
    """Read and validate a time-series file.

    Args:
        path: CSV/TSV/JSONL/Parquet file (or a Python source file with `python_array` options,
            for built-in data shipped as a literal).
        time_column, target_columns, covariate_columns, series_column: column roles. Targets
            default to every numeric column that has no other role.
        bad_rows: "error" (every problem raises one DataError) or "skip" (series with a bad
            row are left out whole and written to `rejects_path`, see the module docstring).
        axis: the time axis to read times on (for inference files: the training axis);
            inferred from the file when None.

    Raises:
        DataError: missing columns, unreadable times, duplicate/decreasing timestamps, gaps,
            irregular steps, non-numeric/NaN/Inf values; each problem with file:line.
    """
    path = Path(path)
    file = str(path)
    table, from_text = _load_table(path, format, python_array or {})
    targets, covariates = _resolve_columns(table, file, time_column, target_columns, covariate_columns, series_column)
    loose: list[tuple[TableRow, list[Problem]]] = []  # rows that belong to no series
    groups: dict[str, list[TableRow]] = {}
    for row in table.rows:
        if row.broken is not None:
            loose.append((row, [_problem(file, row.line, row.broken[0], row.broken[1], row.broken[2],
                                         row.broken[3])]))
            continue
        sid = ""
        if series_column:
            v = row.fields.get(series_column)
            if v is None or not str(v).strip():
                loose.append((row, [_problem(file, row.line, series_column, v, "missing series id",
                                             "give the row the id of its series")]))
                continue
            sid = str(v).strip()
        groups.setdefault(sid, []).append(row)

    all_rows = [r for rows in groups.values() for r in rows]
    inferred, positions, bad_time = infer_axis([r.fields.get(time_column) for r in all_rows])
    if axis is None:
        axis = inferred
    else:
        positions = np.array([np.nan if (x := axis.parse(r.fields.get(time_column))) is None else x
                              for r in all_rows])
        bad_time = [i for i, x in enumerate(positions) if not np.isfinite(x)]
    bad_time_set = set(bad_time)
    pos_of: dict[int, float] = {}
    k = 0
    problems_of: dict[str, list[Problem]] = {sid: [] for sid in groups}
    for sid, rows in groups.items():
        for r in rows:
            pos_of[id(r)] = positions[k]
            if k in bad_time_set:
                want = "a number" if axis.kind == "number" else "a date like 2020-01-31 or 2020-01"
                problems_of[sid].append(_problem(file, r.line, time_column, r.fields.get(time_column),
                                                 f"unreadable time: expected {want} (the column holds "
                                                 f"{axis.describe() if axis.step else axis.kind + 's'})",
                                                 "write every time in one format", sid))
            k += 1
    if not axis.step:
        axis.step = infer_step([np.array([pos_of[id(r)] for r in rows]) for rows in groups.values()])

    units: list[tuple[str, list[TableRow], Series | None]] = []
    for sid, rows in groups.items():
        probs = problems_of[sid]
        pos = np.array([pos_of[id(r)] for r in rows])
        probs += _series_issues(sid, rows, pos, axis, time_column, file)
        cols = targets + covariates
        vals = np.zeros((len(rows), len(cols)), dtype=np.float64)
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                x, issue = parse_scalar(c, r.fields.get(c), from_text)
                if issue is not None:
                    probs.append(_problem(file, r.line, issue[0], issue[1], issue[2], issue[3], sid))
                else:
                    vals[i, j] = x
        series = None
        if not probs:
            series = Series(sid, file, np.array([r.line for r in rows]), pos, vals[:, :len(targets)],
                            vals[:, len(targets):])
        units.append((sid, rows, series))

    # the bad-row policy, applied by the shared validator: one "row" per series
    records, problems, bad = [], [], {}
    rids = {}
    for sid, rows, series in units:
        rid = f"{path.name}:{sid}" if sid else path.name
        if series is None:
            bad[rows[0].line] = "".join(r.raw if r.raw.endswith("\n") else r.raw + "\n" for r in rows)[:2000]
            rids[rows[0].line] = rid
            problems += [Problem(p.file, p.line, p.column, p.value, p.rule, p.fix, rid)
                         for p in sorted(problems_of[sid], key=lambda p: p.line)]
        else:
            records.append(Record(rid, file, rows[0].line, values=series.values.astype(np.float32),
                                  extra={"series": series}))
    for row, probs in loose:
        bad[row.line] = row.raw[:2000]
        rids[row.line] = f"{path.name}:{row.line}"
        problems += [Problem(p.file, p.line, p.column, p.value, p.rule, p.fix, rids[row.line]) for p in probs]
    result = ReadResult(records, problems, len(units) + len(loose), bad, rids)
    validated = validate_splits({"series": result}, policy=bad_rows, max_bad_fraction=max_bad_fraction,
                                rejects_path=rejects_path, check_labels=False)
    good = [r.extra["series"] for r in validated.splits["series"]]
    if not good:
        raise DataError([], header=f"{file}: no usable series left")
    report = {"file": file, "rows": len(table.rows), "series": len(good), "rejected_series": validated.rejected,
              "rejects_file": validated.report.get("rejects_file"), "time_axis": axis.describe(),
              "target_columns": targets, "covariate_columns": covariates}
    return SeriesTable(good, axis, time_column, targets, covariates, series_column, report)


# --------------------------------------------------------------------------- chronological splits


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
