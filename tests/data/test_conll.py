"""CoNLL / CoNLL-U / JSONL readers for tagging: provenance, column choice and every bad-input case."""

from __future__ import annotations

import json

import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.data.conll import detect_format, read_tagged
from rnnkit.errors import ConfigError, DataError

CONLLU = """# sent_id = s1
# text = Ali'nin evi var.
1-2\tAli'nin\t_\t_\t_\t_\t_\t_\t_\t_
1\tAli\tali\tPROPN\tNNP\t_\t3\tnmod\t_\t_
2\t'nin\t_\tADP\tGEN\t_\t1\tcase\t_\t_
3\tevi\tev\tNOUN\tNN\t_\t4\tnsubj\t_\t_
3.1\tgizli\t_\tADJ\tJJ\t_\t_\t_\t_\t_
4\tvar\tvar\tVERB\tVB\t_\t0\troot\t_\t_

# sent_id = s2
1\tEvet\tevet\tINTJ\tUH\t_\t0\troot\t_\t_
2\t.\t.\tPUNCT\t.\t_\t1\tpunct\t_\t_
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_conllu_skips_ranges_and_empty_nodes_and_keeps_provenance(tmp_path):
    p = write(tmp_path, "a.conllu", CONLLU)
    res = read_tagged(p)
    assert res.rows == 2 and not res.problems
    first, second = res.records
    assert first.tokens == ["Ali", "'nin", "evi", "var"]  # the range line and the empty node are not tokens
    assert first.extra["tags"] == ["PROPN", "ADP", "NOUN", "VERB"]
    assert first.line == 4 and first.extra["lines"] == [4, 5, 6, 8] and first.file == str(p)
    assert second.line == 11 and second.id == "a.conllu:11"
    assert read_tagged(p, conll_column="xpos").records[0].extra["tags"] == ["NNP", "GEN", "NN", "VB"]
    assert read_tagged(p, conll_column="deprel").records[1].extra["tags"] == ["root", "punct"]
    lemmas = read_tagged(p, conll_column=3)  # LEMMA: "_" in the first sentence is a missing tag
    assert [r.extra["tags"] for r in lemmas.records] == [["evet", "."]]
    assert [(q.line, q.column) for q in lemmas.problems] == [(5, "lemma")]
    with pytest.raises(ConfigError, match="upos"):
        read_tagged(p, conll_column="pos")


def test_conll_columns_comments_docstart_and_tag_column(tmp_path):
    text = ("-DOCSTART- -X- -X- O\n\n# sent_id = 1\n# a comment\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
            "#hash NN B-NP O\nPeter NNP B-NP B-PER\n")
    p = write(tmp_path, "train.txt", text)
    assert detect_format(p) == "conll"
    res = read_tagged(p)
    assert [r.tokens for r in res.records] == [["EU", "rejects"], ["#hash", "Peter"]]  # '#hash' has 4 columns: a token
    assert [r.extra["tags"] for r in res.records] == [["B-ORG", "O"], ["O", "B-PER"]]  # last column by default
    assert res.records[0].line == 5 and res.records[1].line == 8
    assert read_tagged(p, conll_column=2).records[0].extra["tags"] == ["NNP", "VBZ"]


def test_tab_separated_conll_keeps_spaces_inside_tokens(tmp_path):
    p = write(tmp_path, "t.tsv", "New York\tB-LOC\nis\tO\n")
    assert read_tagged(p).records[0].tokens == ["New York", "is"]


def test_jsonl_reader_and_keys(tmp_path):
    p = write(tmp_path, "d.jsonl", json.dumps({"words": ["a", "b"], "labels": ["X", "Y"]}) + "\n")
    res = read_tagged(p, token_column="words", tag_column="labels")
    assert res.records[0].tokens == ["a", "b"] and res.records[0].extra["tags"] == ["X", "Y"]
    assert res.records[0].line == 1


def test_every_bad_case_is_named_with_file_and_line(tmp_path):
    bad_jsonl = write(tmp_path, "bad.jsonl", "\n".join([
        json.dumps({"tokens": ["a", "b", "c"], "tags": ["X", "Y"]}),  # line 1: count mismatch
        "{not json",  # line 2
        json.dumps({"tokens": [], "tags": []}),  # line 3: empty sentence
        json.dumps({"tokens": ["a"]}),  # line 4: no tags
        json.dumps({"tokens": ["a", 3], "tags": ["X", "Y"]}),  # line 5: a token that is not a string
        json.dumps({"tokens": ["ok"], "tags": ["X"]}),  # line 6: fine
    ]) + "\n")
    res = read_tagged(bad_jsonl)
    assert [r.line for r in res.records] == [6]
    by_line = {p.line: p for p in res.problems}
    assert set(by_line) == {1, 2, 3, 4, 5} and set(res.bad_rows) == {1, 2, 3, 4, 5}
    assert "different numbers of tokens and tags" in by_line[1].rule and by_line[1].value == "3 tokens, 2 tags"
    assert "invalid JSON" in by_line[2].rule
    assert "empty sentence" in by_line[3].rule
    assert by_line[4].column == "tags"

    bad_conll = write(tmp_path, "bad.conll", "a X\nb Y\n\nc\nd Z\n\ne X\nf X extra\n")
    res = read_tagged(bad_conll)
    assert [r.tokens for r in res.records] == [["a", "b"]]
    assert [(p.line, "expected a token and a tag column" in p.rule or "2 columns" in p.rule)
            for p in res.problems] == [(4, True), (8, True)]

    bad_conllu = write(tmp_path, "bad.conllu", "1\ta\ta\tNOUN\t_\t_\t0\troot\t_\t_\n3\tb\tb\tVERB\t_\t_\t1\tx\t_\t_\n"
                       "\n1\tc\tc\t_\t_\t_\t0\troot\t_\t_\n\n1\td\td\tNOUN\n\n# only a comment\n")
    res = read_tagged(bad_conllu)
    got = sorted((p.line, p.rule) for p in res.problems)
    assert got[0] == (2, "expected token id 2")
    assert got[1][0] == 4 and "missing tag" in got[1][1]
    assert got[2][0] == 6 and "10 tab-separated" in got[2][1]
    assert got[3][0] == 8 and "empty sentence" in got[3][1]
    assert res.records == []


def test_bad_rows_stop_training_with_file_line_and_skip_writes_rejects(tmp_path):
    rows = [{"tokens": ["a", "b"], "tags": ["X", "Y"]}] * 200 + [{"tokens": ["a", "b"], "tags": ["X"]}]
    train = write(tmp_path, "train.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = C.resolve(None, ["task=tag", f"data.train={train}", "train.max_epochs=1", "model.hidden_size=8",
                           "model.embedding_dim=8", "train.progress=none"])
    with pytest.raises(DataError) as err:
        api.train(cfg, tmp_path / "run")
    assert f"{train}:201" in str(err.value) and "tokens and tags" in str(err.value)
    cfg = C.resolve(None, ["data.bad_rows=skip"], base=cfg)
    summary = api.train(cfg, tmp_path / "run2")
    rejects = [json.loads(x) for x in (tmp_path / "run2" / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [201] and summary["data"]["rejected"] == 1


def test_unseen_tag_in_val_is_an_error_naming_the_token_line(tmp_path):
    train = write(tmp_path, "train.conll", "a X\nb Y\n\n" * 30)
    val = write(tmp_path, "val.conll", "a X\nb Y\n\na X\nb NEW\n")
    cfg = C.resolve(None, ["task=tag", f"data.train={train}", f"data.val={val}", "data.test_fraction=0",
                           "train.progress=none"])
    with pytest.raises(DataError) as err:
        api.train(cfg, tmp_path / "run")
    assert f"{val}:5" in str(err.value) and "not seen in the training data" in str(err.value)


def test_a_full_width_space_token_is_a_token_and_an_empty_one_is_not(tmp_path):
    """Japanese text tokenized by MeCab has U+3000 (ideographic space) as a token of its own (the hironsancorpus NER
    file has two): in a tab-separated CoNLL file it is a token, not an empty cell; a cell of ASCII spaces is empty."""
    p = write(tmp_path, "ja.conll", "東京\tB-LOC\n\u3000\tO\n都\tI-LOC\n\n \tO\nです\tO\n")
    res = read_tagged(p)
    assert res.records[0].tokens == ["東京", "\u3000", "都"] and res.records[0].extra["tags"] == ["B-LOC", "O", "I-LOC"]
    assert [(q.line, q.column, q.rule) for q in res.problems] == [(5, "token", "empty token")]
    jl = write(tmp_path, "ja.jsonl", json.dumps({"tokens": ["東京", "\u3000"], "tags": ["B-LOC", "O"]}) + "\n")
    assert read_tagged(jl).records[0].tokens == ["東京", "\u3000"]
