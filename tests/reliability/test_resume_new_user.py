"""Resume as a new user meets it (issue 8): from another directory (item 7), of a finished run (item 16),
and messages that name the real run directory (item 17)."""

from __future__ import annotations

import json
import shutil

import yaml
from relsupport import BASE, records, sets, tree_digest

from fakedata import nan_once_at, write_numeric_jsonl
from rnnkit.cli import main

SHORT = [b for b in BASE if not b.startswith("train.max_epochs")] + ["train.max_epochs=1"]


def _epochs(run) -> list[int]:
    return [r["epoch"] for r in records(run) if r.get("kind") == "epoch"]


def test_item7_resume_works_from_another_directory_and_a_moved_file_is_explained(tmp_path, monkeypatch, capsys):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    write_numeric_jsonl(project / "series.jsonl")
    monkeypatch.chdir(project)
    assert main(["train", "series.jsonl", "--out", "runs/a", *sets(SHORT)]) == 0  # relative paths, as typed
    saved = yaml.safe_load((project / "runs/a/config.yaml").read_text())
    assert saved["data"]["train"] == str(project / "series.jsonl")  # saved resolved

    monkeypatch.chdir(elsewhere)
    run = project / "runs/a"
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=2"]) == 0
    assert _epochs(run) == [1, 2]

    shutil.move(project / "series.jsonl", elsewhere / "series.jsonl")  # moved, same name
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=3"]) == 2
    err = capsys.readouterr().err
    assert f"its data.train file {project / 'series.jsonl'} does not exist" in err
    assert f"saved config {run / 'config.yaml'}" in err
    assert f"rnnkit train --resume {run} --set data.train=NEW_PATH" in err
    assert "Traceback" not in err
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=3", "--set", "data.train=series.jsonl"]) == 0
    assert _epochs(run) == [1, 2, 3]
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["train"] == str(elsewhere / "series.jsonl")


def test_item16_resuming_a_finished_run_says_so_and_changes_nothing(series, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(series), "--out", str(run), *sets(SHORT)]) == 0
    before = tree_digest(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"{run} finished already (stopped: max_epochs after 1 epochs" in err and "nothing was changed" in err
    assert f"rnnkit train --resume {run} --set train.max_epochs=N (N > 1)" in err
    assert tree_digest(run) == before  # not re-scored, no summary, log, config or doctor file rewritten

    # asked to go on: it trains on
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=2"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2


def test_item16_an_early_stopped_run_goes_on_when_patience_is_raised(tmp_path, capsys):
    data = write_numeric_jsonl(tmp_path / "noise.jsonl", label_noise=1.0)  # labels unrelated to inputs
    run = tmp_path / "run"
    base = [b for b in BASE if not b.startswith("train.max_epochs")] + ["train.max_epochs=30", "train.patience=1",
                                                                       "optim.lr=0.03"]
    assert main(["train", str(data), "--out", str(run), *sets(base)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "early_stopping"
    epochs = summary["epochs_run"]
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "--set train.patience=N (N > 1, the epochs since the best)" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--set", "train.patience=3"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] > epochs


def test_item17_messages_name_the_real_run_directory(series, tmp_path, monkeypatch, capsys):
    run = tmp_path / "nan-run"
    nan_once_at(monkeypatch, 5)
    assert main(["train", str(series), "--out", str(run), *sets(BASE)]) == 4
    err = capsys.readouterr().err
    assert f"`rnnkit train --resume {run} --set optim.lr=...`" in err and "--resume DIR" not in err
    assert main(["train", str(series), "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {run} continues that run with its saved config ({run / 'config.yaml'})" in err
