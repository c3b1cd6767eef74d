"""Item 6: bad rows, one fixture per kind, in CSV, JSONL and UEA/UCR .ts files.

Policy `error`: one error (exit 2, before training) lists every bad row of every file with file:line,
column, value and rule, and nothing else. Policy `skip`: exactly those rows land in rejects.jsonl (with
their raw text), the counts are reported, and more than `data.max_bad_fraction` bad rows still fails.

Token/tag count mismatches, timestamp errors and empty pairs belong to the tag, forecast and seq2seq
families: see test_family_data.py.
"""

from __future__ import annotations

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
