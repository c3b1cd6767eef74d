"""Issue 11, item 3, on real UCR files (sktime's ArrowHead: 36 training series of 251 steps, 3 classes): a numeric
sequence set whose validation split holds fewer than 20 rows (3 here) chooses its best pass, stops and decays the
rate on the loss over its training rows in evaluation mode (`fit_loss`), and says so on the selection line, in
metrics.jsonl and summary.json; a larger validation split, text, and an explicit `train.monitor` keep validation's
loss. The choice is deterministic under a seed and reads no test data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakedata import HAS_SKTIME, SMALL_CLI, write_text_csv
from fakedata import ucr_files as _ucr
from rnnkit.cli import main

pytestmark = pytest.mark.skipif(not HAS_SKTIME, reason="sktime (ships the UCR .ts files) is not installed")

# 33 training rows: 2 steps a pass, so 4 passes count as one epoch (train.min_epoch_steps): 8 validated passes
SMALL = SMALL_CLI


def _train(capsys, train, test, run, sets=()) -> tuple[dict, list[dict], str]:
    args = ["train", str(train), "--test", str(test), "--out", str(run)]
    assert main([*args, *[a for s in [*SMALL, *sets] for a in ("--set", s)]]) == 0
    err = capsys.readouterr().err
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return json.loads((run / "summary.json").read_text()), records, err


def _passes(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("kind") == "epoch"]


def test_three_validation_rows_leave_the_choice_to_the_training_rows_loss(tmp_path, capsys):
    train, test = _ucr("ArrowHead")
    summary, records, err = _train(capsys, train, test, tmp_path / "run")
    assert summary["data"]["sizes"]["val"] == 3 and summary["monitor"] == "fit_loss"
    event = next(r for r in records if r.get("event") == "monitor")
    assert event == {"event": "monitor", "name": "fit_loss", "why": "validation holds 3 rows (< 20), too few to "
                     "choose an epoch on; train.monitor=loss chooses on them anyway"}
    assert "rnnkit: selection: the loss over the 33 training rows (evaluation mode) picks the best pass and stops " \
           "early (validation holds 3 rows (< 20)" in err
    passes = _passes(records)
    assert len(passes) == 8 and all({"val_loss", "val_fit_loss"} <= set(p) for p in passes)
    best = min(passes, key=lambda p: p["val_fit_loss"])
    assert summary["best_epoch"] == best["epoch"]
    # the figure is what it says: the restored best weights score that loss on the training rows
    assert summary["metrics"]["train"]["loss"] == pytest.approx(best["val_fit_loss"], rel=1e-5)
    # validation is still scored and reported (the doctor reads it), it just does not choose
    assert summary["metrics"]["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def test_enough_validation_rows_text_or_an_explicit_monitor_keep_validation_choosing(tmp_path, capsys):
    train, test = _ucr("ArrowHead")
    big, records, err = _train(capsys, train, test, tmp_path / "big", ["data.val_fraction=0.6"])
    assert big["data"]["sizes"]["val"] >= 20 and big["monitor"] == "loss"
    assert "val_fit_loss" not in _passes(records)[0] and "selection: val loss picks" in err
    asked, records, _ = _train(capsys, train, test, tmp_path / "asked", ["train.monitor=loss"])
    assert asked["monitor"] == "loss" and "val_fit_loss" not in _passes(records)[0]
    assert asked["best_epoch"] == min(_passes(records), key=lambda p: p["val_loss"])["epoch"]
    data = write_text_csv(tmp_path / "reviews.csv", n=120)  # 12 validation rows, but text: validation chooses
    args = ["train", str(data), "--text-column", "review", "--label-column", "stars", "--out", str(tmp_path / "txt")]
    assert main([*args, *[a for s in SMALL for a in ("--set", s)]]) == 0
    text = json.loads((tmp_path / "txt" / "summary.json").read_text())
    assert text["data"]["sizes"]["val"] < 20 and text["monitor"] == "loss"


def _shifted_copy(src: Path, dst: Path) -> Path:
    """The .ts file with every value of every series doubled plus one (labels and headers unchanged)."""
    lines, data = [], False
    for line in src.read_text().splitlines():
        if data and line.strip():
            values, label = line.rsplit(":", 1)
            line = ",".join(repr(2 * float(v) + 1) for v in values.split(",")) + ":" + label
        data = data or line.strip().lower() == "@data"
        lines.append(line)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def test_the_choice_is_deterministic_and_reads_no_test_data(tmp_path, capsys):
    train, test = _ucr("ArrowHead")
    first, rec1, _ = _train(capsys, train, test, tmp_path / "a")
    again, rec2, _ = _train(capsys, train, test, tmp_path / "b")
    other = _shifted_copy(test, tmp_path / "ArrowHead_TEST.ts")
    moved, rec3, _ = _train(capsys, train, other, tmp_path / "c")

    def choices(records):
        return [(p["epoch"], p["val_fit_loss"], p["val_loss"], p["lr"], p["improved"]) for p in _passes(records)]

    assert choices(rec1) == choices(rec2) == choices(rec3)
    assert first["best_epoch"] == again["best_epoch"] == moved["best_epoch"]
    assert first["metrics"]["test"] == again["metrics"]["test"]
    assert moved["metrics"]["test"]["loss"] != first["metrics"]["test"]["loss"]  # the test values did change


def test_a_refit_replays_the_training_rows_loss(tmp_path, capsys):
    """train.refit after a run that followed fit_loss: the refit replays those figures for the same pass count."""
    train, test = _ucr("ArrowHead")
    summary, _, _ = _train(capsys, train, test, tmp_path / "run", ["train.refit=true"])
    assert summary["monitor"] == "fit_loss"
    assert summary["refit"]["on"] and summary["refit"]["passes"] == summary["best_epoch"]
    assert summary["refit"]["rows"] == 36
