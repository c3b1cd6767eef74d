"""Readers for sequence labeling: CoNLL columns, CoNLL-U, and JSONL with token/tag lists.

Every reader returns a `rnnkit.data.records.ReadResult`, so `rnnkit.data.validate.validate_splits`
applies the bad-row policy (error / skip with rejects.jsonl) exactly as for classification. One
"row" is one sentence: a sentence is kept or rejected as a whole. A good sentence becomes a `Record`
with ``tokens``, ``label=None`` and ``extra = {"tags": [...] or None, "lines": [line per token],
"index": sentence index in the file}``; ``Record.line`` is the line of its first token.

Formats:

* ``conll``: one token per line, columns separated by tabs (when the file's token lines hold a
  tab) or else by runs of spaces; a blank line ends a sentence. The token is the first column and
  the tag the last one, unless ``conll_column`` is a 1-based column number. ``-DOCSTART-`` lines
  (CoNLL-2003 document breaks) are not sentences and are counted in ``ReadInfo``. A line that
  starts with ``#`` before the first token of a sentence is a comment when its column count
  differs from the file's or it holds " = " (``# sent_id = 3``); so ``#hashtag<TAB>O`` stays a token.
* ``conllu``: ten tab-separated columns (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC);
  ``#`` lines are comments. Multiword-token ranges (``1-2``) and empty nodes (``1.1``) are not
  tokens of the tagged sequence and are skipped (the syntactic words they span are the tokens);
  the tag comes from ``conll_column`` (``upos``, ``xpos``, ``deprel``..., or a 1-based number).
  ``_`` in the tag column is a missing tag.
* ``jsonl``: one JSON object per line with a list of tokens and a list of tags (keys
  ``token_column`` / ``tag_column``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.data.cells import whole_number
from rnnkit.data.records import RAW_LIMIT, ReadResult, Record
from rnnkit.errors import ConfigError, DataError, Problem, shorten

FORMATS = ("auto", "conll", "conllu", "jsonl")
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
UNSEEN_TAG_RULE = "tag not seen in the training data"
_JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")


@dataclass
class _Sentence:
    """A block of lines between blank lines, before interpretation."""

    index: int  # 0-based sentence number in the file (bad sentences count too)
    start: int  # line of the first token (or of the block when it has none)
    lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) of token lines
    raw: list[str] = field(default_factory=list)  # every line of the block, comments included


def detect_format(path: str | Path, fmt: str = "auto") -> str:
    """The format to read `path` with: `fmt` itself, or guessed from the extension and content.

    ``.conllu`` -> conllu; ``.jsonl``/``.ndjson``/``.json`` -> jsonl; anything else is conllu when
    its first token line has ten tab-separated fields starting with an integer id, else conll.

    Raises:
        ConfigError: `fmt` is not one of `FORMATS`.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"tag.format={fmt!r} is not one of {', '.join(FORMATS)}.")
    if fmt != "auto":
        return fmt
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".conllu":
        return "conllu"
    if suffix in _JSONL_EXTENSIONS:
        return "jsonl"
    try:
        with open(p, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.rstrip("\r\n")
                if _blank(text) or text.startswith("#"):
                    continue
                fields = text.split("\t")
                return "conllu" if len(fields) == 10 and fields[0].split("-")[0].split(".")[0].isdigit() else "conll"
    except OSError:
        pass  # read_tagged reports the missing file
    return "conll"


def _read_lines(path: Path) -> list[str]:
    file = str(path)
    if not path.is_file():
        raise DataError([Problem(file, None, None, file, "file not found", "check the path")],
                        header=f"cannot read {file}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError([Problem(file, line, None, repr(exc.object[exc.start:exc.start + 8]), "not valid UTF-8",
                                 "save the file as UTF-8")], header=f"cannot read {file}") from None


def _blocks(lines: list[str]) -> Iterable[_Sentence]:
    """Split lines into sentences at blank lines (several blank lines count as one break)."""
    current: _Sentence | None = None
    index = 0
    for number, text in enumerate(lines, start=1):
        if _blank(text):
            if current is not None:
                yield current
                index += 1
                current = None
            continue
        if current is None:
            current = _Sentence(index=index, start=number)
        current.raw.append(text)
        current.lines.append((number, text))
    if current is not None:
        yield current


def _conllu_column(conll_column: str | int) -> int:
    """0-based CoNLL-U column index of the tag column."""
    spec = str(conll_column).strip().lower()
    if whole_number(spec):
        number = int(spec)
        if not 1 <= number <= 10:
            raise ConfigError(f"tag.conll_column={conll_column!r}: a CoNLL-U file has columns 1-10.")
        return number - 1
    if spec not in CONLLU_COLUMNS:
        raise ConfigError(f"tag.conll_column={conll_column!r} is not a CoNLL-U column; use one of "
                          f"{', '.join(CONLLU_COLUMNS)} or a 1-based column number.")
    return CONLLU_COLUMNS.index(spec)


def _parse_conllu(s: _Sentence, file: str, tag_col: int, require_tags: bool):
    """-> (tokens, tags|None, lines, problems) for one CoNLL-U sentence."""
    tokens, tags, lines, problems = [], [], [], []
    col_name = CONLLU_COLUMNS[tag_col]
    expected_id = 1
    for number, text in s.lines:
        if text.startswith("#"):
            continue
        fields = text.split("\t")
        if len(fields) != 10:
            problems.append(Problem(file, number, None, shorten(text), f"expected 10 tab-separated CoNLL-U "
                                    f"fields, found {len(fields)}", "separate the ten columns with single tabs; "
                                    "write _ for an empty field"))
            if whole_number(fields[0]):  # still the line of token N: the next token is N + 1, not a second problem
                expected_id = int(fields[0]) + 1
            continue
        tid = fields[0]
        if "-" in tid or "." in tid:  # multiword-token range or empty node: not a token of the sequence
            continue
        if not whole_number(tid) or int(tid) != expected_id:
            problems.append(Problem(file, number, "id", shorten(tid), f"expected token id {expected_id}",
                                    "number the tokens of each sentence 1, 2, 3, ... (ranges 1-2 and empty "
                                    "nodes 1.1 are allowed)"))
            expected_id = int(tid) + 1 if whole_number(tid) else expected_id + 1
            continue
        expected_id += 1
        form, tag = fields[1], fields[tag_col]
        if _blank(form):
            problems.append(Problem(file, number, "form", repr(form), "empty token", "write the word form in "
                                    "column 2"))
        if require_tags and (tag == "_" or _blank(tag)):
            problems.append(Problem(file, number, col_name, tag, f"missing tag in column {col_name}",
                                    f"fill in column {col_name}, or choose another with --set tag.conll_column=..."))
        tokens.append(form)
        tags.append(tag)
        lines.append(number)
    if not tokens and not problems:
        problems.append(Problem(file, s.start, None, shorten(" | ".join(s.raw)), "empty sentence (no token lines)",
                                "remove the block or add its tokens"))
    if not require_tags and any(t == "_" for t in tags):
        tags = None  # unlabeled input for predict
    return tokens, tags, lines, problems


def _conll_layout(sentences: list[_Sentence]) -> tuple[bool, int]:
    """(tab separated?, usual column count) of a plain CoNLL file, from its non-# token lines."""
    token_lines = [t for s in sentences for _, t in s.lines if not t.startswith("#") and not _is_docstart(t)]
    tabs = any("\t" in t for t in token_lines)
    counts = Counter(len(_split(t, tabs)) for t in token_lines)
    return tabs, (counts.most_common(1)[0][0] if counts else 2)


def _split(text: str, tabs: bool) -> list[str]:
    return text.split("\t") if tabs else text.split()


def _blank(text: str) -> bool:
    """Empty or ASCII whitespace only. Other Unicode spaces are text: U+3000 (ideographic space) is a token of its
    own in Japanese text tokenized by MeCab, so a line or cell holding it is not blank."""
    return not text.strip(" \t\n\r\f\v")


def _is_docstart(text: str) -> bool:
    return text.lstrip().startswith("-DOCSTART-")


def _parse_conll(s: _Sentence, file: str, tabs: bool, width: int, tag_col: int | None, require_tags: bool):
    tokens, tags, lines, problems = [], [], [], []
    for number, text in s.lines:
        fields = _split(text, tabs)
        if not tokens and text.startswith("#") and (len(fields) != width or " = " in text):
            continue  # a comment before the sentence's first token
        if width == 1 and not require_tags:
            tokens.append(fields[0] if fields else text)
            lines.append(number)
            continue
        if len(fields) != width or width < 2:
            need = "a token and a tag column" if width < 2 else f"{width} columns like the rest of the file"
            problems.append(Problem(file, number, None, shorten(text), f"expected {need}, found {len(fields)}",
                                    "give every token line the same columns (token first, tag last), separated "
                                    "by tabs or spaces; end a sentence with a blank line"))
            continue
        tag = fields[tag_col if tag_col is not None else -1]
        if _blank(fields[0]):
            problems.append(Problem(file, number, "token", repr(fields[0]), "empty token", "write the token in "
                                    "the first column"))
        tokens.append(fields[0])
        tags.append(tag)
        lines.append(number)
    if not tokens and not problems:
        problems.append(Problem(file, s.start, None, shorten(" | ".join(s.raw)), "empty sentence (only comments)",
                                "remove the block or add its tokens"))
    return tokens, (tags if tags and len(tags) == len(tokens) else None), lines, problems


def _string_list(value, key: str, file: str, number: int, what: str) -> tuple[list[str] | None, list[Problem]]:
    fix = f'write "{key}" as a JSON list of strings, e.g. {{"{key}": ["a", "b"]}}'
    if not isinstance(value, list):
        return None, [Problem(file, number, key, shorten(json.dumps(value)), f"{what} must be a JSON list", fix)]
    bad = [i for i, v in enumerate(value) if not isinstance(v, str) or _blank(v) or any(c in v for c in "\t\n\r")]
    if bad:
        return None, [Problem(file, number, key, shorten(json.dumps(value[bad[0]])),
                              f"{what} {bad[0] + 1} (and {len(bad) - 1} more) is not a non-empty string without tabs "
                              "or line breaks" if len(bad) > 1 else
                              f"{what} {bad[0] + 1} is not a non-empty string without tabs or line breaks", fix)]
    return value, []


def _read_jsonl(path: Path, lines: list[str], token_column: str, tag_column: str, require_tags: bool,
                keep: Callable[[int], bool] | None) -> ReadResult:
    file = str(path)
    records, problems, bad_rows, record_ids = [], [], {}, {}
    rows = 0
    index = 0
    for number, text in enumerate(lines, start=1):
        if _blank(text):
            continue
        this, index = index, index + 1
        if keep is not None and not keep(this):
            continue
        rows += 1
        rid = f"{path.name}:{number}"
        found: list[Problem] = []
        tokens = tags = None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            obj = None
            found.append(Problem(file, number, None, shorten(text), f"invalid JSON ({exc.msg} at character "
                                 f"{exc.colno})", "write one JSON object per line", rid))
        if obj is not None and not isinstance(obj, dict):
            found.append(Problem(file, number, None, shorten(text), "expected a JSON object",
                                 f'write {{"{token_column}": [...], "{tag_column}": [...]}} per line', rid))
        elif isinstance(obj, dict):
            if token_column not in obj:
                found.append(Problem(file, number, token_column, shorten(text), f"no {token_column!r} key",
                                     f"add the token list, or set --set tag.token_column=KEY (keys: "
                                     f"{', '.join(map(str, obj))})", rid))
            else:
                tokens, probs = _string_list(obj[token_column], token_column, file, number, "token")
                found += probs
                if tokens is not None and not tokens:
                    found.append(Problem(file, number, token_column, "[]", "empty sentence (no tokens)",
                                         "remove the line or add its tokens", rid))
            if tag_column in obj and obj[tag_column] is not None:
                tags, probs = _string_list(obj[tag_column], tag_column, file, number, "tag")
                found += probs
                if tokens is not None and tags is not None and len(tokens) != len(tags):
                    found.append(Problem(file, number, tag_column, f"{len(tokens)} tokens, {len(tags)} tags",
                                         "the sentence has different numbers of tokens and tags",
                                         "give exactly one tag per token", rid))
            elif require_tags:
                found.append(Problem(file, number, tag_column, shorten(text), f"no {tag_column!r} key",
                                     "add the tag list, or set --set tag.tag_column=KEY", rid))
        found = [p if p.record_id else Problem(**{**p.to_dict(), "record_id": rid}) for p in found]
        if found:
            problems += found
            bad_rows[number] = text[:RAW_LIMIT]
            record_ids[number] = rid
            continue
        records.append(Record(id=rid, file=file, line=number, tokens=list(tokens),
                              extra={"tags": list(tags) if tags is not None else None,
                                     "lines": [number] * len(tokens), "index": this}))
    return ReadResult(records=records, problems=problems, rows=rows, bad_rows=bad_rows, record_ids=record_ids)


def read_tagged(path: str | Path, *, format: str = "auto", conll_column: str | int = "upos",
                token_column: str = "tokens", tag_column: str = "tags", require_tags: bool = True,
                keep: Callable[[int], bool] | None = None) -> ReadResult:
    """Read one file of tagged (or, for predict, untagged) sentences.

    Args:
        path: the file.
        format: one of `FORMATS` ("auto" guesses with `detect_format`).
        conll_column: CoNLL-U tag column (name or 1-based number); for plain CoNLL, a 1-based
            column number picks the tag column (anything else: the last column).
        token_column, tag_column: JSONL keys.
        require_tags: False for predict: tags are read when present (kept as gold) but optional.
        keep: selects sentences by their 0-based index in the file (e.g. a package's own split);
            sentences not kept are neither records nor rows.

    Returns:
        ReadResult: one row per kept sentence; each bad sentence is in ``bad_rows`` (keyed by its
        first token line) with every problem found in it.

    Raises:
        DataError: the file is missing or not UTF-8.
        ConfigError: an unknown format or tag column.
    """
    p = Path(path)
    fmt = detect_format(p, format)
    tag_conllu = _conllu_column(conll_column) if fmt == "conllu" else None
    lines = _read_lines(p)
    if fmt == "jsonl":
        return _read_jsonl(p, lines, token_column, tag_column, require_tags, keep)
    file = str(p)
    sentences = [s for s in _blocks(lines) if not all(_is_docstart(t) for _, t in s.lines)]
    for i, s in enumerate(sentences):  # -DOCSTART- blocks are not sentences: renumber the rest
        s.index = i
    tabs, width = _conll_layout(sentences) if fmt == "conll" else (True, 10)
    tag_col = None
    if fmt == "conll" and whole_number(str(conll_column).strip()):
        tag_col = int(str(conll_column).strip()) - 1
        if not 1 <= tag_col < width:
            raise ConfigError(f"tag.conll_column={conll_column!r}: {file} has {width} columns (the token is "
                              f"column 1); choose a tag column from 2 to {width}.")
    records, problems, bad_rows, record_ids = [], [], {}, {}
    rows = 0
    for s in sentences:
        if keep is not None and not keep(s.index):
            continue
        rows += 1
        if fmt == "conllu":
            tokens, tags, token_lines, found = _parse_conllu(s, file, tag_conllu, require_tags)
        else:
            tokens, tags, token_lines, found = _parse_conll(s, file, tabs, width, tag_col, require_tags)
        # a sentence is named by its first token line, or by an earlier bad line (which is no token)
        start = min([*token_lines[:1], *(q.line for q in found if q.line is not None)], default=s.start)
        rid = f"{p.name}:{start}"
        if found:
            problems += [Problem(**{**q.to_dict(), "record_id": rid}) for q in found]
            bad_rows[start] = "\n".join(s.raw)[:RAW_LIMIT]
            record_ids[start] = rid
            continue
        records.append(Record(id=rid, file=file, line=start, tokens=tokens,
                              extra={"tags": tags, "lines": token_lines, "index": s.index}))
    return ReadResult(records=records, problems=problems, rows=rows, bad_rows=bad_rows, record_ids=record_ids)


def reject_unseen_tags(result: ReadResult, known: set[str]) -> ReadResult:
    """Move sentences with a tag that training never showed into ``bad_rows``.

    The output layer has no unit for such a tag, so the sentence cannot be scored fairly; under the
    default policy it stops the run (naming each token's file:line), under ``--bad-rows skip`` the
    sentence goes to rejects.jsonl. Sentences without tags are kept.
    """
    keep, problems = [], list(result.problems)
    bad_rows, record_ids = dict(result.bad_rows), dict(result.record_ids)
    for r in result.records:
        tags = r.extra.get("tags")
        found = [Problem(r.file, line, "tag", shorten(tag), UNSEEN_TAG_RULE,
                         "add training sentences with this tag, fix the tag, or pass --bad-rows skip to drop "
                         "the sentence", r.id)
                 for tag, line in zip(tags or [], r.extra["lines"], strict=True) if tag not in known]
        if not found:
            keep.append(r)
            continue
        problems += found
        bad_rows[r.line] = "\n".join(f"{t}\t{g}" for t, g in zip(r.tokens, tags, strict=True))[:RAW_LIMIT]
        record_ids[r.line] = r.id
    return ReadResult(records=keep, problems=problems, rows=result.rows, bad_rows=bad_rows, record_ids=record_ids)


__all__ = ["CONLLU_COLUMNS", "FORMATS", "UNSEEN_TAG_RULE", "detect_format", "read_tagged", "reject_unseen_tags"]
