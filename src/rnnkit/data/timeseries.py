"""Time series: reading and validating a time-series file into regular series.

    read_series(file)        -> SeriesTable (validated: every bad row a Problem with file:line)

What follows (chronological splits, transforms, scaling, windows) is in `rnnkit.data.windows`;
how time values are read is in `rnnkit.data.time_axis`.

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
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.cells import parse_scalar
from rnnkit.data.records import ReadResult, Record
from rnnkit.data.tables import EXTENSIONS, TABLE_FORMATS, Table, TableRow, load_table
from rnnkit.data.time_axis import FORMATS, TimeAxis, as_number, infer_axis, infer_step
from rnnkit.data.validate import validate_splits
from rnnkit.errors import ConfigError, DataError, Problem, shorten

_GAP_FIX = ("fill the missing steps (e.g. interpolate or carry the last value forward, and say so), or give the "
            "parts before and after the gap different series ids")


@dataclass
class Series:
    """One regular series, validated.

    Attributes:
        id: the series id ("" stands for the only series of a file without a series column).
        file: the file it was read from.
        lines: (N,) 1-based line (Parquet, Arrow: row) of each step.
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
    return Problem(file, line, column, None if value is None else shorten(value), rule, fix, sid)


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
    if fmt in TABLE_FORMATS:
        return load_table(path, file, fmt), fmt in ("csv", "tsv")  # (table, values arrive as text)
    if fmt == "python_array":
        return _load_python_array(path, file, **options), False
    raise ConfigError(f"data.format={fmt!r}: forecasting reads csv, tsv, jsonl, parquet or arrow files.")


def _numeric_column(table: Table, column: str) -> bool:
    cells = [r.fields.get(column) for r in table.rows[:50] if r.broken is None]
    filled = [c for c in cells if c is not None and str(c).strip()]
    return bool(filled) and sum(as_number(c) is not None for c in filled) * 2 > len(filled)


def _resolve_columns(table: Table, file: str, time_column: str, target_columns: list[str] | None,
                     covariate_columns: list[str] | None, series_column: str | None,
                     trained: bool = False) -> tuple[list[str], list[str]]:
    """The target and covariate columns; every named column must be there (`trained`: the roles are a trained
    model's, which no --set changes: the fix is to rename the file's column)."""
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
                fix = (f"rename the file's column to {name!r}: the model reads column {name!r} "
                       f"(forecast.{key} when it was trained)" if trained else
                       f"set --set forecast.{key}=<column>, or rename the column")
                missing.append(_problem(file, None, name, None, f"column not found; columns found: {found}", fix))
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


def _sort_fix(table: Table, file: str, time_column: str, series_column: str | None, axis: TimeAxis) -> str:
    """How to sort this file by (series and) time: a `sort` line on the columns' own positions for CSV/TSV with a
    header and no quoted fields, and the pandas call; for times that do not sort as text (quarters, month names:
    'Apr 1950' before 'Jan 1949'), the ISO rewrite that does."""
    numeric = axis.kind == "number"
    keys = [c for c in (series_column, time_column) if c]
    within = " within each series" if series_column else ""
    if axis.kind == "date" and not axis.sorts_as_text:
        later, earlier = next((a, b) for a, b in ((375, 360), (372, 363), (363, 360))  # months since 1970
                              if axis.format(a) < axis.format(b))
        return (f"sort the rows by time{within}: these times do not sort as text (as text {axis.format(later)!r} "
                f"comes before {axis.format(earlier)!r}); rewrite them as ISO months ({axis.format(earlier)} as "
                f"{np.datetime64(earlier, 'M')}), which sort as text, then sort on them (`sort`, or pandas "
                f"`df.sort_values({keys if len(keys) > 1 else keys[0]!r})`)")
    how = f"pandas `df.sort_values({keys[0]!r})`" if len(keys) == 1 else f"pandas `df.sort_values({keys!r})`"
    quoted = any('"' in r.raw for r in table.rows)  # `sort -t,` splits inside quoted fields ("US Steel, Inc.")
    if table.delimiter is not None and table.header_line == 1 and not quoted:
        flags = " ".join(f"-k{i},{i}{'n' if c == time_column and numeric else ''}"
                         for c in keys for i in [table.columns.index(c) + 1])
        sep = "$'\\t'" if table.delimiter == "\t" else shlex.quote(table.delimiter)
        f = shlex.quote(file)
        how = f"`(head -n 1 {f} && tail -n +2 {f} | sort -s -t{sep} {flags}) > sorted{Path(file).suffix}`, or {how}"
    more = ("; if the file holds several series one after another, give each row its series id in a column and "
            "name it with --set forecast.series_column=COLUMN") if not series_column else ""
    return f"sort the rows by time{within}, e.g. {how}{more}"


def _columns_as_ids(table: Table, rows: list[TableRow], time_column: str):
    """(column, its stripped cell per row) for every column but the time: the candidates for the series ids."""
    for c in table.columns:
        if c != time_column:
            yield c, [str(r.fields.get(c, "")).strip() for r in rows]


def _several_series(table: Table, file: str, rows: list[TableRow], positions: np.ndarray, time_column: str,
                    problems: list[Problem], axis: TimeAxis) -> DataError | None:
    """No series column, and the times start again: a column whose value changes where they do (and that with the
    time tells every row apart) holds the series ids. The row problems would each say 'out of order' or
    'duplicate'; one problem naming that column and forecast.series_column says what is wrong."""
    if not any(("out of order" in p.rule or "duplicate timestamp" in p.rule) for p in problems):
        return None
    back = next((i for i in range(1, len(rows)) if positions[i] <= positions[i - 1]), None)
    if back is None:
        return None
    found = []
    for c, ids in _columns_as_ids(table, rows, time_column):
        distinct = set(ids)
        # a value seen once is no series (a duplicate row with a flag that differs), however the times run
        if not 2 <= len(distinct) <= len(rows) // 2 or ids[back] == ids[back - 1] or min(Counter(ids).values()) < 2:
            continue
        latest: dict[str, float] = {}
        ok = True
        for sid, t in zip(ids, positions, strict=True):
            if not sid or (sid in latest and not t > latest[sid]):
                ok = False
                break
            latest[sid] = t
        if ok:
            found.append((len(distinct), c, ids))
    if not found:
        return _interleaved_series(table, file, rows, positions, time_column, axis)
    n, column, ids = min(found, key=lambda f: f[0])
    a, b = rows[back - 1], rows[back]
    others = [c for _, c, _ in sorted(found) if c != column]
    also = f" (or {', '.join(repr(c) for c in others)})" if others else ""
    problem = _problem(file, b.line, column, ids[back],
                       f"the times start again on line {b.line} ({b.fields.get(time_column)!r} after "
                       f"{a.fields.get(time_column)!r} on line {a.line}) where column {column!r} changes from "
                       f"{ids[back - 1]!r} to {ids[back]!r}: the file holds {n} series, and no series column is named",
                       f"name the column that tells the series apart: --set forecast.series_column={column}{also}")
    return DataError([problem], header=f"cannot read {file}: several series in one file")


def _interleaved_series(table: Table, file: str, rows: list[TableRow], positions: np.ndarray, time_column: str,
                        axis: TimeAxis) -> DataError | None:
    """Several series' rows mixed together (shuffled, or sorted by time across series) and no series column: a
    time occurs more than once, and a column with few values tells every row apart with the time. One problem
    naming it, and the sort within each series the rows will still need, instead of a gap or an out-of-order
    line per row."""
    seen: dict[float, int] = {}
    twice = next(((seen[t], i) for i, t in enumerate(positions) if np.isfinite(t) and seen.setdefault(t, i) != i),
                 None)
    finite = positions[np.isfinite(positions)]
    # a duplicate row or two is a duplicate; several series' rows share their times by the dozen
    if twice is None or len(np.unique(finite)) > (1 - INTERLEAVED_SHARE) * len(finite):
        return None
    found = []
    for c, ids in _columns_as_ids(table, rows, time_column):
        pairs = set(zip(ids, positions.tolist(), strict=True))
        if all(ids) and 2 <= len(set(ids)) <= len(rows) // 2 and len(pairs) == len(rows):
            found.append((len(set(ids)), c, ids))
    if not found:
        return None
    n, column, ids = min(found, key=lambda f: f[0])  # the fewest values: ids, not a measurement that never repeats
    i, j = twice
    problem = _problem(file, rows[j].line, column, ids[j],
                       f"the time {rows[j].fields.get(time_column)!r} occurs on lines {rows[i].line} and "
                       f"{rows[j].line}, where column {column!r} is {ids[i]!r} and {ids[j]!r}: the file holds {n} "
                       "series with their rows mixed together, and no series column is named",
                       f"name the column that tells the series apart: --set forecast.series_column={column}; "
                       f"then {_sort_fix(table, file, time_column, column, axis)}")
    return DataError([problem], header=f"cannot read {file}: several series in one file")


INTERLEAVED_SHARE = 0.25  # at least this share of the rows repeat another row's time: several series mixed
UNSORTED_ROWS = 3  # more rows than this out of order in one series: one problem for the series, not one a row


def _series_issues(sid: str, rows: list[TableRow], positions: np.ndarray, axis: TimeAxis, time_column: str,
                   file: str, sort_fix: str) -> list[Problem]:
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
                                   sort_fix, sid))
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
    disorder = [p for p in issues if "out of order" in p.rule]
    if len(disorder) > UNSORTED_ROWS:  # rows in no order: one problem; its gaps and irregular steps are the order's
        where = f"series {sid!r}: " if sid else ""
        first = disorder[0]
        return [_problem(file, first.line, time_column, first.value,
                         f"rows not in time order ({where}{len(disorder)} of {len(rows)} rows come earlier than a "
                         f"row above them, the first on this line; sorted, the times are {axis.describe()})",
                         sort_fix, sid),
                *[p for p in issues if "duplicate timestamp" in p.rule]]
    return issues


def read_series(path: str | Path, *, format: str = "auto", time_column: str = "time",
                target_columns: list[str] | None = None, covariate_columns: list[str] | None = None,
                series_column: str | None = None, bad_rows: str = "error", max_bad_fraction: float = 0.01,
                rejects_path: Path | None = None, axis: TimeAxis | None = None,
                python_array: dict | None = None) -> SeriesTable:
    """Read and validate a time-series file.

    Args:
        path: CSV/TSV/JSONL/Parquet/Arrow IPC file (or a Python source file with `python_array` options,
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
    targets, covariates = _resolve_columns(table, file, time_column, target_columns, covariate_columns, series_column,
                                           trained=axis is not None)
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
    expected = f"the model's ({axis.describe()})" if axis is not None else None
    if axis is None:
        axis = inferred
    else:
        positions = np.array([np.nan if (x := axis.parse(r.fields.get(time_column))) is None else x
                              for r in all_rows])
        bad_time = [i for i, x in enumerate(positions) if not np.isfinite(x)]
    if all_rows and len(bad_time) == len(all_rows):  # no time reads at all: one problem, not one per row
        first = all_rows[0]
        raise DataError([_problem(file, first.line, time_column, first.fields.get(time_column),
                                  f"none of the {len(all_rows)} times in column {time_column!r} reads as a time",
                                  "write the times as " + (expected or ", ".join(FORMATS[:-1]) + " or " + FORMATS[-1])
                                  + " (pandas: `df[col] = pd.to_datetime(df[col], format=...).dt.strftime("
                                  "'%Y-%m-%d')`), or name another column with --set forecast.time_column=COLUMN")],
                        header=f"cannot read {file}")
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
    sort_fix = _sort_fix(table, file, time_column, series_column, axis)
    for sid, rows in groups.items():
        probs = problems_of[sid]
        pos = np.array([pos_of[id(r)] for r in rows])
        probs += _series_issues(sid, rows, pos, axis, time_column, file, sort_fix)
        if not series_column and (several := _several_series(table, file, rows, pos, time_column, probs, axis)):
            raise several
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
                                rejects_path=rejects_path, check_labels=False, unit=("series", "series"))
    good = [r.extra["series"] for r in validated.splits["series"]]
    if not good:
        raise DataError([], header=f"{file}: no usable series left")
    roles = {time_column, series_column, *targets, *covariates}
    report = {"file": file, "rows": len(table.rows), "series": len(good), "rejected_series": validated.rejected,
              "rejects_file": validated.report.get("rejects_file"), "time_axis": axis.describe(),
              "target_columns": targets, "covariate_columns": covariates,
              # numeric columns with no role: not read into the model (said, not silently dropped)
              "unused_numeric_columns": [c for c in table.columns if c not in roles and _numeric_column(table, c)]}
    return SeriesTable(good, axis, time_column, targets, covariates, series_column, report)
