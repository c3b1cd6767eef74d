"""Item 6: bad rows, one fixture per kind, in CSV, JSONL and UEA/UCR .ts files.

Policy `error`: one error (exit 2, before training) lists every bad row of every file with file:line,
column, value and rule, and nothing else. Policy `skip`: exactly those rows land in rejects.jsonl (with
their raw text), the counts are reported, and more than `data.max_bad_fraction` bad rows still fails.

Token/tag count mismatches, timestamp errors and empty pairs belong to the tag, forecast and seq2seq
families: see test_family_data.py.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from relsupport import sets

from rnnkit.cli import main

SMALL = ["model.hidden_size=8", "model.embedding_dim=8", "data.batch_size=16", "train.max_epochs=1",
         "train.threads=1", "train.progress=plain"]


def _good(i: int) -> tuple[list[list[float]], str]:
    """A short 2-channel sine whose frequency gives the class."""
    k = i % 3
    steps = [[round(math.sin(0.4 * (k + 1) * t), 4), round(math.cos(0.4 * (k + 1) * t), 4)] for t in range(4 + i % 5)]
    return steps, f"c{k}"


def _csv_row(steps, label):
    return f'"{json.dumps(steps)}",{label}'


def _jsonl_row(steps, label):
    return json.dumps({"sequence": steps, "label": label})


def _ts_row(steps, label):
    return ":".join(",".join(str(s[c]) for s in steps) for c in range(2)) + f":{label}"


TS_HEADER = ("@problemName reliability\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
             "@equalLength false\n@classLabel true c0 c1 c2 c3\n@data\n")

# kind -> (bad row text, column, value, rule) per format; None: the kind does not exist in that format
BAD = {
    "csv": {
        "too many fields": ('"[[1, 2]]",c0,extra', None, '"[[1, 2]]",c0,extra', "expected 2 fields like the header"),
        "too few fields": ('"[[1, 2]]"', None, '"[[1, 2]]"', "expected 2 fields like the header (line 1), found 1"),
        "invalid JSON": ('"[[1, 2], [3,",c1', "sequence", "[[1, 2], [3,", "invalid JSON in the cell"),
        "NaN feature": ('"[[1, NaN], [2, 3]]",c1', "sequence", "nan", "1 NaN/Inf value(s) at step 0 channel 1"),
        "Inf feature": ('"[[1, 2], [-Infinity, 3]]",c1', "sequence", "-inf", "1 NaN/Inf value(s) at step 1 channel 0"),
        "non-numeric value": ('"[[1, ""abc""]]",c2', "sequence", '"abc"', "1 non-numeric value(s) at step 0 channel 1"),
        "empty sequence": ("[],c0", "sequence", "[]", "empty sequence: zero steps"),
    },
    "jsonl": {
        "too few fields": ('{"sequence": [[1, 2]]}', "label", "", "missing key 'label'"),
        "invalid JSON": ('{"sequence": [[1, 2], [3,', None, '{"sequence": [[1, 2], [3,', "invalid JSON"),
        "NaN feature": ('{"sequence": [[1, NaN], [2, 3]], "label": "c1"}', "sequence", "nan", "1 NaN/Inf value(s)"),
        "Inf feature": ('{"sequence": [[1, 2], [-Infinity, 3]], "label": "c1"}', "sequence", "-inf",
                        "1 NaN/Inf value(s) at step 1 channel 0"),
        "non-numeric value": ('{"sequence": [[1, "abc"]], "label": "c2"}', "sequence", '"abc"',
                              "1 non-numeric value(s) at step 0 channel 1"),
        "empty sequence": ('{"sequence": [], "label": "c0"}', "sequence", "[]", "empty sequence: zero steps"),
    },
    "ts": {
        "too many fields": ("1,2:3,4:5,6:c0", None, "3", "expected 2 channel(s) as declared in @dimensions, found 3"),
        "too few fields": ("1,2:c0", None, "1", "expected 2 channel(s) as declared in @dimensions, found 1"),
        "NaN feature": ("1,NaN:3,4:c1", "channel 0", "nan", "1 NaN/Inf value(s) at step 1"),
        "Inf feature": ("1,2:-Infinity,4:c1", "channel 1", "-inf", "1 NaN/Inf value(s) at step 0"),
        "non-numeric value": ("1,abc:3,4:c1", "channel 0", "abc", "1 non-numeric value(s) at step 1"),
        "missing value": ("1,?:3,4:c1", "channel 0", "?", "1 missing value(s) ('?' marks a missing value)"),
        "empty sequence": (":3,4:c0", "channel 0", "", "empty sequence: the channel has zero values"),
        "undeclared label": ("1,2:3,4:c9", "label", "c9", "label not declared in @classLabel"),
    },
}
ROW = {"csv": _csv_row, "jsonl": _jsonl_row, "ts": _ts_row}
HEAD = {"csv": "sequence,label\n", "jsonl": "", "ts": TS_HEADER}


def _write(tmp_path, fmt):
    """Train and val files with every bad kind of `fmt`; returns them and the expected problems."""
    first = HEAD[fmt].count("\n") + 1  # line number of the first data row
    lines, expected = [], []
    bad = list(BAD[fmt].values())
    for i in range(60):
        lines.append(ROW[fmt](*_good(i)))
        if i % 8 == 3 and bad:  # spread the bad rows through the file
            text, column, value, rule = bad.pop(0)
            lines.append(text)
            expected.append(("train", first + len(lines) - 1, column, value, rule))
    assert not bad
    train = tmp_path / f"train.{fmt}"
    train.write_text(HEAD[fmt] + "\n".join(lines) + "\n")
    # val: good rows, then one whose label the training data never shows (declared in the .ts header)
    val_lines = [ROW[fmt](*_good(i)) for i in range(12)] + [ROW[fmt](_good(0)[0], "c3")]
    val = tmp_path / f"val.{fmt}"
    val.write_text(HEAD[fmt] + "\n".join(val_lines) + "\n")
    expected.append(("val", first + len(val_lines) - 1, "label", "c3", "label not seen in the training data"))
    raw = {("train", n): t for n, t in enumerate((HEAD[fmt] + "\n".join(lines)).split("\n"), start=1)}
    raw.update({("val", n): t for n, t in enumerate((HEAD[fmt] + "\n".join(val_lines)).split("\n"), start=1)})
    return train, val, expected, raw


def _problem_lines(err):
    return [x for x in err.splitlines() if x.startswith("  - ")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ts"])
def test_error_policy_lists_every_bad_row_once(tmp_path, capsys, fmt):
    train, val, expected, _ = _write(tmp_path, fmt)
    run = tmp_path / "run"
    assert main(["train", str(train), "--val", str(val), "--out", str(run), *sets(SMALL)]) == 2
    err = capsys.readouterr().err
    n_train = sum(e[0] == "train" for e in expected)
    assert f"{len(expected)} bad row(s) ({n_train} in {train}, 1 in {val})" in err and "--bad-rows skip" in err
    listed = _problem_lines(err)
    assert len(listed) == len(expected), "\n".join(listed)  # every bad row, nothing else
    for split, line, column, value, rule in expected:
        where = f"  - {train if split == 'train' else val}:{line}" + (f" column {column!r}" if column else "") + ":"
        hits = [x for x in listed if x.startswith(where)]
        assert len(hits) == 1, (where, listed)
        assert f" value {value!r}: " in hits[0] and rule in hits[0] and "Fix: " in hits[0]
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()  # before training


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ts"])
def test_skip_policy_rejects_exactly_the_bad_rows(tmp_path, capsys, fmt):
    train, val, expected, raw = _write(tmp_path, fmt)
    run = tmp_path / "run"
    args = ["train", str(train), "--val", str(val), "--out", str(run), "--bad-rows", "skip", *sets(SMALL)]
    assert main([*args, "--set", "data.max_bad_fraction=0.2"]) == 0
    err = capsys.readouterr().err
    rejects = [json.loads(x) for x in (run / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["split"], r["line"]) for r in rejects) == sorted((e[0], e[1]) for e in expected)
    for r in rejects:
        split, line, column, value, rule = next(e for e in expected if (e[0], e[1]) == (r["split"], r["line"]))
        assert r["file"] == str(train if split == "train" else val)
        assert [(p["line"], p["column"], p["value"]) for p in r["problems"]] == [(line, column, value)]
        assert rule in r["problems"][0]["rule"]
        if r["raw"] is not None:  # reader rejects keep the row's text; the unseen label is a cross-file check
            assert r["raw"].rstrip("\r\n") == raw[(split, line)]
    summary = json.loads((run / "summary.json").read_text())
    n_train = sum(e[0] == "train" for e in expected)
    assert summary["data"]["rejected"] == len(expected)
    assert summary["data"]["train"] == {"rows": 60 + n_train, "rejected": n_train}
    assert summary["data"]["val"] == {"rows": 13, "rejected": 1}
    assert summary["data"]["sizes"]["train"] + summary["data"]["sizes"]["test"] == 60  # only good rows train
    assert f"skipped {len(expected)} bad rows (--bad-rows skip)" in err and str(run / "rejects.jsonl") in err

    # above the allowed share the run fails before training, and still says which rows were bad
    run2 = tmp_path / "run2"
    args[args.index("--out") + 1] = str(run2)
    assert main([*args, "--set", "data.max_bad_fraction=0.05"]) == 2
    err = capsys.readouterr().err
    assert f"{len(expected)} of {60 + n_train + 13} rows" in err and "more than the limit" in err
    assert len((run2 / "rejects.jsonl").read_text().splitlines()) == len(expected)
    assert not (run2 / "checkpoints").exists()


# --------------------------------------------------------------------------- issue 8: a new user's first files

RUN_FILES = ("config.yaml", "labels.json", "vocab.json", "inputs.json", "splits.json", "checkpoints", "metrics.jsonl")


def _reviews(path, labels, delimiter=","):
    """A review CSV (text, label) with one row per label given; the words follow the label."""
    words = {"pos": "great fine superb", "neg": "awful dull weak"}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(["text", "label"])
        for i, label in enumerate(labels):
            cue = words.get(str(label).strip().lower(), f"word{label}")
            w.writerow([f"the film {cue} {'plot' if i % 2 else 'cast'} number {i % 7}", label])
    return path


def _nothing_written(run):
    return [name for name in RUN_FILES if (run / name).exists()]


def _warned(recwarn) -> str:
    """The warnings so far, one a line (the CLI prints each as `rnnkit: warning: ...`; pytest records them)."""
    return "\n".join(str(w.message) for w in recwarn)


@pytest.mark.parametrize("labels", [["pos"] * 30, ["pos"]], ids=["all-one-label", "one-row"])
def test_item4_one_class_is_a_data_error_before_anything_is_written(tmp_path, capsys, labels):
    train = _reviews(tmp_path / "reviews.csv", labels)
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 2
    err = capsys.readouterr().err
    rows = f"{len(labels)} row{'s' if len(labels) > 1 else ''}"
    assert f"  - {train} column 'label': value 'pos': only one class in the training data ({rows}, all class " \
           "'pos'); a classifier needs at least 2 classes. Fix: add rows of at least one other class" in err
    assert "Traceback" not in err and "num_classes" not in err
    assert _nothing_written(run) == []


def test_item4_one_class_in_train_and_val_files(tmp_path, capsys):
    train = _reviews(tmp_path / "train.csv", ["neg"] * 20)
    val = _reviews(tmp_path / "val.csv", ["neg"] * 5)
    run = tmp_path / "run"
    assert main(["train", str(train), "--val", str(val), "--out", str(run), *sets(SMALL)]) == 2
    assert "only one class in the training data (20 rows, all class 'neg')" in capsys.readouterr().err
    assert _nothing_written(run) == []


def test_item4_empty_validation_split_is_a_data_error(tmp_path, capsys):
    train = _reviews(tmp_path / "reviews.csv", ["pos", "neg"])  # one row per class: both stay in train
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 2
    err = capsys.readouterr().err
    assert "the seeded validation split is empty (train 2, val 0, test 0)" in err
    assert "give a validation file with --val" in err
    assert _nothing_written(run) == []


def test_item4_empty_and_tiny_splits_are_warned(tmp_path, recwarn):
    train = _reviews(tmp_path / "reviews.csv", ["pos", "neg"] * 2)  # 2 per class: val takes one each, test none
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 0
    warned = _warned(recwarn)
    assert "the test split is empty (train 2, val 2, test 0)" in warned
    assert "training goes on without test metrics" in warned
    assert "tiny splits (train 2, val 2, test 0): train has only 2 rows" in warned
    assert "val has only 2 rows" in warned
    assert json.loads((run / "splits.json").read_text())["splits"]["test"] == []


def test_item5_float_spellings_of_a_label_are_one_class(tmp_path, recwarn):
    labels = [i % 2 for i in range(40)]
    labels[3], labels[5], labels[8] = "1.0", "1.0", "0.0"
    train = _reviews(tmp_path / "reviews.csv", labels)
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 0
    warned = _warned(recwarn)
    assert (f"labels '1' (18 rows, first {train}:3) and '1.0' (2 rows, first {train}:5) in column 'label' are the "
            "same number: read as one class '1'") in warned
    assert f"labels '0' (19 rows, first {train}:2) and '0.0' (1 row, first {train}:10)" in warned
    assert json.loads((run / "labels.json").read_text())["labels"] == ["0", "1"]

    # a file spelled the other way is read with the model's spelling; predictions print it
    other = _reviews(tmp_path / "other.csv", ["1.0", "0.0", "1.00", "0"])
    recwarn.clear()
    assert main(["evaluate", str(run), "--data", str(other)]) == 0
    assert "label '1.0' (1 row) in column 'label' is the same number as the model's class '1'" in _warned(recwarn)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(other), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["prediction"] for r in rows} <= {"0", "1"} and "p_1" in rows[0] and "p_1.0" not in rows[0]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_item8_delimiter_is_sniffed_when_the_header_has_one_column(tmp_path, capsys, delimiter):
    train = _reviews(tmp_path / "reviews.csv", ["pos", "neg"] * 20, delimiter=delimiter)
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 0
    assert "data: train 32, val 4, test 4; 2 classes" in capsys.readouterr().err


def test_item8_wrong_delimiter_names_the_delimiter_problem(tmp_path, capsys):
    train = _reviews(tmp_path / "reviews.csv", ["pos", "neg"] * 20, delimiter=";")
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL), "--set", "data.delimiter=comma"]) == 2
    err = capsys.readouterr().err
    assert (f"  - {train}:1: value 'text;label': the header reads as one column when split on ','; its fields look "
            "separated by ';'. Fix: set the delimiter: --set data.delimiter=semicolon") in err
    assert "did you mean" not in err and "text_column=text;label" not in err
    # the key set explicitly reads the file
    run2 = tmp_path / "run2"
    assert main(["train", str(train), "--out", str(run2), *sets(SMALL), "--set", "data.delimiter=;"]) == 0
    assert main(["train", str(train), "--out", str(tmp_path / "r3"), *sets(SMALL), "--set", "data.delimiter=|"]) == 2
    assert "data.delimiter='' must be auto, one character, or comma, semicolon, tab or pipe" in capsys.readouterr().err


def _series(path, channels, labels):
    with open(path, "w") as fh:
        for i, label in enumerate(labels):
            k = 1 + (label == "pos")
            steps = [[round(math.sin(0.3 * k * t + c), 4) for c in range(channels)] for t in range(5 + i % 4)]
            fh.write(json.dumps({"sequence": steps, "label": label}) + "\n")
    return path


def test_item12_channel_mismatch_and_unseen_labels_name_the_rows_and_the_fix(tmp_path, capsys):
    train = _series(tmp_path / "series.jsonl", 2, ["neg", "pos"] * 20)
    run = tmp_path / "run"
    assert main(["train", str(train), "--out", str(run), *sets(SMALL)]) == 0
    capsys.readouterr()
    three = _series(tmp_path / "pred_3ch.jsonl", 3, ["neg", "pos"])
    assert main(["predict", str(run), "--data", str(three), "--output", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    for line in (1, 2):
        assert (f"  - {three}:{line} column 'sequence': value '3': 3 channels, the model was trained on 2. Fix: give "
                "every sequence the 2 channels of the training data") in err
    unseen = _series(tmp_path / "unseen.jsonl", 2, ["pos", "Neg", "meh"])
    assert main(["evaluate", str(run), "--data", str(unseen)]) == 2
    err = capsys.readouterr().err
    assert f"2 row(s) of {unseen} have labels the model never saw:\n" in err
    assert (f"  - {unseen}:2 column 'label': value 'Neg': label not seen in the training data (the model knows neg, "
            "pos). Fix: did you mean 'neg'? correct the label to one the model knows, or remove the row") in err
    assert f"  - {unseen}:3 column 'label': value 'meh': label not seen" in err
    assert not [x for x in err.splitlines() if x.endswith(":") and not x.startswith("rnnkit: error:")]
