"""Readers for sequence-to-sequence pairs: CSV/TSV/JSONL/Parquet/Arrow tables, plain word lists, CMUdict.

Every reader returns a `rnnkit.data.records.ReadResult`, so `validate_splits` applies the
error/skip policies exactly as for classification. A pair is a `Record` whose `tokens` are the
source tokens and whose ``extra`` holds:

* ``"target"``: the target tokens (list of str), or None when the file has no target (predict);
* ``"group"``: the key that ties alternative targets of one source together (the source text;
  for CMUdict the base word, so ``read(2)`` joins ``read``). Splits keep a group on one side and
  metrics treat the targets of one group as equally valid references.

Table files reuse the core table loaders (same quoting, UTF-8, header and JSON checks, same
file:line provenance); only the interpretation of a row is specific to pairs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.records import ParsedRow, ReadResult, Record, collect_rows
from rnnkit.data.tables import EXTENSIONS, TABLE_FORMATS, TableRow, load_table, read_text_file
from rnnkit.errors import ConfigError, DataError, Problem, shorten

TOKENIZERS = ("char", "whitespace")
PAIR_FORMATS = (*TABLE_FORMATS, "txt", "cmudict")
# The 39 ARPAbet phones of CMUdict once stress digits are removed (cmudict.phones).
CMUDICT_PHONES = frozenset((
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K",
    "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH"))
_MISSING = object()
_ALTERNATE = re.compile(r"^(?P<word>.+?)\((?P<n>\d+)\)$")


def tokenize(text: str, how: str, lowercase: bool = False) -> list[str]:
    """Split `text` into tokens: "char" (every character) or "whitespace" (``str.split()``)."""
    if lowercase:
        text = text.lower()
    return list(text) if how == "char" else text.split()


def detokenize(tokens: Iterable[str], how: str) -> str:
    """Inverse of `tokenize` (characters are joined directly, whitespace tokens with a space)."""
    return ("" if how == "char" else " ").join(tokens)


def group_key(tokens: list[str]) -> str:
    """The group of a generic pair: its source tokens (same source = alternative references)."""
    return json.dumps(tokens, ensure_ascii=False)


def _format_of(path: Path, format: str) -> str:
    if format != "auto":
        if format not in PAIR_FORMATS:
            raise ConfigError(f"data.format={format!r} cannot hold pairs; use one of {', '.join(PAIR_FORMATS)}")
        return format
    suffix = path.suffix.lower()
    if suffix == ".dict":
        return "cmudict"
    if suffix == ".txt":
        return "txt"
    fmt = EXTENSIONS.get(suffix, "")
    if fmt in TABLE_FORMATS:
        return fmt
    raise DataError([Problem(str(path), None, None, suffix or "(no extension)",
                             "unknown file extension for pairs; accepted: .csv, .tsv, .jsonl/.ndjson, .parquet, "
                             ".arrow/.feather/.ipc, .txt (one source per line), .dict (CMUdict)",
                             "rename the file, or set --set data.format=csv (or tsv, jsonl, parquet, arrow)")],
                    header=f"cannot read {path}")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError([Problem(str(path), None, None, str(path), "file not found",
                                 "check the path (it is relative to the current directory)")],
                        header=f"cannot read {path}")
    if path.is_dir():
        raise DataError([Problem(str(path), None, None, str(path), "is a directory, not a data file",
                                 "give a file's path")], header=f"cannot read {path}")


def read_pairs(path: str | os.PathLike, *, source_column: str = "source", target_column: str = "target",
               source_tokenize: str = "char", target_tokenize: str = "whitespace", lowercase: bool = False,
               format: str = "auto", require_target: bool = True) -> ReadResult:
    """Read source/target pairs from one file, collecting a problem for every bad row.

    Args:
        path: CSV, TSV, JSONL, Parquet, Arrow IPC (by extension or `format`); ``.txt`` holds one source per
            line and no targets (for predict); ``.dict`` is read as CMUdict (`read_cmudict`).
        source_column, target_column: the columns (JSON keys) of each side. A cell holds a string,
            tokenized per side, or (JSONL/Parquet/Arrow) a list of string tokens, taken as is.
        source_tokenize, target_tokenize: "char" or "whitespace" for each side.
        lowercase: lowercase the source text (targets are never changed).
        format: "auto" or one of `PAIR_FORMATS`.
        require_target: every row needs a non-empty target; when False (predict) the target
            column may be absent and a missing target is None.

    Returns:
        ReadResult whose records carry source tokens in `tokens` and ``extra["target"]`` /
        ``extra["group"]`` (see the module docstring). Ids are ``"<file name>:<line>"``.

    Raises:
        DataError: the file as a whole is unusable (missing, not UTF-8, empty, missing column...).
        ConfigError: an unknown tokenizer or format.
    """
    for key, value in (("seq2seq.source_tokenize", source_tokenize), ("seq2seq.target_tokenize", target_tokenize)):
        if value not in TOKENIZERS:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(TOKENIZERS)}")
    p = Path(path)
    file = str(path)
    _check_file(p)
    fmt = _format_of(p, format)
    if fmt == "cmudict":
        return read_cmudict(p, lowercase=lowercase)
    if fmt == "txt":
        return _read_lines(p, source_tokenize, lowercase, require_target)
    table = load_table(p, file, fmt)
    missing = [(name, key) for name, key in ((source_column, "source_column"), (target_column, "target_column"))
               if name not in table.columns and (key == "source_column" or require_target)]
    if missing:
        found = ", ".join(repr(c) for c in table.columns) or "(none)"
        problems = []
        for name, key in missing:
            near = next((c for c in table.columns if c.lower() == name.lower()), None)
            fix = (f"did you mean {near!r}? set --set seq2seq.{key}={near}" if near else
                   f"set --set seq2seq.{key}=<one of the columns found>, or add the column")
            problems.append(Problem(file, None, name, name, f"column not found; columns found: {shorten(found, 300)}",
                                    fix))
        raise DataError(problems, header=f"cannot read {file}")
    has_target = target_column in table.columns
    base = os.path.basename(file)
    parsed: list[ParsedRow] = []
    for row in table.rows:
        rid = f"{base}:{row.line}"
        if row.broken is not None:
            parsed.append(ParsedRow(row, None, rid, [(row.line, row.broken)]))
            continue
        issues = []
        source, issue = _side(row.fields.get(source_column, _MISSING), source_column, source_tokenize, lowercase,
                              "source")
        if issue:
            issues.append(issue)
        target = None
        if has_target:
            value = row.fields.get(target_column, _MISSING)
            if require_target or not _blank(value):
                target, issue = _side(value, target_column, target_tokenize, False, "target")
                if issue:
                    issues.append(issue)
        rec = None
        if not issues:
            rec = Record(rid, file, row.line, tokens=source, extra={"target": target, "group": group_key(source)})
        parsed.append(ParsedRow(row, rec, rid, [(row.line, i) for i in issues]))
    return collect_rows(file, parsed)


def _blank(v: Any) -> bool:
    return v is _MISSING or v is None or (isinstance(v, str) and not v.strip())


def _side(v: Any, column: str, how: str, lowercase: bool, what: str):
    """One cell -> (tokens, None) or (None, issue)."""
    if v is _MISSING or v is None:
        return None, (column, "" if v is _MISSING else "null", f"missing {what}",
                      f"give every row a {what}, or remove the row")
    if isinstance(v, str):
        tokens = tokenize(v, how, lowercase)
        if not "".join(tokens).strip():
            return None, (column, shorten(v), f"empty {what}: the text has no tokens",
                          f"give the row a non-empty {what}, or remove it")
        return tokens, None
    if isinstance(v, (list, np.ndarray)):
        items = list(v)
        bad = [x for x in items if not isinstance(x, str) or not x.strip()]
        if bad or not items:
            rule = f"empty {what}: the list has no tokens" if not items else \
                f"a {what} list must hold non-empty strings, found {shorten(json.dumps(bad[0], default=str))}"
            return None, (column, shorten(json.dumps(items, default=str)), rule,
                          f'write the {what} as a string or a list of string tokens, e.g. ["HH", "AH"]')
        return [x.lower() for x in items] if lowercase else items, None
    return None, (column, shorten(json.dumps(v, default=str)), f"expected a {what} string or list of tokens",
                  f"write the {what} as a string")


def _read_lines(p: Path, how: str, lowercase: bool, require_target: bool) -> ReadResult:
    """A .txt file: one source per non-blank line, no targets (for predict)."""
    file = str(p)
    if require_target:
        raise DataError([Problem(file, None, None, p.suffix, "a .txt file holds sources only (one per line), "
                                 "but this step needs targets", "give a CSV/TSV/JSONL file with source and target "
                                 "columns")], header=f"cannot read {file}")
    base = os.path.basename(file)
    parsed = []
    for number, line in enumerate(read_text_file(p, file).split("\n"), start=1):
        raw = line.rstrip("\r")
        if not raw.strip():
            continue
        tokens = tokenize(raw.strip(), how, lowercase)
        rid = f"{base}:{number}"
        parsed.append(ParsedRow(TableRow(number, {}, raw), Record(rid, file, number, tokens=tokens,
                                                            extra={"target": None, "group": group_key(tokens)}),
                              rid, []))
    if not parsed:
        raise DataError([Problem(file, None, None, "", "the file is empty", "add one source per line")],
                        header=f"cannot read {file}")
    return collect_rows(file, parsed)


def read_cmudict(path: str | os.PathLike, *, lowercase: bool = True) -> ReadResult:
    """Read a CMUdict ``.dict`` file: ``word[(n)] PH1 PH2 ...`` per line, ``# comments`` allowed.

    Stress digits are removed (``AA1`` -> ``AA``), leaving the 39 phones of `CMUDICT_PHONES`.
    Alternates ``word(2)`` are grouped under the base word (``extra["group"]``). A pronunciation
    that becomes identical to an earlier one of the same word once stress is removed is kept out
    of the records and counted in ``ReadResult`` as not a problem: it is the same pair again
    (`duplicate_pronunciations` on the result says how many).

    Returns:
        ReadResult; each record: ``tokens`` = the word's characters, ``extra["target"]`` = phones,
        ``extra["group"]`` = the base word, id ``"<file name>:<line>"``.
    """
    p = Path(path)
    file = str(path)
    _check_file(p)
    base = os.path.basename(file)
    parsed: list[ParsedRow] = []
    seen: dict[str, set[tuple[str, ...]]] = {}
    duplicates = 0
    for number, line in enumerate(read_text_file(p, file).split("\n"), start=1):
        raw = line.rstrip("\r")
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue  # blank or comment-only line
        rid = f"{base}:{number}"
        head, *phones = text.split()
        m = _ALTERNATE.match(head)
        word = m.group("word") if m else head
        if lowercase:
            word = word.lower()
        issues = []
        if "(" in word or ")" in word:
            issues.append(("word", shorten(head), "malformed word: parentheses only as a final (n) alternate marker",
                           "write the word, or word(2) for its second pronunciation"))
        if not phones:
            issues.append(("phones", shorten(head), "no phones after the word",
                           "write the pronunciation after the word, e.g. `cat K AE1 T`"))
        plain = [ph.rstrip("012") for ph in phones]
        unknown = [ph for ph, pl in zip(phones, plain, strict=True) if pl not in CMUDICT_PHONES]
        if unknown:
            issues.append(("phones", shorten(unknown[0]), f"unknown phone (not one of the 39 ARPAbet phones, "
                           f"stress digits 0-2 allowed); {len(unknown)} such in this line",
                           "correct the phone, e.g. AH0, or remove the line"))
        rec = None
        if not issues:
            prons = seen.setdefault(word, set())
            if tuple(plain) in prons:
                duplicates += 1
                continue
            prons.add(tuple(plain))
            rec = Record(rid, file, number, tokens=list(word), extra={"target": plain, "group": word})
        parsed.append(ParsedRow(TableRow(number, {}, raw), rec, rid, [(number, i) for i in issues]))
    if not parsed:
        raise DataError([Problem(file, None, None, "", "no entries in the dictionary",
                                 "add lines like `cat K AE1 T`")], header=f"cannot read {file}")
    result = collect_rows(file, parsed)
    result.duplicate_pronunciations = duplicates  # type: ignore[attr-defined]
    return result


def group_split(records: list[Record], *, fractions: dict[str, float], seed: int) -> dict[str, list[Record]]:
    """Seeded split by group: every record of a group (all pronunciations of a word, all targets of
    one source) lands on the same side, so no held-out source is ever seen in training.

    Groups are listed in sorted order and shuffled with ``numpy.random.default_rng(seed)``; the
    first ``round(G * f)`` go to the first held-out split, and so on; train keeps the rest and at
    least one group. Records keep their file order within each split.

    Returns:
        {"train": [...], **{name: [...] for name in fractions}}.

    Raises:
        ConfigError: a fraction outside (0, 1) or fractions summing to 1 or more.
    """
    for name, f in fractions.items():
        if not 0 < f < 1:
            raise ConfigError(f"data.{name}_fraction={f!r} must be between 0 and 1 (exclusive)")
    if sum(fractions.values()) >= 1:
        raise ConfigError(f"split fractions {fractions} add up to 1 or more; train would get nothing")
    groups = sorted({r.extra["group"] for r in records})
    order = np.random.default_rng(seed).permutation(len(groups))
    where: dict[str, str] = {}
    start = 0
    for name, f in fractions.items():
        n = min(max(1, round(len(groups) * f)), max(0, len(groups) - 1 - start))
        for i in order[start:start + n]:
            where[groups[i]] = name
        start += n
    out: dict[str, list[Record]] = {"train": [], **{name: [] for name in fractions}}
    for r in records:
        out[where.get(r.extra["group"], "train")].append(r)
    return out
