"""Cells: raw cell values -> checked float32 numbers, or the issues that reject them.

Contract: nothing here raises for bad data. Each function returns a value, or `Issue`s (column,
value, rule, fix) that the reader turns into `Problem`s once it knows the row's line and record
id. `parse_steps` reads a JSON list of steps into a (T, C) float32 array, `check_values` checks a
(T, C) grid of raw cells, `parse_scalar` one cell. Non-numeric, missing, NaN/Inf and
beyond-float32 values are issues; each kind is reported once per grid, with how many there are
and where (0-based step and channel). `MISSING` marks a JSONL key that is absent (as opposed to
present with null); `is_blank` and `absent` treat empty cells the same way for every reader.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from typing import Any

import numpy as np

from rnnkit.data.tables import Issue, json_type
from rnnkit.errors import shorten

POSITIONS_LISTED = 5  # positions named per problem; the count says how many there are in all
_F32_MAX = float(np.finfo(np.float32).max)

MISSING = object()  # a JSONL key that is absent, as opposed to present with null

_NUMBER_FIX = "write plain numbers only (e.g. 0.5, -1e-3); no text, booleans or empty entries"
_FINITE_FIX = "replace NaN/Inf/missing values with real numbers (impute them in the source data), or remove the row"


def whole_number(text: str) -> bool:
    """A whole number int() reads: str.isdigit() alone also accepts '²' (a superscript), which int() refuses; the
    length cap keeps int() within Python's digit limit."""
    return text.isascii() and text.isdigit() and len(text) < 19


def is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def absent(column: str, v: Any, what: str, fix: str) -> Issue:
    if v is MISSING:
        return (column, "", f"missing key {column!r}", f"add the key {column!r} to every JSON object")
    return (column, "" if v is None else shorten(v), f"missing {what}", fix)


def _positions(found: list[tuple[int, int, Any]], channels: int) -> str:
    def one(step: int, ch: int) -> str:
        return f"step {step}" if channels == 1 else f"step {step} channel {ch}"

    listed = ", ".join(one(s, c) for s, c, _ in found[:POSITIONS_LISTED])
    more = f" and {len(found) - POSITIONS_LISTED} more" if len(found) > POSITIONS_LISTED else ""
    return f"at {listed}{more} (0-based)"


def check_values(
    column: str,
    cells: list[list[Any]],
    channels: int,
    *,
    missing_marker: str | None = None,
    from_text: bool = False,
) -> tuple[np.ndarray | None, list[Issue]]:
    """Check a (T, C) grid of raw values and convert it to float32.

    Each kind of bad value gives one issue naming how many there are and where.
    """
    out: np.ndarray | None = None
    # Fast path for the common all-numbers case: the type scan runs in C (map/set), and bools,
    # which numpy would silently turn into 0/1, are excluded by checking exact types.
    if not from_text and set(map(type, itertools.chain.from_iterable(cells))) <= {int, float}:
        with contextlib.suppress(OverflowError):  # an integer too large for a float: slow path
            out = np.array(cells, dtype=np.float64).reshape(len(cells), channels)
    elif from_text:
        # numpy parses numeric strings itself; anything else (text, "", "?") raises -> slow path
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            out = np.array(cells, dtype=np.float64).reshape(len(cells), channels)
    if out is None:
        out, issues = _scan_values(column, cells, channels, missing_marker=missing_marker, from_text=from_text)
        if issues:
            return None, issues
    return _range_check(column, out, channels)


def _scan_values(
    column: str,
    cells: list[list[Any]],
    channels: int,
    *,
    missing_marker: str | None,
    from_text: bool,
) -> tuple[np.ndarray, list[Issue]]:
    """Convert value by value, collecting non-numeric and missing entries."""
    bad_type: list[tuple[int, int, Any]] = []
    missing: list[tuple[int, int, Any]] = []
    out = np.empty((len(cells), channels), dtype=np.float64)
    for t, step in enumerate(cells):
        for c, x in enumerate(step):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                try:
                    out[t, c] = x
                except OverflowError:  # an integer too large for a float
                    out[t, c] = math.inf
            elif from_text and isinstance(x, str):
                s = x.strip()
                if not s or s == missing_marker:
                    missing.append((t, c, x))
                    continue
                try:
                    out[t, c] = float(s)
                except ValueError:
                    bad_type.append((t, c, x))
            elif x is None:
                missing.append((t, c, x))
            else:
                bad_type.append((t, c, x))
    issues: list[Issue] = []
    if bad_type:
        first = bad_type[0][2]
        issues.append(
            (
                column,
                shorten(json.dumps(first) if not isinstance(first, str) or not from_text else first),
                f"{len(bad_type)} non-numeric value(s) {_positions(bad_type, channels)}",
                _NUMBER_FIX,
            )
        )
    if missing:
        marker = f" ({missing_marker!r} marks a missing value)" if missing_marker else ""
        issues.append(
            (
                column,
                shorten(missing[0][2] if missing[0][2] is not None else "null"),
                f"{len(missing)} missing value(s){marker} {_positions(missing, channels)}",
                _FINITE_FIX,
            )
        )
    return out, issues


def _range_check(column: str, out: np.ndarray, channels: int) -> tuple[np.ndarray | None, list[Issue]]:
    """Reject NaN/Inf and values float32 cannot hold; return the float32 array otherwise."""
    issues: list[Issue] = []
    finite = np.isfinite(out)
    if not finite.all():
        where = [(int(t), int(c), out[t, c]) for t, c in np.argwhere(~finite)]
        rule = f"{len(where)} NaN/Inf value(s) {_positions(where, channels)}"
        issues.append((column, str(where[0][2]), rule, _FINITE_FIX))
        return None, issues
    big = np.abs(out) > _F32_MAX
    if big.any():
        where = [(int(t), int(c), out[t, c]) for t, c in np.argwhere(big)]
        issues.append(
            (
                column,
                str(where[0][2]),
                f"{len(where)} value(s) beyond float32 range (|x| > 3.4e38) {_positions(where, channels)}",
                "rescale the values (e.g. standardize them) before training",
            )
        )
        return None, issues
    return out.astype(np.float32), []


def parse_steps(column: str, obj: Any) -> tuple[np.ndarray | None, list[Issue]]:
    """Turn a JSON list of steps into a float32 (T, C) array, or issues."""
    if not isinstance(obj, list):
        return None, [
            (
                column,
                shorten(json.dumps(obj, default=str)),
                f"expected a JSON list of steps, found {json_type(obj)}",
                "write [1, 2, 3] for one channel or [[1, 2], [3, 4]] for one list of channels per step",
            )
        ]
    if not obj:
        return None, [(column, "[]", "empty sequence: zero steps", "give the row at least one step, or remove it")]
    is_list = [isinstance(s, list) for s in obj]
    if all(is_list):
        steps = obj
    elif not any(is_list):
        steps = [[s] for s in obj]
    else:
        t = is_list.index(not is_list[0])
        return None, [
            (
                column,
                shorten(json.dumps(obj[t], default=str)),
                f"steps mix numbers and lists (step 0: {json_type(obj[0])}, step {t}: {json_type(obj[t])})",
                "use numbers for one channel, or a list of channels for every step",
            )
        ]
    widths = [len(s) for s in steps]
    if widths[0] == 0 or len(set(widths)) > 1:
        t = next(i for i, w in enumerate(widths) if w != widths[0] or w == 0)
        rule = (
            f"step {t} has no channels"
            if widths[t] == 0
            else f"ragged channels: step 0 has {widths[0]} channel(s), step {t} has {widths[t]}"
        )
        fix = "give every step the same number of channels"
        return None, [(column, shorten(json.dumps(steps[t], default=str)), rule, fix)]
    return check_values(column, steps, widths[0])


def parse_scalar(column: str, v: Any, from_text: bool) -> tuple[float | None, Issue | None]:
    """One long-format cell -> a finite float32-representable number, or an issue."""
    if v is MISSING or v is None or (isinstance(v, str) and not v.strip()):
        return None, absent(column, v, "value", _FINITE_FIX)
    if isinstance(v, bool) or not (isinstance(v, (int, float)) or (from_text and isinstance(v, str))):
        return None, (
            column,
            shorten(json.dumps(v, default=str)),
            f"non-numeric value: expected a number, found {json_type(v)}",
            _NUMBER_FIX,
        )
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except ValueError:
        return None, (column, shorten(v), "non-numeric value", _NUMBER_FIX)
    except OverflowError:  # an integer too large for a float
        x = math.inf
    if not math.isfinite(x):
        return None, (column, shorten(v), "NaN/Inf value", _FINITE_FIX)
    if abs(x) > _F32_MAX:
        return None, (
            column,
            shorten(v),
            "value beyond the float32 range (|x| > 3.4e38)",
            "rescale the values (e.g. standardize them) before training",
        )
    return x, None
