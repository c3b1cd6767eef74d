"""Text and numeric rows -> records: one table row is one sequence (input "text" or "numeric").

Contract: `interpret_rows` turns every row of a `Table` into either a `Record` or the issues that
reject it, never both: text input gives tokens from the text column (whitespace or characters,
optionally lowercased); numeric input gives a (T, C) float32 array from a JSON list of steps.
Labels are kept as stripped strings (the raw spelling in ``extra["raw_label"]`` when stripping
changed it). An id column names the records and must be unique. For numeric input, records whose
channel count differs from the most common one are rejected. Bad rows never raise; the result is
a `ReadResult`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rnnkit.data import chunkscope
from rnnkit.data.cells import MISSING, absent, is_blank, parse_steps
from rnnkit.data.records import ParsedRow, ReadOptions, ReadResult, Record, collect_rows, fix_channel_counts
from rnnkit.data.tables import Issue, Table, json_loads, json_type
from rnnkit.errors import shorten


def _label_of(fields: dict[str, Any], opts: ReadOptions) -> tuple[str | None, Issue | None]:
    if not opts.has_label:
        return None, None
    col = opts.label_column
    v = fields.get(col, MISSING)
    if v is MISSING or is_blank(v):
        if not opts.require_label:
            return None, None
        return None, absent(col, v, "label", "give the row a label, or remove the row")
    if isinstance(v, (list, dict)):
        return None, (
            col,
            shorten(json.dumps(v, default=str)),
            f"a label must be a single value, found {json_type(v)}",
            "write one label per row",
        )
    return str(v).strip(), None


def _tokens_of(fields: dict[str, Any], opts: ReadOptions) -> tuple[list[str] | None, Issue | None]:
    col = opts.text_column
    v = fields.get(col, MISSING)
    if v is MISSING:
        return None, absent(col, v, "text", "")
    if v is None:
        return None, (col, "null", "missing text", "give the row some text, or remove it")
    if not isinstance(v, str):
        return None, (
            col,
            shorten(json.dumps(v, default=str)),
            f"expected a text string, found {json_type(v)}",
            "write the text as one string",
        )
    text = v.lower() if opts.lowercase else v
    tokens = text.split() if opts.tokenize == "whitespace" else list(text)
    if not tokens:
        return None, (
            col,
            shorten(v),
            "empty sequence: the text has zero tokens",
            "give the row text, or remove it",
        )
    return tokens, None


def _values_of(fields: dict[str, Any], opts: ReadOptions) -> tuple[np.ndarray | None, list[Issue]]:
    col = opts.sequence_column
    v = fields.get(col, MISSING)
    if v is MISSING or is_blank(v):
        fix = "write a JSON list of steps, e.g. [1, 2, 3], or remove the row"
        return None, [absent(col, v, "sequence (empty cell)", fix)]
    if isinstance(v, str):
        text = v
        v, error = json_loads(text)
        if error is not None:
            return None, [
                (
                    col,
                    shorten(text),
                    f"invalid JSON in the cell: {error}",
                    "write the sequence as a JSON list, e.g. [1, 2, 3] or [[1, 2], [3, 4]]",
                )
            ]
    return parse_steps(col, v)


def interpret_rows(table: Table, opts: ReadOptions, mode: str) -> ReadResult:
    """One row -> one record (text or numeric input)."""
    parsed: list[ParsedRow] = []
    id_lines = chunkscope.shared_ids()  # id -> first line; shared by the chunks of a file read in chunks
    for row in table.rows:
        rid = f"{opts.base}:{row.line}"
        if row.broken is not None:
            parsed.append(ParsedRow(row, None, rid, [(row.line, row.broken)]))
            continue
        issues: list[Issue] = []
        if opts.id_column:
            v = row.fields.get(opts.id_column, MISSING)
            if v is MISSING or is_blank(v):
                issues.append(absent(opts.id_column, v, "id", "give every row a unique id"))
            else:
                sid = str(v).strip()
                if sid in id_lines:
                    # the duplicate keeps its line-based id so that it never shares an id with
                    # the first (good) row
                    issues.append(
                        (
                            opts.id_column,
                            shorten(sid),
                            f"duplicate id (first used on line {id_lines[sid]})",
                            "give every row a unique id",
                        )
                    )
                else:
                    id_lines[sid] = row.line
                    rid = f"{opts.base}:{sid}"
        tokens = values = None
        if mode == "text":
            tokens, issue = _tokens_of(row.fields, opts)
            issues += [issue] if issue else []
        else:
            values, value_issues = _values_of(row.fields, opts)
            issues += value_issues
        label, issue = _label_of(row.fields, opts)
        issues += [issue] if issue else []
        rec = None if issues else Record(rid, opts.file, row.line, tokens=tokens, values=values, label=label)
        if rec is not None and label is not None and str(row.fields[opts.label_column]) != label:
            rec.extra["raw_label"] = str(row.fields[opts.label_column])  # spaces stripped: the labels check names it
        parsed.append(ParsedRow(row, rec, rid, [(row.line, i) for i in issues]))
    if mode == "numeric":
        fix_channel_counts(parsed, opts.sequence_column)
    return collect_rows(opts.file, parsed)
