"""validate_splits: error / skip policies, the bad fraction, labels unseen in train."""

from __future__ import annotations

import json

import pytest

from rnnkit.data.readers import read_records
from rnnkit.data.records import Record
from rnnkit.data.validate import UNSEEN_LABEL_RULE, unseen_label_problems, validate_splits
from rnnkit.errors import ConfigError, DataError


def csv_file(path, rows):
    path.write_text("text,label\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def two_bad_files(tmp_path):
    train = csv_file(tmp_path / "train.csv", ["a b,x", "c,y", "bad,", "d,x,extra"] + [f"w{i},x" for i in range(96)])
    val = csv_file(tmp_path / "val.csv", ["a,x", ",y", "b,y"])
    return read_records(train), read_records(val)


def test_error_policy_lists_all_problems_of_all_files(two_bad_files):
    train, val = two_bad_files
    with pytest.raises(DataError) as e:
        validate_splits({"train": train, "val": val})
    err = e.value
    assert [(p.file.rsplit("/", 1)[-1], p.line) for p in err.problems] == [
        ("train.csv", 4),
        ("train.csv", 5),
        ("val.csv", 3),
    ]
    head = str(err).splitlines()[0]
    assert "3 bad row(s)" in head and "2 in " in head and "train.csv" in head and "1 in " in head
    assert "--bad-rows skip" in head


def test_error_policy_without_problems_passes_everything(tmp_path):
    res = read_records(csv_file(tmp_path / "t.csv", ["a,x", "b,y"]))
    out = validate_splits({"train": res})
    assert [r.id for r in out.splits["train"]] == ["t.csv:2", "t.csv:3"]
    assert out.rejected == 0
    assert out.report == {"train": {"rows": 2, "rejected": 0}, "rejects_file": None}


def test_skip_writes_exactly_the_bad_rows(two_bad_files, tmp_path):
    train, val = two_bad_files
    rejects = tmp_path / "run" / "rejects.jsonl"
    out = validate_splits({"train": train, "val": val}, policy="skip", max_bad_fraction=0.05, rejects_path=rejects)
    assert out.rejected == 3
    assert out.report["train"] == {"rows": 100, "rejected": 2}
    assert out.report["val"] == {"rows": 3, "rejected": 1}
    assert out.report["rejects_file"] == str(rejects)
    assert [r.line for r in out.splits["train"]] == [2, 3] + list(range(6, 102))
    assert [r.line for r in out.splits["val"]] == [2, 4]
    lines = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(x["split"], x["line"], x["record_id"], x["raw"]) for x in lines] == [
        ("train", 4, "train.csv:4", "bad,\n"),
        ("train", 5, "train.csv:5", "d,x,extra\n"),
        ("val", 3, "val.csv:3", ",y\n"),
    ]
    assert lines[0]["problems"][0]["rule"] == "missing label"
    assert lines[0]["file"].endswith("train.csv")
    assert out.rejects == lines


def test_skip_above_the_fraction_raises_after_writing_rejects(two_bad_files, tmp_path):
    train, val = two_bad_files
    rejects = tmp_path / "rejects.jsonl"
    with pytest.raises(DataError) as e:
        validate_splits({"train": train, "val": val}, policy="skip", max_bad_fraction=0.01, rejects_path=rejects)
    head = str(e.value).splitlines()[0]
    assert "3 of 103 rows (2.91%)" in head and "0.01" in head and str(rejects) in head
    assert "--set data.max_bad_fraction=0.05" in head
    assert len(e.value.problems) == 3
    assert len(rejects.read_text().splitlines()) == 3


def test_skip_with_nothing_rejected_writes_no_file(tmp_path):
    res = read_records(csv_file(tmp_path / "t.csv", ["a,x"]))
    rejects = tmp_path / "rejects.jsonl"
    out = validate_splits({"train": res}, policy="skip", rejects_path=rejects)
    assert not rejects.exists() and out.report["rejects_file"] is None


def test_skip_without_a_path_warns(two_bad_files):
    train, val = two_bad_files
    with pytest.warns(RuntimeWarning, match="skipped 3 bad row"):
        out = validate_splits({"train": train, "val": val}, policy="skip", max_bad_fraction=0.5)
    assert out.rejected == 3 and len(out.rejects) == 3


def test_unseen_label_in_val(tmp_path):
    train = read_records(csv_file(tmp_path / "train.csv", ["a,x", "b,y"]))
    val = read_records(csv_file(tmp_path / "val.csv", ["a,x", "b,z", "c,y"]))
    with pytest.raises(DataError) as e:
        validate_splits({"train": train, "val": val})
    (p,) = e.value.problems
    assert (p.line, p.column, p.value, p.rule, p.record_id) == (
        3,
        "label",
        "z",
        UNSEEN_LABEL_RULE,
        "val.csv:3",
    )
    assert "add examples" in p.fix
    out = validate_splits(
        {"train": train, "val": val}, policy="skip", max_bad_fraction=0.5, rejects_path=tmp_path / "r"
    )
    assert [r.label for r in out.splits["val"]] == ["x", "y"]
    assert out.report["val"]["rejected"] == 1
    entry = json.loads((tmp_path / "r").read_text())
    assert entry["raw"] is None and entry["problems"][0]["rule"] == UNSEEN_LABEL_RULE
    # regression targets: every value is new, the check can be turned off
    assert len(validate_splits({"train": train, "val": val}, check_labels=False).splits["val"]) == 3


def test_unseen_label_problems_directly():
    def rec(i, label):
        return Record(f"f:{i}", "f", i, tokens=["t"], label=label)

    assert unseen_label_problems([rec(1, "a")], [rec(2, "a"), rec(3, "b"), rec(4, None)])[0].line == 3
    assert len(unseen_label_problems([rec(1, "a")], [rec(2, "b"), rec(3, "c")])) == 2
    assert unseen_label_problems([rec(1, None)], [rec(2, "b")]) == []  # unlabeled train: nothing to compare


def test_long_format_problems_group_under_their_sequence(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("id,t,x,label\ns,1,1,a\ns,2,nan,a\nk,1,1,a\n", encoding="utf-8")
    res = read_records(f, id_column="id", time_column="t")
    out = validate_splits({"train": res}, policy="skip", max_bad_fraction=0.6, rejects_path=tmp_path / "r.jsonl")
    (entry,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert (entry["line"], entry["record_id"]) == (2, "l.csv:s")
    assert entry["problems"][0]["line"] == 3 and entry["raw"] == "s,1,1,a\ns,2,nan,a\n"
    assert [r.id for r in out.splits["train"]] == ["l.csv:k"]


@pytest.mark.parametrize("kwargs", [{"policy": "ignore"}, {"max_bad_fraction": 1.5}, {"max_bad_fraction": "0.1"}])
def test_bad_settings_are_config_errors(tmp_path, kwargs):
    res = read_records(csv_file(tmp_path / "t.csv", ["a,x"]))
    with pytest.raises(ConfigError):
        validate_splits({"train": res}, **kwargs)
