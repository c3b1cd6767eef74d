"""read_records: every format, every bad-row kind, whole-file errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from rnnkit.data.datasets import get_builtin
from rnnkit.data.readers import read_records
from rnnkit.data.records import RAW_LIMIT, ReadResult
from rnnkit.errors import ConfigError, DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def check_invariants(res: ReadResult):
    """Every row is either a record or a bad row with at least one problem, never both."""
    assert len(res.records) + len(res.bad_rows) == res.rows
    good_lines = {r.line for r in res.records}
    assert not good_lines & set(res.bad_rows)
    for line in res.bad_rows:
        rid = res.record_ids[line]
        assert any(p.line == line or p.record_id == rid for p in res.problems), line
    for p in res.problems:
        assert p.line in res.bad_rows or p.record_id in res.record_ids.values()


def only_problem(res: ReadResult):
    assert len(res.problems) == 1, [str(p) for p in res.problems]
    return res.problems[0]


# --------------------------------------------------------------------------- round trips


def test_csv_text_round_trip(tmp_path):
    f = write(tmp_path / "reviews.csv", "text,label\nthe  movie was Great,pos\nawful,neg\n")
    res = read_records(f)
    check_invariants(res)
    assert res.rows == 2 and not res.problems
    a, b = res.records
    assert (a.id, a.file, a.line, a.tokens, a.label, a.values) == (
        "reviews.csv:2",
        str(f),
        2,
        ["the", "movie", "was", "Great"],
        "pos",
        None,
    )
    assert (b.id, b.line, b.tokens, b.label) == ("reviews.csv:3", 3, ["awful"], "neg")


def test_text_lowercase_and_char_tokenize(tmp_path):
    f = write(tmp_path / "w.csv", "word,label\nAbc,x\n")
    res = read_records(f, text_column="word", tokenize="char", lowercase=True)
    assert res.records[0].tokens == ["a", "b", "c"]
    res = read_records(f, text_column="word", tokenize="char")
    assert res.records[0].tokens == ["A", "b", "c"]


def test_csv_numeric_json_cells(tmp_path):
    f = write(tmp_path / "s.csv", 'sequence,label\n"[1, 2, 3]",a\n"[[1, 2], [3, 4]]",b\n')
    res = read_records(f, input="numeric")
    # channel counts differ (1 vs 2): on a tie the earlier row sets the expected width
    assert [r.line for r in res.records] == [2]
    assert only_problem(res).line == 3 and "expected 1 channel(s)" in only_problem(res).rule
    f = write(tmp_path / "s.csv", 'sequence,label\n"[[1, 2], [3, 4], [5, 6]]",a\n"[[0.5, -1e3]]",3\n')
    res = read_records(f)
    check_invariants(res)
    a, b = res.records
    assert a.values.dtype == np.float32 and a.values.shape == (3, 2)
    np.testing.assert_array_equal(a.values, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(b.values, [[0.5, -1000.0]])
    assert b.label == "3"
    f = write(tmp_path / "u.csv", 'sequence,label\n"[1, 2, 3]",a\n')
    assert read_records(f).records[0].values.shape == (3, 1)


def test_tsv(tmp_path):
    f = write(tmp_path / "d.tsv", 'label\ttext\nx\ta, b c\ny\t"q\tr"\n')
    res = read_records(f)
    assert [r.tokens for r in res.records] == [["a,", "b", "c"], ["q", "r"]]
    assert [r.label for r in res.records] == ["x", "y"]


def test_jsonl_text_and_numeric(tmp_path):
    f = write(tmp_path / "d.jsonl", '{"text": "a b", "label": 3}\n\n{"text": "c", "label": "x"}\n')
    res = read_records(f)
    check_invariants(res)
    assert [(r.id, r.line, r.tokens, r.label) for r in res.records] == [
        ("d.jsonl:1", 1, ["a", "b"], "3"),
        ("d.jsonl:3", 3, ["c"], "x"),
    ]
    f = write(tmp_path / "n.ndjson", '{"sequence": [[1, 2]], "label": 0}\n{"sequence": "[[3, 4]]", "label": 1}\n')
    res = read_records(f)
    assert [r.values.tolist() for r in res.records] == [[[1.0, 2.0]], [[3.0, 4.0]]]


def test_parquet_text_and_numeric(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": ["a b", "c"], "label": [1, 2]})
    pq.write_table(table, tmp_path / "t.parquet")
    res = read_records(tmp_path / "t.parquet")
    assert [(r.id, r.line, r.tokens, r.label) for r in res.records] == [
        ("t.parquet:1", 1, ["a", "b"], "1"),
        ("t.parquet:2", 2, ["c"], "2"),
    ]
    # list column and JSON-string column both work for numeric input
    table = pa.table({"sequence": [[[1.0, 2.0], [3.0, 4.0]], [[5.0, float("nan")]]], "label": ["a", "b"]})
    pq.write_table(table, tmp_path / "n.parquet")
    res = read_records(tmp_path / "n.parquet")
    check_invariants(res)
    assert len(res.records) == 1 and res.records[0].values.shape == (2, 2)
    p = only_problem(res)
    assert (p.line, p.column, p.value) == (2, "sequence", "nan")
    assert "NaN" in p.rule
    assert json.loads(res.bad_rows[2])["label"] == "b"
    pq.write_table(pa.table({"sequence": ["[1, 2]"], "label": ["a"]}), tmp_path / "s.parquet")
    assert read_records(tmp_path / "s.parquet").records[0].values.shape == (2, 1)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    f = write(tmp_path / "t.parquet", "not really parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow...` raise ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError) as e:
        read_records(f)
    assert "pip install 'rnnkit[parquet]'" in e.value.problems[0].fix


def test_arrow_ipc_file_and_stream_read_as_parquet_does(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather
    import pyarrow.ipc
    import pyarrow.parquet as pq

    table = pa.table({"text": ["a b", "c", "d e f"], "label": [1, 2, 1]})
    pq.write_table(table, tmp_path / "t.parquet")
    pyarrow.feather.write_feather(table, tmp_path / "t.feather", chunksize=2)  # Feather v2: the IPC file format
    with pyarrow.ipc.new_file(tmp_path / "t.arrow", table.schema) as w:
        w.write_table(table, max_chunksize=1)
    with pyarrow.ipc.new_stream(tmp_path / "t.ipc", table.schema) as w:  # the stream format
        w.write_table(table, max_chunksize=2)
    expected = [(r.line, r.tokens, r.label) for r in read_records(tmp_path / "t.parquet").records]
    assert expected == [(1, ["a", "b"], "1"), (2, ["c"], "2"), (3, ["d", "e", "f"], "1")]
    for name in ("t.feather", "t.arrow", "t.ipc"):
        res = read_records(tmp_path / name)
        assert [(r.line, r.tokens, r.label) for r in res.records] == expected, name
        assert res.records[1].id == f"{name}:2"
    # numeric: a list column, with a bad value reported by row and column; the raw text is the row's JSON
    seqs = pa.table({"sequence": [[[1.0, 2.0], [3.0, 4.0]], [[5.0, float("nan")]]], "label": ["a", "b"]})
    pyarrow.feather.write_feather(seqs, tmp_path / "n.feather")
    res = read_records(tmp_path / "n.feather")
    check_invariants(res)
    assert len(res.records) == 1 and res.records[0].values.shape == (2, 2)
    p = only_problem(res)
    assert (p.file, p.line, p.column, p.value) == (str(tmp_path / "n.feather"), 2, "sequence", "nan")
    assert json.loads(res.bad_rows[2])["label"] == "b"


def test_an_unreadable_arrow_file_is_said_with_its_name_and_a_fix(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    cases = {"garbage.arrow": (b"definitely not arrow", "not a readable Arrow IPC file"),
             "empty.feather": (b"", "the file is empty"),
             "old.feather": (b"FEA1" + b"\0" * 60, "Feather v1"),
             "cut.arrow": (b"ARROW1\0\0" + b"\1" * 40, "footer, at the end, cannot be read")}
    for name, (data, rule) in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        with pytest.raises(DataError) as e:
            read_records(f)
        problem = e.value.problems[0]
        assert problem.file == str(f) and rule in problem.rule, name
        assert "write_feather" in problem.fix, name
    none = tmp_path / "none.arrow"
    with pa.ipc.new_file(none, pa.schema([("text", pa.string()), ("label", pa.string())])):
        pass
    with pytest.raises(DataError, match="the file has no rows"):
        read_records(none)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow...` raise ImportError
    with pytest.raises(DataError) as e:
        read_records(tmp_path / "garbage.arrow")
    assert "Arrow IPC files needs the pyarrow package" in e.value.problems[0].rule
    assert "pip install 'rnnkit[parquet]'" in e.value.problems[0].fix


def test_long_format_unsorted_rows(tmp_path):
    f = write(
        tmp_path / "long.csv",
        "series,t,x,y,label\nb,2,20,21,n\na,10,3,30,p\na,2,1,10,p\nb,1,10,11,n\na,9,2,20,p\n",
    )
    res = read_records(f, id_column="series", time_column="t")
    check_invariants(res)
    assert res.rows == 2
    b, a = res.records  # file order of each sequence's first row
    assert (b.id, b.line, b.label, b.extra["sequence_id"]) == ("long.csv:b", 2, "n", "b")
    assert (a.id, a.line, a.label) == ("long.csv:a", 3, "p")
    # numeric time order: 2 < 9 < 10 (string order would put "10" first)
    np.testing.assert_array_equal(a.values, [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(b.values, [[10, 11], [20, 21]])
    res = read_records(f, id_column="series", time_column="t", feature_columns=["y"])
    np.testing.assert_array_equal(res.records[1].values, [[10], [20], [30]])


def test_long_format_string_times_and_jsonl(tmp_path):
    rows = [
        {"id": 1, "when": "2024-01-03", "v": 3, "label": "k"},
        {"id": 1, "when": "2024-01-01", "v": 1, "label": "k"},
    ]
    f = write(tmp_path / "l.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    res = read_records(f, id_column="id", time_column="when")
    assert res.records[0].id == "l.jsonl:1"
    np.testing.assert_array_equal(res.records[0].values, [[1], [3]])


def test_ts_small_file(tmp_path):
    f = write(
        tmp_path / "x.ts",
        "# comment\n@problemName X\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
        "@equalLength false\n@CLASSLABEL true a b\n@data\n1,2,3:4,5,6:a\n\n7,8:9,10:b\n",
    )
    res = read_records(f)
    check_invariants(res)
    a, b = res.records
    assert (a.id, a.line, a.label) == ("x.ts:10", 10, "a")
    np.testing.assert_array_equal(a.values, [[1, 4], [2, 5], [3, 6]])
    assert (b.line, b.values.shape) == (12, (2, 2))


def test_ts_percent_comments_before_data_are_comments(tmp_path):
    """sktime's own UnitTest_TRAIN.ts starts with `%#` and `%` lines (the archive's comment style): it stopped with
    "a line before @data must be a header line" and a wrong fix ("add the @data line")."""
    f = write(tmp_path / "u.ts", "%# a cut down version of ChinaTown\n% more words\n%\n@problemName U\n"
                                 "@univariate true\n@classLabel true 1 2\n@data\n1,2,3:1\n4,5,6:2\n")
    assert [r.label for r in read_records(f).records] == ["1", "2"]
    bad = write(tmp_path / "bad.ts", "@problemName U\nsome stray words\n@data\n1,2:1\n")
    with pytest.raises(DataError) as err:
        read_records(bad)
    text = str(err.value)
    assert "bad.ts" in text and ":2" in text and "some stray words" in text
    assert "comment starting with # or %" in text and "each comment with # (or %)" in text


def test_unittest_real_file_loads():
    import importlib.util

    spec = importlib.util.find_spec("sktime")
    if spec is None:
        pytest.skip("sktime is not installed")
    from pathlib import Path

    path = Path(spec.submodule_search_locations[0]) / "datasets/data/UnitTest/UnitTest_TRAIN.ts"
    res = read_records(path)
    assert len(res.records) == 20 and not res.problems


def test_japanese_vowels_real_file():
    ds = get_builtin("japanese_vowels")
    if not ds.installed():
        pytest.skip("sktime (which ships JapaneseVowels) is not installed")
    files = ds.files()
    train = read_records(files["train"], **ds.reader_options)
    assert train.rows == 270 and len(train.records) == 270 and not train.problems
    assert {r.values.shape[1] for r in train.records} == {12}
    assert {r.values.dtype for r in train.records} == {np.dtype(np.float32)}
    assert sorted({r.label for r in train.records}) == [str(i) for i in range(1, 10)]
    assert all(r.line > 10 and r.id == f"JapaneseVowels_TRAIN.ts:{r.line}" for r in train.records)
    test = read_records(files["test"], **ds.reader_options)
    assert len(test.records) == 370
    lengths = [len(r) for r in train.records + test.records]
    assert (min(lengths), max(lengths)) == (7, 29)
    first = train.records[0].values
    assert first[0, 0] == pytest.approx(1.860936) and first[0, 1] == pytest.approx(-0.207383)


# --------------------------------------------------------------------------- bad rows


def test_csv_line_numbers_count_multiline_quoted_fields(tmp_path):
    f = write(tmp_path / "m.csv", 'text,label\n"first\nsecond\nthird",a\nok,b\nbad,\n')
    res = read_records(f)
    check_invariants(res)
    assert [r.line for r in res.records] == [2, 5]
    assert res.records[0].tokens == ["first", "second", "third"]
    p = only_problem(res)
    assert (p.file, p.line, p.column, p.value, p.rule) == (str(f), 6, "label", "", "missing label")
    assert p.record_id == "m.csv:6"
    assert res.bad_rows == {6: "bad,\n"}


def test_too_few_and_too_many_fields_are_errors_not_padding(tmp_path):
    f = write(tmp_path / "f.csv", "a,text,label\n1,x y,p\n2,only\n3,z,q,extra\n")
    res = read_records(f)
    check_invariants(res)
    assert [r.line for r in res.records] == [2]
    few, many = res.problems
    assert (few.line, few.column, few.value) == (3, None, "2,only")
    assert "expected 3 fields" in few.rule and "found 2" in few.rule
    assert (many.line, many.value) == (4, "3,z,q,extra")
    assert "found 4" in many.rule
    assert set(res.bad_rows) == {3, 4}


def test_unclosed_quote_is_a_row_problem(tmp_path):
    f = write(tmp_path / "q.csv", 'text,label\ngood,a\n"unclosed,b\n')
    res = read_records(f)
    check_invariants(res)
    p = only_problem(res)
    assert p.line == 3 and "quoting" in p.rule


def test_jsonl_bad_rows(tmp_path):
    lines = [
        '{"text": "fine", "label": "a"}',
        '{"text": "broken", ',
        '{"label": "a"}',
        '{"text": "no label"}',
        '{"text": "null label", "label": null}',
        '["not", "an", "object"]',
        '{"text": "", "label": "a"}',
        '{"text": 5, "label": "a"}',
    ]
    f = write(tmp_path / "j.jsonl", "\n".join(lines) + "\n")
    res = read_records(f)
    check_invariants(res)
    assert [r.line for r in res.records] == [1]
    by_line = {p.line: p for p in res.problems}
    assert "invalid JSON" in by_line[2].rule and by_line[2].value == '{"text": "broken", '
    assert (by_line[3].column, by_line[3].rule) == ("text", "missing key 'text'")
    assert (by_line[4].column, by_line[4].rule) == ("label", "missing key 'label'")
    assert (by_line[5].column, by_line[5].rule) == ("label", "missing label")
    assert "JSON object" in by_line[6].rule
    assert "empty sequence" in by_line[7].rule
    assert "expected a text string" in by_line[8].rule
    assert res.bad_rows[2] == '{"text": "broken", '


@pytest.mark.parametrize(
    ("cell", "rule_part", "value"),
    [
        ('"[1, 2"', "invalid JSON", "[1, 2"),
        ('"[1, ""a"", 3]"', "non-numeric", '"a"'),
        ('"[1, true]"', "non-numeric", "true"),
        ('"[1, NaN]"', "NaN/Inf", "nan"),
        ('"[1, Infinity]"', "NaN/Inf", "inf"),
        ('"[1, null]"', "missing value", "null"),
        ('"[]"', "empty sequence", "[]"),
        ('"[[1, 2], [3]]"', "ragged channels", "[3]"),
        ('"[1, [2]]"', "mix numbers and lists", "[2]"),
        ('"[1e39]"', "float32 range", "1e+39"),
        ("", "missing sequence", ""),
    ],
)
def test_numeric_bad_cells(tmp_path, cell, rule_part, value):
    f = write(tmp_path / "n.csv", f'sequence,label\n"[1, 2]",a\n{cell},b\n')
    res = read_records(f, input="numeric")
    check_invariants(res)
    p = only_problem(res)
    assert (p.file, p.line, p.column, p.record_id) == (str(f), 3, "sequence", "n.csv:3")
    assert rule_part in p.rule
    assert p.value == value


def test_numeric_problem_positions_are_listed(tmp_path):
    f = write(tmp_path / "n.jsonl", json.dumps({"sequence": [[1, None], [None, 2]], "label": "a"}) + "\n")
    p = only_problem(read_records(f))
    assert p.rule.startswith("2 missing value(s)") and "step 0 channel 1, step 1 channel 0" in p.rule


def test_channel_count_must_match_other_records(tmp_path):
    rows = [[[1, 2]], [[3, 4]], [[5, 6, 7]], [[8, 9]]]
    f = write(tmp_path / "c.jsonl", "".join(json.dumps({"sequence": s, "label": "a"}) + "\n" for s in rows))
    res = read_records(f)
    check_invariants(res)
    p = only_problem(res)
    assert (p.line, p.value) == (3, "3") and "expected 2 channel(s)" in p.rule


def test_long_format_bad_sequences(tmp_path):
    f = write(
        tmp_path / "l.csv",
        "id,t,x,label\n"
        "ok,1,1,a\n"  # 2
        "dup,1,1,a\n"  # 3
        "dup,1.0,2,a\n"  # 4: same numeric time as line 3
        "lab,1,1,a\n"  # 5
        "lab,2,1,b\n"  # 6: label changes
        "nan,1,nan,a\n"  # 7
        ",1,1,a\n"  # 8: no id
        "few,1\n"  # 9: too few fields, id readable
        "few,2,5,a\n"  # 10
        "ok,2,2,a\n",  # 11
    )
    res = read_records(f, id_column="id", time_column="t")
    check_invariants(res)
    assert [r.id for r in res.records] == ["l.csv:ok"]
    np.testing.assert_array_equal(res.records[0].values, [[1], [2]])
    # one rejected unit per bad sequence (keyed by its first line) plus the id-less row
    assert set(res.bad_rows) == {3, 5, 7, 8, 9}
    assert res.rows == 6
    assert res.record_ids[3] == "l.csv:dup" and res.record_ids[8] == "l.csv:8"
    assert res.bad_rows[3] == "dup,1,1,a\ndup,1.0,2,a\n"
    by_id = {p.record_id: p for p in res.problems}
    dup = by_id["l.csv:dup"]
    assert (dup.line, dup.column, dup.value) == (4, "t", "1.0") and "duplicate time" in dup.rule
    lab = by_id["l.csv:lab"]
    assert (lab.line, lab.column, lab.value) == (6, "label", "b") and "label not constant" in lab.rule
    nan = by_id["l.csv:nan"]
    assert (nan.line, nan.column, nan.value) == (7, "x", "nan")
    assert by_id["l.csv:8"].rule == "missing sequence id"
    few = by_id["l.csv:few"]
    assert few.line == 9 and "expected 4 fields" in few.rule


def test_ts_bad_cases(tmp_path):
    f = write(
        tmp_path / "b.ts",
        "@dimensions 2\n@classLabel true a b\n@data\n"
        "1,2:3,4:a\n"  # 4 ok
        "1,?:3,4:a\n"  # 5 missing marker
        "1,2,3:4,5:b\n"  # 6 ragged channels
        "1,2:3,4:zzz\n"  # 7 undeclared label
        "1,2:a\n"  # 8 one channel, two declared
        "1,x:3,4:b\n",  # 9 non-numeric
    )
    res = read_records(f)
    check_invariants(res)
    assert [r.line for r in res.records] == [4]
    by_line = {p.line: p for p in res.problems}
    assert (by_line[5].column, by_line[5].value) == ("channel 0", "?") and "missing value" in by_line[5].rule
    assert by_line[6].column == "channel 1" and "ragged channels" in by_line[6].rule
    assert (by_line[7].column, by_line[7].value) == ("label", "zzz") and "not declared" in by_line[7].rule
    assert "expected 2 channel(s)" in by_line[8].rule
    assert (by_line[9].column, by_line[9].value) == ("channel 0", "x") and "non-numeric" in by_line[9].rule


def test_ts_timestamps_rejected(tmp_path):
    f = write(tmp_path / "t.ts", "@timeStamps true\n@classLabel true a\n@data\n(0,1),(1,2):a\n")
    with pytest.raises(DataError, match="not supported"):
        read_records(f)


def test_bad_row_raw_text_is_capped(tmp_path):
    long_text = "x" * (RAW_LIMIT + 500)
    f = write(tmp_path / "big.csv", f"text,label\n{long_text},a,extra\n")
    res = read_records(f)
    assert len(res.bad_rows[2]) == RAW_LIMIT


# --------------------------------------------------------------------------- whole-file problems


def test_missing_column_names_nearest(tmp_path):
    f = write(tmp_path / "c.csv", "review,lable\nnice,a\n")
    with pytest.raises(DataError) as e:
        read_records(f, input="text", text_column="reveiw")
    problems = e.value.problems
    assert [p.column for p in problems] == ["reveiw", "label"]
    # with input "auto" the layout cannot be told, and the near miss is still named
    with pytest.raises(DataError) as auto:
        read_records(f, text_column="reveiw")
    assert [p.column for p in auto.value.problems] == [None, "reveiw", "label"]
    assert "data.text_column=review" in auto.value.problems[1].fix
    assert "'review'" in problems[0].fix and "data.text_column=review" in problems[0].fix
    assert "'lable'" in problems[1].fix
    assert "columns found: 'review', 'lable'" in problems[0].rule


def test_auto_input_failure_lists_columns_and_options(tmp_path):
    f = write(tmp_path / "c.csv", "body,label\nnice,a\n")
    with pytest.raises(DataError) as e:
        read_records(f)
    p = e.value.problems[0]
    assert "'body'" in p.rule
    assert "--set data.text_column=" in p.fix and "--set data.id_column=" in p.fix


def test_headerless_file_is_detected(tmp_path):
    f = write(tmp_path / "h.csv", "1.5,2.5\n3.5,4.5\n")
    with pytest.raises(DataError) as e:
        read_records(f, input="text")
    assert any("looks like data" in p.rule for p in e.value.problems)


@pytest.mark.parametrize("content", ["", "\n\n", "text,label\n"])
def test_empty_file(tmp_path, content):
    f = write(tmp_path / "e.csv", content)
    with pytest.raises(DataError, match="empty|no data rows"):
        read_records(f)


def test_not_utf8(tmp_path):
    f = tmp_path / "l.csv"
    f.write_bytes("text,label\ncaf\u00e9,a\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_records(f)
    p = e.value.problems[0]
    assert p.line == 2 and "UTF-8" in p.rule


def test_file_not_found_and_unknown_extension(tmp_path):
    write(tmp_path / "train.csv", "text,label\na,b\n")
    with pytest.raises(DataError) as e:
        read_records(tmp_path / "trian.csv")
    assert e.value.problems[0].rule == "file not found" and "train.csv" in e.value.problems[0].fix
    f = write(tmp_path / "d.data", "text,label\na,b\n")
    with pytest.raises(DataError) as e:
        read_records(f)
    assert ".csv" in e.value.problems[0].rule and ".parquet" in e.value.problems[0].rule
    assert "data.format" in e.value.problems[0].fix
    assert read_records(f, format="csv").records[0].tokens == ["a"]  # an explicit format wins


def test_bad_options_are_config_errors(tmp_path):
    f = write(tmp_path / "d.csv", "text,label\na,b\n")
    with pytest.raises(ConfigError, match="tokenize"):
        read_records(f, tokenize="words")
    with pytest.raises(ConfigError, match="id_column"):
        read_records(f, input="long")


def test_unlabeled_when_not_required(tmp_path):
    f = write(tmp_path / "d.csv", "text\na b\n")
    res = read_records(f, require_label=False)
    assert res.records[0].label is None
    with pytest.raises(DataError, match="column not found"):
        read_records(f)


# --------------------------------------------------------------------------- issue 8 item 8: delimiters


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_item8_one_column_header_is_sniffed(tmp_path, sep):
    rows = [f"text{sep}label", f"a fine film{sep}pos", f'"awful{sep} really"{sep}neg', f"so so{sep}pos"]
    f = write(tmp_path / "d.csv", "\n".join(rows) + "\n")
    res = read_records(f)
    assert [(r.tokens, r.label) for r in res.records] == [
        (["a", "fine", "film"], "pos"), (f"awful{sep} really".split(), "neg"), (["so", "so"], "pos")]
    # a real one-column file (predict input, only a text column) is not sniffed: delimiters in the text stay text
    f = write(tmp_path / "p.csv", f"text\nfine{sep} really\nok{sep}sure\n")
    assert [r.tokens for r in read_records(f, require_label=False).records] == [
        f"fine{sep} really".split(), f"ok{sep}sure".split()]


def test_item8_delimiter_option(tmp_path):
    f = write(tmp_path / "d.csv", "text;label\na, b;pos\nc;neg\n")
    for name in (";", "semicolon"):
        assert [r.tokens for r in read_records(f, delimiter=name).records] == [["a,", "b"], ["c"]]
    tsv = write(tmp_path / "t.tsv", "text|label\na b|x\n")
    assert read_records(tsv, delimiter="pipe").records[0].label == "x"
    assert read_records(write(tmp_path / "t2.csv", "text\tlabel\na\tx\n"), delimiter="tab").records[0].label == "x"
    with pytest.raises(ConfigError, match=r"data.delimiter=';;' must be auto, one character"):
        read_records(f, delimiter=";;")
    with pytest.raises(DataError) as e:
        read_records(f, delimiter=",")
    (p,) = e.value.problems
    assert (p.line, p.value) == (1, "text;label")
    assert "reads as one column when split on ','" in p.rule and "separated by ';'" in p.rule
    assert "--set data.delimiter=semicolon" in p.fix and "did you mean" not in str(e.value)


def test_item8_ambiguous_one_column_header_asks_for_the_delimiter(tmp_path):
    f = write(tmp_path / "d.csv", "a;b|c\n1\n")
    with pytest.raises(DataError) as e:
        read_records(f)
    (p,) = e.value.problems
    assert "holds ';' or '|'" in p.rule and "--set data.delimiter=" in p.fix


# --------------------------------------------------------------------------- long format read in chunks


def _write_long_mess(path, series=40, steps=9, seed=0):
    """Long format with the rows of the sequences interleaved (every sequence spans chunks of 7 rows) and a bad
    row of every kind: no id, a broken row (a field too many), a bad value, a missing time, a duplicate time, a
    label that changes within a sequence."""
    rng = np.random.default_rng(seed)
    rows = [[f"s{s}", str(t), f"{rng.normal():.4f}", f"{rng.normal():.4f}", "ab"[s % 2]]
            for s in range(series) for t in range(steps)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    rows[5][0] = ""  # no id
    rows[17][2] = "x"  # a bad value
    rows[30][1] = ""  # a missing time
    rows[44][1] = next(r[1] for r in rows if r[0] == rows[44][0] and r is not rows[44])  # a duplicate time
    rows[60][4] = "c"  # the label changes within its sequence
    lines = ["series,t,x,y,label"] + [",".join(r) for r in rows]
    lines[90] += ",extra"  # a field too many
    path.write_text("\n".join(lines) + "\n")
    return path


def test_long_format_read_in_chunks_equals_the_whole_read(tmp_path, monkeypatch):
    """Long format in chunks of 7 rows (each row kept slim once its chunk is read): the records (values, labels,
    lines, ids), every problem, the bad rows' raw text and the ids are those of the whole-file read."""
    from rnnkit.data import readers

    path = _write_long_mess(tmp_path / "long.csv")
    options = {"id_column": "series", "time_column": "t"}
    with monkeypatch.context() as m:
        m.setattr(readers, "LONG_CHUNKED", ())  # the whole-file read
        whole = read_records(path, **options)
    loaded = []
    real = readers.iter_tables
    monkeypatch.setattr(readers, "iter_tables", lambda *a, **k: (loaded.append(k["rows"]), real(*a, **k))[1])
    monkeypatch.setattr(readers, "LONG_CHUNK_ROWS", 7)
    chunked = read_records(path, **options)
    assert loaded == [7, 7]  # the second pass reads the rejected sequences' raw text again
    assert len(whole.records) > 30 and len(whole.problems) >= 6
    assert [(r.id, r.line, r.label, r.extra, r.values.dtype, r.values.tobytes(), r.values.shape)
            for r in chunked.records] == [(r.id, r.line, r.label, r.extra, r.values.dtype, r.values.tobytes(),
                                           r.values.shape) for r in whole.records]
    assert chunked.problems == whole.problems
    assert (chunked.rows, chunked.bad_rows, chunked.record_ids) == (whole.rows, whole.bad_rows, whole.record_ids)
    rules = " | ".join(p.rule for p in whole.problems)
    for expected in ("sequence id", "duplicate time", "label not constant", "non-numeric", "time value"):
        assert expected in rules, expected


def _read_counted(path, monkeypatch, whole: bool, **options):
    """read_records(path) with the long-format chunk size 7 (or the whole-file read), and the chunk sizes every
    `iter_tables` call asked for."""
    from rnnkit.data import readers

    loaded: list = []
    real = readers.iter_tables
    with monkeypatch.context() as m:
        m.setattr(readers, "iter_tables", lambda *a, **k: (loaded.append(k["rows"]), real(*a, **k))[1])
        m.setattr(readers, "LONG_CHUNK_ROWS", 7)
        if whole:
            m.setattr(readers, "LONG_CHUNKED", ())
        return read_records(path, **options), loaded


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_long_format_parquet_and_arrow_in_chunks_equal_the_whole_read(tmp_path, monkeypatch, fmt):
    """Parquet and Arrow long format with rejected sequences: the chunked read (the rejected rows' raw text read
    again from the file) gives the whole read's records, problems and raw text."""
    pa = pytest.importorskip("pyarrow")
    lines = _write_long_mess(tmp_path / "long.csv").read_text().splitlines()
    rows = [ln.split(",") for ln in lines[1:] if ln.count(",") == 4]  # the row with a field too many left out
    columns = lines[0].split(",")

    def typed(i, cell):  # times int64, values float64, a bad value ("x") or empty cell a null
        if i in (1, 2, 3):
            try:
                return (int if i == 1 else float)(cell)
            except ValueError:
                return None
        return cell or None

    table = pa.table({c: [typed(i, r[i]) for r in rows] for i, c in enumerate(columns)})
    path = tmp_path / f"long.{fmt}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path, row_group_size=11)
    else:
        import pyarrow.feather as feather

        feather.write_feather(table, path, chunksize=11)
    options = {"id_column": "series", "time_column": "t"}
    whole, _ = _read_counted(path, monkeypatch, True, **options)
    chunked, loaded = _read_counted(path, monkeypatch, False, **options)
    assert loaded == [7, 7]
    assert len(whole.records) > 30 and whole.bad_rows
    assert [(r.id, r.line, r.label, r.values.tobytes()) for r in chunked.records] == [
        (r.id, r.line, r.label, r.values.tobytes()) for r in whole.records]
    assert chunked.problems == whole.problems
    assert (chunked.rows, chunked.bad_rows, chunked.record_ids) == (whole.rows, whole.bad_rows, whole.record_ids)


def test_long_format_without_rejects_is_read_once(tmp_path, monkeypatch):
    """The file is read a second time only for rejected sequences' raw text: a clean file is read once, and its
    records equal the whole read's."""
    lines = _write_long_mess(tmp_path / "mess.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.count(",") == 4 and ",," not in ln and not ln.startswith(",")
                         and ",x," not in ln and not ln.endswith(",c")]
    seen, clean = set(), [keep[0]]
    for ln in keep[1:]:  # the duplicate time left out
        key = tuple(ln.split(",")[:2])
        if key not in seen:
            seen.add(key)
            clean.append(ln)
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(clean) + "\n")
    options = {"id_column": "series", "time_column": "t"}
    whole, _ = _read_counted(path, monkeypatch, True, **options)
    chunked, loaded = _read_counted(path, monkeypatch, False, **options)
    assert not whole.problems and len(whole.records) == 40
    assert loaded == [7]
    assert [(r.id, r.line, r.label, r.values.tobytes()) for r in chunked.records] == [
        (r.id, r.line, r.label, r.values.tobytes()) for r in whole.records]


def test_long_format_in_chunks_needs_less_memory(tmp_path, monkeypatch):
    """tracemalloc's peak reading 800 series x 25 steps of long format: chunks of 1,000 rows, each row kept in
    flat columns (a few bytes a step beside its values), against every row's dict of fields at once."""
    import tracemalloc

    from rnnkit.data import readers

    rng = np.random.default_rng(0)
    lines = ["series,t,a,b,c,label"] + [f"s{s},{t},{rng.normal():.4f},{rng.normal():.4f},{rng.normal():.4f},"
                                        f"{'ab'[s % 2]}" for s in range(800) for t in range(25)]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    peaks = {}
    for chunked in (False, True):
        with monkeypatch.context() as m:
            m.setattr(readers, "LONG_CHUNK_ROWS", 1_000)
            if not chunked:
                m.setattr(readers, "LONG_CHUNKED", ())
            tracemalloc.start()
            try:
                got = read_records(path, id_column="series", time_column="t")
                peaks[chunked] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert len(got.records) == 800
    assert peaks[True] < 0.3 * peaks[False], peaks


def test_long_format_from_a_pipe_is_read_once(tmp_path):
    """A path that can be read only once (a pipe) is read whole: the rejected sequence's raw text is the one
    read, not a second read of a drained pipe."""
    import os
    import threading

    text = "id,t,a,label\ns1,1,1,x\ns1,2,x,x\ns2,1,1,y\n"
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, text.encode()), os.close(w)))
    writer.start()
    try:
        res = read_records(f"/proc/self/fd/{r}", format="csv", id_column="id", time_column="t")
    finally:
        writer.join()
        os.close(r)
    assert [rec.id for rec in res.records] == [f"{r}:s2"]
    assert res.bad_rows == {2: "s1,1,1,x\ns1,2,x,x\n"}
