"""UEA/UCR ``.ts`` files -> records (always numeric input).

Contract: `read_ts` parses the header up to ``@data`` (keys are case-insensitive; unknown keys are
ignored; ``#`` and ``%`` lines are comments), then one case per line: channels separated by ``:``,
the values of a channel by ``,``,
and ``:<label>`` at the end when the header declares labels; ``?`` is a missing value. Blank lines
and ``#`` comments are not cases. Each case becomes a (T, C) float32 `Record` (the file stores
channel by channel) or the issues that reject it. A malformed header, no labels where labels are
required, timestamped data and a file without cases raise `DataError`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.cells import check_values, whole_number
from rnnkit.data.records import ParsedRow, ReadResult, Record, collect_rows, fix_channel_counts
from rnnkit.data.tables import Issue, TableRow, fail, read_text_file
from rnnkit.errors import shorten


@dataclass
class _TsHeader:
    data_line: int
    labeled: bool = False  # cases end with ":<label>"
    target: bool = False  # the label is a regression target (@targetLabel true)
    class_labels: list[str] | None = None  # labels declared by @classLabel true a b c
    dimensions: int | None = None
    series_length: int | None = None  # only enforced when @equalLength true


def _ts_bool(file: str, line: int, key: str, args: list[str]) -> bool:
    if args and args[0].lower() in ("true", "false"):
        return args[0].lower() == "true"
    fail(
        file,
        f"@{key} must be followed by true or false",
        f"write `@{key} true` or `@{key} false`",
        line=line,
        value=" ".join(args),
    )


def _ts_int(file: str, line: int, key: str, args: list[str]) -> int:
    if args and whole_number(args[0]) and int(args[0]) > 0:
        return int(args[0])
    fail(
        file,
        f"@{key} must be followed by a positive integer",
        f"write e.g. `@{key} 3`",
        line=line,
        value=" ".join(args),
    )


_TS_TIMESTAMP_FIX = "convert the file to a long-format CSV with id, time and value columns"


def _ts_header(file: str, lines: list[str]) -> _TsHeader:
    """Parse the header lines up to @data; keys are case-insensitive, unknown keys are ignored."""
    head = _TsHeader(data_line=0)
    equal_length = False
    for number, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith(("#", "%")):  # the UEA/UCR archive's files use both for comments
            continue
        if not s.startswith("@"):
            fail(
                file,
                "a line before @data must be a header line starting with @, or a comment starting with # or %",
                "start each header line with @ and each comment with # (or %); cases come after an @data line",
                line=number,
                value=shorten(s),
            )
        key, *args = s[1:].split() or [""]
        low = key.lower()
        if low == "data":
            head.data_line = number
            break
        if low == "classlabel":
            head.labeled = _ts_bool(file, number, key, args) or head.labeled
            head.class_labels = args[1:] if head.labeled and len(args) > 1 else None
        elif low == "targetlabel":
            head.target = _ts_bool(file, number, key, args)
            head.labeled = head.labeled or head.target
        elif low == "timestamps" and _ts_bool(file, number, key, args):
            rule = "timestamped .ts data (@timeStamps true, values written as (t,v)) is not supported yet"
            fail(file, rule, _TS_TIMESTAMP_FIX, line=number, value=s)
        elif low == "dimensions":
            head.dimensions = _ts_int(file, number, key, args)
        elif low == "univariate" and _ts_bool(file, number, key, args):
            head.dimensions = 1
        elif low == "equallength":
            equal_length = _ts_bool(file, number, key, args)
        elif low == "serieslength":
            head.series_length = _ts_int(file, number, key, args)
        # other keys (@problemName, @missing, ...) carry nothing the reader needs: "?" is
        # always treated as a missing value, which is a row problem
    if not head.data_line:
        fail(file, "no @data line: this is not a UEA/UCR .ts file", "add the header and an @data line")
    if not equal_length:
        head.series_length = None
    return head


def _ts_case(s: str, head: _TsHeader) -> tuple[np.ndarray | None, str | None, list[Issue]]:
    """One case line after @data -> (values (T, C), label, issues)."""
    parts = s.split(":")
    issues: list[Issue] = []
    label = None
    if head.labeled:
        if len(parts) < 2:
            rule = "expected channels followed by a label, separated by ':'"
            return None, None, [("label", shorten(s), rule, "end the case with :<label>")]
        label = parts.pop().strip()
        if not label or label == "?":
            issues.append(("label", label, "missing label", "give the case a label"))
        elif head.class_labels is not None and label not in head.class_labels:
            declared = shorten(" ".join(head.class_labels), 200)
            fix = "correct the label, or add it to the @classLabel header line"
            issues.append(("label", shorten(label), f"label not declared in @classLabel (declared: {declared})", fix))
        elif head.target and not _is_finite_number(label):
            issues.append(("label", shorten(label), "a @targetLabel value must be a finite number", "write a number"))
    channels = [c.split(",") for c in parts]
    if head.dimensions is not None and len(channels) != head.dimensions:
        rule = f"expected {head.dimensions} channel(s) as declared in @dimensions, found {len(channels)}"
        issues.append((None, str(len(channels)), rule, "give every case all channels, separated by ':'"))
    lengths = [len(c) if "".join(c).strip() else 0 for c in channels]
    if 0 in lengths:
        j = lengths.index(0)
        fix = "give every channel its values"
        issues.append((f"channel {j}", "", "empty sequence: the channel has zero values", fix))
        return None, label, issues
    if len(set(lengths)) > 1:
        j = next(i for i, n in enumerate(lengths) if n != lengths[0])
        rule = f"ragged channels: channel 0 has {lengths[0]} values, channel {j} has {lengths[j]}"
        issues.append((f"channel {j}", str(lengths[j]), rule, "give every channel of a case the same number of values"))
        return None, label, issues
    if head.series_length is not None and lengths[0] != head.series_length:
        rule = f"expected {head.series_length} values per channel (@seriesLength), found {lengths[0]}"
        issues.append((None, str(lengths[0]), rule, "give every case the declared length, or set @equalLength false"))
    columns: list[np.ndarray] = []
    for j, chan in enumerate(channels):
        arr, chan_issues = check_values(f"channel {j}", [[x] for x in chan], 1, missing_marker="?", from_text=True)
        issues += chan_issues
        if arr is not None:
            columns.append(arr[:, 0])
    if issues:
        return None, label, issues
    return np.stack(columns, axis=1), label, []  # .ts stores channel by channel; records are (T, C)


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def label_declaration(path: Path) -> tuple[str | None, int | None]:
    """What a .ts file's header says its labels are, reading the header only: ("target", line) for
    `@targetLabel true`, ("class", line) for `@classLabel true`, (None, None) for neither. `read_ts` checks the
    header itself; this lets a task refuse the other kind of file, with the line to look at, before reading it."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            key, *args = line.strip().split() or [""]
            low = key.lower()
            if low == "@data":
                break
            if low in ("@targetlabel", "@classlabel") and args[:1] and args[0].lower() == "true":
                return ("target" if low == "@targetlabel" else "class"), number
    return None, None


def read_ts(p: Path, file: str, require_label: bool) -> ReadResult:
    """Read a UEA/UCR .ts file (header lines starting with @, one case per line after @data)."""
    lines = read_text_file(p, file).split("\n")
    head = _ts_header(file, lines)
    if require_label and not head.labeled:
        fail(
            file,
            "the header declares no labels (@classLabel / @targetLabel is missing or false)",
            "use a labeled file (@classLabel true followed by the labels, each case ending in :<label>)",
        )
    base = os.path.basename(file)
    parsed: list[ParsedRow] = []
    for number in range(head.data_line + 1, len(lines) + 1):
        raw = lines[number - 1].rstrip("\r")
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if "(" in s.rsplit(":", 1)[0]:
            rule = "timestamped .ts data ((t,v) pairs) is not supported yet"
            fail(file, rule, _TS_TIMESTAMP_FIX, line=number, value=shorten(s))
        values, label, issues = _ts_case(s, head)
        rec = None if issues else Record(f"{base}:{number}", file, number, values=values, label=label)
        parsed.append(ParsedRow(TableRow(number, {}, raw), rec, f"{base}:{number}", [(number, i) for i in issues]))
    if not parsed:
        fail(file, "no cases after @data", "add one case per line after @data", line=head.data_line)
    if head.dimensions is None:
        fix_channel_counts(parsed, "channels")
    return collect_rows(file, parsed)
