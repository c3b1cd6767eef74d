"""`rnnkit tune`: Optuna trials as ordinary runs, pruning, a shared storage for several workers, the
best trial's command, and the doctor's "Hyperparameters tuned?" verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fakedata import write_numeric_jsonl
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.doctor import diagnose
from rnnkit.errors import ConfigError, MissingExtra
from rnnkit.tuning import load_space, tune

optuna = pytest.importorskip("optuna")

FAST = ["train.threads=1", "model.embedding_dim=8", "train.max_epochs=5"]
SPACE = {"optim.lr": [1e-2, 1e-6], "model.hidden_size": [16, 24, 32]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_numeric_jsonl(tmp_path_factory.mktemp("tune") / "d.jsonl", n=240)


def test_trials_are_runs_the_bad_one_is_pruned_and_the_best_can_be_trained_again(data, tmp_path):
    out = tmp_path / "tune"
    good = [{"optim.lr": 1e-2, "model.hidden_size": h} for h in (16, 24, 32)]
    bad = {"optim.lr": 1e-6, "model.hidden_size": 16}  # learns nothing in 5 epochs: below the median by epoch 4
    result = tune([f"data.train={data}", *FAST], None, out, trials=4, space=SPACE, enqueue=[*good, bad])
    states = [t["state"] for t in result["trials"]]
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"], result["trials"]
    pruned = result["trials"][3]
    assert pruned["params"]["optim.lr"] == 1e-6 and pruned["epochs"] < 5  # stopped before its last epoch
    best = result["best"]
    assert best["params"]["optim.lr"] == 1e-2 and best["value"] == min(t["value"] for t in result["trials"][:3])
    summary = json.loads((out / "trials" / f"{best['number']:04d}" / "summary.json").read_text())
    assert summary["metrics"]["val"]["loss"] == pytest.approx(best["value"])
    assert json.loads((out / "tune.json").read_text())["best"] == best
    # the printed command resolves to the best trial's config
    sets = [a for a in best["command"].split()[2:] if a != "--set"]
    saved = C.from_dict(C.load_yaml(out / "trials" / f"{best['number']:04d}" / "config.yaml"))
    again = C.resolve(None, [*sets, "train.progress=none"])
    assert (again.optim.lr, again.model.hidden_size, again.data.train) == (
        saved.optim.lr, saved.model.hidden_size, saved.data.train)
    # the doctor: the best trial is "tuned", another trial is told which one is best
    verdict = {c.item: c for c in diagnose(out / "trials" / f"{best['number']:04d}").checklist}
    assert verdict["Hyperparameters tuned?"].verdict == "pass"
    other = next(t["number"] for t in result["trials"][:3] if t["number"] != best["number"])
    verdict = {c.item: c for c in diagnose(out / "trials" / f"{other:04d}").checklist}
    assert verdict["Hyperparameters tuned?"].verdict == "fail"
    assert f"best is trial {best['number']}" in verdict["Hyperparameters tuned?"].detail


def test_two_workers_share_one_study_through_a_journal_file(data, tmp_path):
    """Two processes with the same --storage and --study: 2 + 2 distinct trials, one study."""
    storage = tmp_path / "shared" / "study.log"
    args = [sys.executable, "-m", "rnnkit.cli", "tune", str(data), "--trials", "2", "--storage", str(storage),
            "--study", "shared", "--no-prune", *[f"--set={s}" for s in FAST + ["train.max_epochs=2"]]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([*args, "--out", str(tmp_path / f"w{i}")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    dirs = {t.user_attrs["run_dir"] for t in study.trials}
    assert len(dirs) == 4 and all((tmp_path / d.split(str(tmp_path) + "/")[-1] / "summary.json").exists()
                                  for d in dirs)


def test_sqlite_url_storage_and_cli_output(data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    assert main(["tune", str(data), "--out", str(tmp_path / "t"), "--trials", "2", "--storage", url,
                 "--metric", "accuracy", *[f"--set={s}" for s in FAST + ["train.max_epochs=2"]]]) == 0
    out = capsys.readouterr().out
    assert "study t: 2 complete" in out and "again: rnnkit train" in out
    result = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert result["direction"] == "maximize" and result["metric"] == "val accuracy"


def test_bad_space_metric_and_missing_optuna_are_clear_errors(data, tmp_path, monkeypatch):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lrr: {low: 0.001, high: 0.01}\n")
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_space(space)
    space.write_text("model: {hidden_size: {low: 64, high: 32}}\n")
    with pytest.raises(ConfigError, match=r"key 'model.hidden_size': low \(64\) must be below high \(32\)"):
        load_space(space)
    space.write_text("model: {hidden_size: [32, 64]}\noptim: {lr: {low: 0.0001, high: 0.01, log: true}}\n")
    assert load_space(space) == {"model.hidden_size": [32, 64], "optim.lr": {"low": 0.0001, "high": 0.01, "log": True}}
    with pytest.raises(ConfigError, match="--metric 'wer' is not a validation metric of task 'classify'"):
        tune([f"data.train={data}"], None, tmp_path / "x", trials=1, metric="wer")
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtra, match=r"pip install 'rnnkit\[tune\]'"):
        tune([f"data.train={data}"], None, tmp_path / "y", trials=1)
