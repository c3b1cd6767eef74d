"""End to end through the `rnnkit` command line, as a user runs it."""

import csv
import json

import pytest

from fakedata import write_text_csv
from rnnkit.cli import main
from rnnkit.data.datasets import get_builtin

FAST = ["--set", "train.progress=none", "--set", "train.max_epochs=12"]


def test_text_csv_train_evaluate_predict(tmp_path, capsys):
    train = write_text_csv(tmp_path / "reviews.csv", n=400)
    new = write_text_csv(tmp_path / "new.csv", n=60, seed=7)
    run = tmp_path / "run"
    assert main(["train", str(train), "--text-column", "review", "--label-column", "stars",
                 "--out", str(run), *FAST]) == 0
    assert "done: test accuracy" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "classify" and summary["metrics"]["test"]["accuracy"] >= 0.9
    for key in ("best_epoch", "stopped", "padding_share", "real_tokens_per_second", "wall_seconds"):
        assert key in summary
    assert summary["data"]["sizes"] == {"train": 320, "val": 40, "test": 40}
    for name in ("config.yaml", "metrics.jsonl", "vocab.json", "labels.json", "splits.json", "checkpoints/best.json"):
        assert (run / name).exists(), name
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x]
    assert all(0 <= e["padding_share"] < 0.5 for e in epochs if e.get("kind") == "epoch")

    assert main(["evaluate", str(run), "--data", str(new)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] == 60 and scored["accuracy"] >= 0.9

    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(new), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    truth = list(csv.DictReader(new.read_text().splitlines()))
    assert len(rows) == 60 and rows[0]["line"] == "2" and set(rows[0]) >= {"id", "prediction", "p_pos", "p_neg"}
    agree = sum(r["prediction"] == t["stars"] for r, t in zip(rows, truth, strict=True)) / 60
    assert agree == pytest.approx(scored["accuracy"])


def test_bad_rows_exit_2_before_training(tmp_path, capsys):
    f = tmp_path / "bad.csv"
    f.write_text("text,label\nfine words here,a\ntoo,many,fields\n,b\nok then,a\n")
    run = tmp_path / "run"
    assert main(["train", str(f), "--out", str(run), *FAST]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3" in err and "bad.csv:4" in err and "--bad-rows skip" in err
    assert not (run / "checkpoints").exists()


def test_unknown_key_suggests(tmp_path, capsys):
    assert main(["train", "--dataset", "japanese_vowels", "--set", "optim.learning_rate=1"]) == 2
    assert "unknown key 'optim.learning_rate'" in capsys.readouterr().err


def test_config_and_datasets_commands(capsys):
    assert main(["config", "--task", "classify"]) == 0
    assert "recurrent_dropout: 0.2" in capsys.readouterr().out
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["japanese_vowels"]["installed"] is True


@pytest.mark.skipif(not get_builtin("japanese_vowels").installed(), reason="sktime data files not installed")
def test_japanese_vowels_short_run(tmp_path, capsys):
    """A short run of the main job: the full default run is in BENCHMARKS.md (>= 0.97 over seeds)."""
    run = tmp_path / "jv"
    assert main(["train", "--dataset", "japanese_vowels", "--out", str(run), *FAST]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["sizes"]["train"] + summary["data"]["sizes"]["val"] == 270
    assert summary["data"]["sizes"]["test"] == 370
    assert summary["metrics"]["test"]["accuracy"] >= 0.93
