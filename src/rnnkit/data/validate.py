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
from pathlib import Path

from rnnkit.data.readers import ReadResult
from rnnkit.data.records import Record
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
    seen = {r.label for r in train if r.label is not None}
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

    Returns:
        `ValidatedData` with the good records of each split, the number rejected and a report.

    Raises:
        DataError: policy "error" and any problem (the header counts the bad rows per file and
            names ``--bad-rows skip``); or policy "skip" and more than `max_bad_fraction` of the
            rows rejected (after the rejects file is written).
        ConfigError: unknown policy or `max_bad_fraction` outside 0..1.
    """
    if policy not in POLICIES:
        raise ConfigError(f"data.bad_rows={policy!r} is not one of {', '.join(POLICIES)} (--bad-rows)")
    if (
        isinstance(max_bad_fraction, bool)
        or not isinstance(max_bad_fraction, (int, float))
        or not 0.0 <= max_bad_fraction <= 1.0
    ):
        raise ConfigError(f"data.max_bad_fraction={max_bad_fraction!r} must be a number from 0 to 1 (0.01 = 1%)")

    rejects: dict[str, list[_Reject]] = {name: _reader_rejects(name, res) for name, res in results.items()}
    dropped: dict[str, set[int]] = {name: set() for name in results}  # id() of records to drop
    if check_labels and "train" in results:
        train = results["train"].records
        for name, res in results.items():
            if name == "train":
                continue
            by_id = {r.id: r for r in res.records}
            for p in unseen_label_problems(train, res.records):
                rec = by_id.get(p.record_id or "")
                rejects[name].append(_Reject(name, p.file, p.line, p.record_id, [p], None))
                if rec is not None:
                    dropped[name].add(id(rec))

    all_rejects = [rej for name in results for rej in rejects[name]]
    problems = [p for rej in all_rejects for p in rej.problems]
    rows = sum(res.rows for res in results.values())
    report: dict = {name: {"rows": res.rows, "rejected": len(rejects[name])} for name, res in results.items()}
    report["rejects_file"] = None

    if policy == "error":
        if problems:
            per_file = Counter(rej.file for rej in all_rejects)
            where = ", ".join(f"{n} in {f}" for f, n in per_file.items())
            raise DataError(
                problems,
                header=(
                    f"{len(all_rejects)} bad row(s) ({where}), {len(problems)} problem(s); fix them, or pass "
                    f"`--bad-rows skip` to skip bad rows (allowed up to data.max_bad_fraction="
                    f"{max_bad_fraction:g} of all rows)"
                ),
            )
        return ValidatedData({name: list(res.records) for name, res in results.items()}, 0, report)

    entries = [rej.to_dict() for rej in all_rejects]
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
            f"skipped {len(entries)} bad row(s) without a rejects file (first: {shown})",
            RuntimeWarning,
            stacklevel=2,
        )
    rejected = len(all_rejects)
    fraction = rejected / rows if rows else 0.0
    if fraction > max_bad_fraction:
        where = (
            f"the bad rows were written to {report['rejects_file']}"
            if report["rejects_file"]
            else "no rejects file was given; the bad rows are listed below"
        )
        raise DataError(
            problems,
            header=(
                f"{rejected} of {rows} rows ({fraction:.2%}) are bad, more than the limit "
                f"data.max_bad_fraction={max_bad_fraction:g} ({max_bad_fraction:.2%}); {where}. "
                f"Repair the file(s), or raise the limit with `--set data.max_bad_fraction=0.05`"
            ),
        )
    splits = {name: [r for r in res.records if id(r) not in dropped[name]] for name, res in results.items()}
    return ValidatedData(splits, rejected, report, entries)
