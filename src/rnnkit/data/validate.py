"""Cross-file validation of the read splits, and the bad-row policy.

The readers find the problems inside one file; this module adds the checks that need several
files (a label in val/test that train never shows) and applies the user's policy:

* ``"error"`` (default): any problem stops the run with one `DataError` listing all of them.
* ``"skip"``: bad rows are written to a rejects file (JSONL, one line per rejected row) and
  left out, as long as they are at most `max_bad_fraction` of all rows.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rnnkit.data import chunkscope
from rnnkit.data.records import ReadResult, Record
from rnnkit.data.recordstore import Records, as_split, label_counts, label_sightings, relabel_all, without_ids
from rnnkit.data.vocab import natural_key
from rnnkit.errors import ConfigError, DataError, Problem, shorten

POLICIES = ("error", "skip")
UNSEEN_LABEL_RULE = "label not seen in the training data"


@dataclass
class ValidatedData:
    """The splits after validation.

    Attributes:
        splits: split name -> good records (same keys as the input, bad records removed).
        rejected: rows rejected in total, over all splits.
        report: ``{split: {"rows": n, "rejected": k}, ..., "rejects_file": path or None}``.
        rejects: the rejected rows, each as written to the rejects file (see `validate_splits`);
            empty under policy "error".
    """

    splits: dict[str, list[Record]]
    rejected: int
    report: dict
    rejects: list[dict] = field(default_factory=list)


def unseen_label_problems(train: list[Record], other: list[Record]) -> list[Problem]:
    """Problems for records of `other` whose label never occurs in `train`.

    A model cannot predict a class it was never trained on, and its output layer has no unit
    for it. Unlabeled records (label None) are not checked, and when `train` has no labels at
    all there is nothing to compare with, so the result is empty.

    Args:
        train: the training records.
        other: records of another split (val, test, ...).

    Returns:
        One `Problem` per record with an unseen label (column "label", rule
        `UNSEEN_LABEL_RULE`), in the order of `other`.
    """
    seen = {label for label in label_counts(train) if label is not None}
    if not seen:
        return []
    return [
        Problem(
            r.file,
            r.line,
            "label",
            shorten(r.label),
            UNSEEN_LABEL_RULE,
            "add examples of this label to the training data, or remove these rows",
            r.id,
        )
        for r in other
        if r.label is not None and r.label not in seen
    ]


def label_number(label: str) -> Decimal | None:
    """The number a label spells ("1", "1.0", "1e0" -> 1), or None when it is not a finite number."""
    try:
        x = Decimal(label)
    except (InvalidOperation, ValueError):
        return None
    return x if x.is_finite() else None


def canonical_number(spellings: Counter) -> str:
    """The one spelling for labels that are the same number: the integer when it is one, else the most
    frequent spelling (ties: the first in natural order)."""
    x = label_number(next(iter(spellings)))
    assert x is not None
    if x.adjusted() < 30 and x == x.to_integral_value():  # adjusted: not a 10**999999-digit int
        return str(int(x))
    return min(spellings, key=lambda s: (-spellings[s], natural_key(s)))


def _listing(spellings: Counter, first: dict[str, Record]) -> str:
    """"'1' (40 rows, first train.csv:2) and '1.0' (3 rows, first train.csv:9)", most frequent first."""
    order = sorted(spellings, key=lambda s: (-spellings[s], natural_key(s)))
    parts = [f"{s!r} ({spellings[s]} row{'s' if spellings[s] != 1 else ''}, first {first[s].file}:{first[s].line})"
             for s in order[:5]]
    more = f" and {len(order) - 5} more" if len(order) > 5 else ""
    return (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + more


def reconcile_labels(records: list[Record], *, column: str = "label") -> list[str]:
    """Find labels that are spelled differently but may mean the same class; merge the numeric ones.

    Rules (labels are already stripped by the readers):

    * every label a number: labels with the same value ("1", "1.0", "1e0") are one class and are
      rewritten in place to one spelling (`canonical_number`);
    * some labels not numbers: labels with the same value stay separate classes (a column of mixed
      labels is text), and are named;
    * labels that differ only by case ("Pos", "pos") stay separate classes and are named;
    * labels that differed only by surrounding spaces (``Record.extra["raw_label"]``) were read as one
      class by the reader, and are named.

    Args:
        records: the records of every split (train, val, test), so that all get the same spelling.
        column: the label column, for the messages.

    Returns:
        One message per group of spellings (for `warnings.warn`); each names every spelling with its
        row count and first file:line.
    """
    counts: Counter[str] = Counter({k: n for k, n in label_counts(records).items() if k is not None})
    if not counts:
        return []
    first, raw, raw_first = label_sightings(records)
    numbers = {s: label_number(s) for s in counts}
    all_numeric = all(x is not None for x in numbers.values())
    messages: list[str] = []
    for label, spellings in raw.items():
        if len(spellings) > 1:
            messages.append(f"labels {_listing(spellings, raw_first)} in column {column!r} differ only by surrounding "
                            f"spaces, which are ignored: read as one class {label!r}")
    by_value: dict[Decimal, Counter[str]] = {}
    for s, x in numbers.items():
        if x is not None:
            by_value.setdefault(x, Counter())[s] = counts[s]
    rename: dict[str, str] = {}
    for spellings in by_value.values():
        if len(spellings) < 2:
            continue
        if all_numeric:
            canonical = canonical_number(spellings)
            rename.update({s: canonical for s in spellings if s != canonical})
            messages.append(f"labels {_listing(spellings, first)} in column {column!r} are the same number: read as "
                            f"one class {canonical!r}; write them alike to silence this warning")
        else:
            text = next(s for s, x in numbers.items() if x is None)
            messages.append(f"labels {_listing(spellings, first)} in column {column!r} are the same number but stay "
                            f"{len(spellings)} classes, because the column also holds labels that are not numbers "
                            f"(e.g. {text!r}); write them alike if they mean one class")
    relabel_all(records, rename)
    by_case: dict[str, Counter[str]] = {}
    for s, n in counts.items():
        if numbers[s] is None:
            by_case.setdefault(s.casefold(), Counter())[s] = n
    for spellings in by_case.values():
        if len(spellings) > 1:
            messages.append(f"labels {_listing(spellings, first)} in column {column!r} differ only by case and stay "
                            f"{len(spellings)} classes; write them alike if they mean one class")
    return messages


def too_few_classes(labels: Counter, *, rows: int, file: str, column: str | None, unit: str = "row",
                    what: str = "class", model: str = "a classifier") -> list[Problem]:
    """A problem when the training data holds fewer than 2 classes (no rows, or all of one class).

    Args:
        labels: class -> count in the training split.
        rows: the training rows (sentences for a tagger), for the message.
        file: the training file.
        column: the label column.
        unit, what, model: the words for a row, a class and the model in the message.
    """
    if len(labels) >= 2:
        return []
    plural = "es" if what.endswith("s") else "s"
    if not labels:
        return [Problem(file, None, column, "", f"no training {unit}s with a {what} left after validation",
                        f"add labelled {unit}s, or repair the rejected ones")]
    (label,) = labels
    return [Problem(
        file, None, column, shorten(label),
        f"only one {what} in the training data ({rows} {unit}{'s' if rows != 1 else ''}, all {what} {label!r}); "
        f"{model} needs at least 2 {what}{plural}",
        f"add {unit}s of at least one other {what} (a few dozen per {what} or more), or check that the "
        f"{what} column is the right one (data.label_column)" if what == "class" else
        f"add {unit}s with at least one other {what} (a few dozen or more)",
    )]


@dataclass
class _Reject:
    split: str
    file: str
    line: int | None
    record_id: str | None
    problems: list[Problem]
    raw: str | None

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "file": self.file,
            "line": self.line,
            "record_id": self.record_id,
            "problems": [p.to_dict() for p in self.problems],
            "raw": self.raw,
        }


def _reader_rejects(split: str, result: ReadResult) -> list[_Reject]:
    """Group a reader's problems by rejected row (one entry per key of `bad_rows`)."""
    file_of = next((p.file for p in result.problems), None)
    by_line: dict[int, _Reject] = {}
    by_id: dict[str, _Reject] = {}
    for line, raw in result.bad_rows.items():
        rid = result.record_ids.get(line)
        rej = _Reject(split, file_of or "", line, rid, [], raw)
        by_line[line] = rej
        if rid is not None:
            by_id.setdefault(rid, rej)
    rejects = list(by_line.values())
    for p in result.problems:
        # A long-format problem sits on the line of its bad step, while the rejected unit is
        # keyed by the sequence's first line: fall back to the record id.
        rej = by_line.get(p.line) if p.line is not None else None
        if rej is None and p.record_id is not None:
            rej = by_id.get(p.record_id)
        if rej is None:
            # A problem without a matching bad row (a hand-built ReadResult): keep it visible.
            rej = _Reject(split, p.file, p.line, p.record_id, [], None)
            rejects.append(rej)
            if p.line is not None:
                by_line[p.line] = rej
        rej.problems.append(p)
        rej.file = rej.file or p.file
        rej.record_id = rej.record_id or p.record_id
    return sorted(rejects, key=lambda r: (r.line is None, r.line or 0))


def validate_splits(
    results: dict[str, ReadResult],
    *,
    policy: str = "error",
    max_bad_fraction: float = 0.01,
    rejects_path: str | os.PathLike | None = None,
    check_labels: bool = True,
    unit: tuple[str, str] = ("row", "rows"),
) -> ValidatedData:
    """Apply the bad-row policy to every split and check labels across splits.

    Args:
        results: split name -> what `read_records` returned for that split's file.
        policy: "error" (any problem raises) or "skip" (drop bad rows, record them in
            `rejects_path`).
        max_bad_fraction: under "skip", the largest allowed fraction rejected rows / rows over
            all splits (0..1).
        rejects_path: where "skip" writes the rejected rows as JSONL, one line per row:
            ``{"split", "file", "line", "record_id", "problems": [...], "raw"}``. ``raw`` is
            the row's text, or null for a row that read fine but failed a cross-split check.
            No file is written when nothing is rejected. With None, nothing is written either:
            the rejected rows are in `ValidatedData.rejects` and a warning says how many.
        check_labels: when a "train" split is present, reject records of other splits whose
            label train never shows. Turn off for regression targets, where every value is new.
        unit: what one record is called in the messages, singular and plural (a forecasting file's
            records are whole series).

    Returns:
        `ValidatedData` with the good records of each split, the number rejected and a report.

    Raises:
        DataError: policy "error" and any problem (the header counts the bad rows per file and
            names ``--bad-rows skip``); or policy "skip" and more than `max_bad_fraction` of the
            rows rejected (after the rejects file is written).
        ConfigError: unknown policy or `max_bad_fraction` outside 0..1.
    """
    one, many = unit
    counted = one if one == many else f"{one}(s)"  # "3 bad row(s)", "1 bad series"
    if policy not in POLICIES:
        raise ConfigError(f"data.bad_rows={policy!r} is not one of {', '.join(POLICIES)} (--bad-rows)")
    if (
        isinstance(max_bad_fraction, bool)
        or not isinstance(max_bad_fraction, (int, float))
        or not 0.0 <= max_bad_fraction <= 1.0
    ):
        raise ConfigError(f"data.max_bad_fraction={max_bad_fraction!r} must be a number from 0 to 1 (0.01 = 1%)")

    rejects: dict[str, list[_Reject]] = {name: _reader_rejects(name, res) for name, res in results.items()}
    dropped: dict[str, set[str]] = {name: set() for name in results}  # ids of records to drop (unique per file)
    if check_labels and "train" in results:
        train = results["train"].records
        for name, res in results.items():
            if name == "train":
                continue
            for p in unseen_label_problems(train, res.records):
                rejects[name].append(_Reject(name, p.file, p.line, p.record_id, [p], None))
                if p.record_id is not None:
                    dropped[name].add(p.record_id)

    all_rejects = [rej for name in results for rej in rejects[name]]
    problems = [p for rej in all_rejects for p in rej.problems]
    rows = sum(res.rows for res in results.values())
    report: dict = {name: {"rows": res.rows, "rejected": len(rejects[name])} for name, res in results.items()}
    report["rejects_file"] = None

    if policy == "error":
        if problems:
            per_file = Counter(rej.file for rej in all_rejects)
            where = ", ".join(f"{n} in {f}" for f, n in per_file.items())
            # skipping is advised only where it would succeed (a file read in chunks: the limit is the whole file's)
            hopeless = chunkscope.active() is None and rows and len(all_rejects) / rows > max_bad_fraction
            fix = (f"fix them (skipping them with `--bad-rows skip` would leave out {len(all_rejects)} of {rows} "
                   f"{many}, more than data.max_bad_fraction={max_bad_fraction:g} allows)" if hopeless else
                   f"fix them, or pass `--bad-rows skip` to skip bad {many} (allowed up to "
                   f"data.max_bad_fraction={max_bad_fraction:g} of all {many})")
            raise DataError(problems, header=f"{len(all_rejects)} bad {counted} ({where}), {len(problems)} problem(s); "
                                             + fix)
        return ValidatedData({name: as_split(res.records) for name, res in results.items()}, 0, report)

    entries = [rej.to_dict() for rej in all_rejects]
    served = chunkscope.active()
    if served is not None and rejects_path is None:
        # one chunk of a file read in chunks: the limit and the warning are the whole file's (`BadRowTally`)
        served.state.bad.add(rows, len(all_rejects), problems)
        splits = {name: without_ids(res.records, dropped[name]) for name, res in results.items()}
        return ValidatedData(splits, len(all_rejects), report, entries)
    if entries and rejects_path is not None:
        path = Path(rejects_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for entry in entries:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        report["rejects_file"] = str(path)
    elif entries:
        # no place to write them: say so, so the skipped rows are never a silent loss
        shown = "; ".join(str(p) for p in problems[:3])
        warnings.warn(
            f"skipped {len(entries)} bad {counted} without a rejects file (first: {shown})",
            RuntimeWarning,
            stacklevel=2,
        )
    rejected = len(all_rejects)
    fraction = rejected / rows if rows else 0.0
    if fraction > max_bad_fraction:
        where = (
            f"the bad {many} were written to {report['rejects_file']}"
            if report["rejects_file"]
            else f"no rejects file was given; the bad {many} are listed below"
        )
        raise DataError(
            problems,
            header=(
                f"{rejected} of {rows} {many} ({fraction:.2%}) are bad, more than the limit "
                f"data.max_bad_fraction={max_bad_fraction:g} ({max_bad_fraction:.2%}); {where}. "
                f"Repair the file(s), or raise the limit with `--set data.max_bad_fraction=0.05`"
            ),
        )
    splits = {name: without_ids(res.records, dropped[name]) for name, res in results.items()}
    return ValidatedData(splits, rejected, report, entries)


def input_problems(records: list[Record], prep, *, sequence_column: str | None = None) -> list[Problem]:
    """Rows whose input the model cannot take: text for a numeric model, numbers for a text model, or
    another channel count than the model was trained on (`prep`: anything with `kind` and `num_features`).
    `sequence_column` names the column of a
    numeric row (long-format and .ts records have none)."""
    problems = []
    if isinstance(records, Records) and records.store.kind == prep.kind and (
            prep.kind == "text" or records.store.width == prep.num_features):  # a store holds rows of one kind
        return problems
    for r in records:
        column = (sequence_column if "sequence_id" not in r.extra and not r.file.lower().endswith(".ts")
                  else None)
        if prep.kind == "text" and r.tokens is None:
            problems.append(Problem(r.file, r.line, None, f"{r.values.shape[1]} channels",
                                    "a numeric row, and the model was trained on text",
                                    "give the rows as text (data.text_column), as in the training data", r.id))
        elif prep.kind != "text" and r.values is None:
            problems.append(Problem(r.file, r.line, None, shorten(" ".join(r.tokens or [])),
                                    "a text row, and the model was trained on numeric sequences",
                                    "give the rows as numeric sequences (data.sequence_column), as in the "
                                    "training data", r.id))
        elif prep.kind != "text" and r.values.shape[1] != prep.num_features:
            found = r.values.shape[1]
            problems.append(Problem(r.file, r.line, column, str(found),
                                    f"{found} channel{'s' if found != 1 else ''}, the model was trained on "
                                    f"{prep.num_features}",
                                    f"give every sequence the {prep.num_features} channels of the training data, "
                                    "in the same order", r.id))
    return problems
