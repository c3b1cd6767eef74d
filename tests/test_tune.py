"""`rnnkit tune`: Optuna trials as ordinary runs, pruning, a shared storage for several workers, the
best trial's command, and the doctor's "Hyperparameters tuned?" verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from fakedata import write_numeric_jsonl
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.doctor import diagnose
from rnnkit.errors import ConfigError, MissingExtra
from rnnkit.tuning import load_space, make_storage, suggest, tune

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
    assert pruned["pruned"]["by"] == "median" and pruned["pruned"]["epoch"] == pruned["epochs"]  # learns, slowly
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
    # --no-prune: the sampler is not seeded, and a drawn rate can diverge, which the doctor prunes (seen in a full
    # run: "1 complete, 1 pruned"); this test is about the storage URL and the output, not pruning
    assert main(["tune", str(data), "--out", str(tmp_path / "t"), "--trials", "2", "--storage", url, "--no-prune",
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


# issue 8 item 3: several workers draw different trials; a worker's death strands nothing

RETRY_SPACE = {"optim.lr": {"low": 1e-3, "high": 3e-2, "log": True}, "model.hidden_size": [8, 16]}


def _load(storage):
    if isinstance(storage, str):
        return optuna.load_study(study_name="s", storage=storage)
    return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))))


def _cli(data, out, trials, *extra, epochs=1):
    return ["tune", str(data), "--out", str(out), "--trials", str(trials), "--no-prune", "--study", "s",
            *extra, *[f"--set={s}" for s in [*FAST, f"train.max_epochs={epochs}"]]]


def _space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(json.dumps(RETRY_SPACE))  # JSON is YAML
    return path


def test_item3_two_workers_on_one_out_never_evaluate_the_same_parameters(data, tmp_path):
    """Two workers, one --out (so one OUT/study.log): a continuous lr makes a repeat by chance impossible, while a
    sampler seeded alike in both (the old train.seed seeding) repeats every draw; tune.json loses no worker's
    trials."""
    out = tmp_path / "t"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "rnnkit.cli", *_cli(data, out, 3, "--space", str(_space_file(tmp_path)))]
    workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    trials = _load(out / "study.log").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == 6, drawn
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6
    listed = json.loads((out / "tune.json").read_text())["trials"]
    assert sorted(t["number"] for t in listed if t["state"] == "COMPLETE") == list(range(6))


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_item3_a_worker_killed_mid_trial_is_failed_and_retried_by_the_restart(data, tmp_path, kind):
    """`kill -9` during trial 2 of `--trials 3`, then a restart for the remaining trial: the dead trial is
    FAIL, its parameters run again in a fresh directory, 3 trials COMPLETE and none stays RUNNING."""
    out = tmp_path / "t"
    storage = out / "study.log" if kind == "journal" else f"sqlite:///{tmp_path / 'tune.db'}"
    extra = ["--space", str(_space_file(tmp_path))] + ([] if kind == "journal" else ["--storage", storage])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", *_cli(data, out, 3, *extra, epochs=4)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marker = out / "trials" / "0002" / "trial.json"
    try:
        while not marker.exists():
            assert worker.poll() is None, worker.stderr.read()
            time.sleep(0.01)
    finally:
        worker.kill()  # SIGKILL
        worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    assert [t.state.name for t in _load(storage).trials] == ["COMPLETE", "COMPLETE", "RUNNING"]  # killed mid-trial

    assert main(_cli(data, out, 1, *extra, epochs=4)) == 0
    trials = _load(storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    dead, retry = trials[2], trials[3]
    assert retry.params == dead.params and retry.user_attrs["run_dir"] != dead.user_attrs["run_dir"]
    assert (out / "trials" / "0003" / "summary.json").exists()
    listed = json.loads((out / "tune.json").read_text())
    assert listed["counts"]["COMPLETE"] == 3 and listed["counts"]["RUNNING"] == 0
    assert listed["trials"][3]["retry_of"] == 2


def _ghost(study, pid):
    """A RUNNING trial whose worker ran on another machine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: a heartbeat storage is meant for Study.optimize (not ask)
        trial = study.ask()
    suggest(trial, RETRY_SPACE)
    trial.set_user_attr("worker", {"host": "elsewhere", "boot": None, "pid": pid, "start": None,
                                   "trial": trial.number})
    return trial


def test_item3_a_dead_worker_on_another_machine_rdb_heartbeat_retries_it_journal_leaves_it(data, tmp_path):
    base = [f"data.train={data}", *FAST, "train.max_epochs=1"]
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs: only the host tells that it is not ours to judge
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    storage = make_storage(url, tmp_path, heartbeat=(1, 1))
    ghost = _ghost(optuna.create_study(storage=storage, study_name="s"), dead.pid)
    storage.record_heartbeat(ghost._trial_id)  # its last heartbeat; the database clock counts whole seconds
    time.sleep(2.1)
    result = tune(base, None, tmp_path / "rdb", trials=1, storage=url, study_name="s", space=RETRY_SPACE,
                  heartbeat=(1, 1))
    assert [t["state"] for t in result["trials"]] == ["FAIL", "COMPLETE"]
    assert result["trials"][1]["retry_of"] == 0 and result["trials"][1]["params"] == result["trials"][0]["params"]

    log = tmp_path / "j" / "study.log"
    _ghost(optuna.create_study(storage=make_storage(str(log), tmp_path), study_name="j"), dead.pid)
    result = tune(base, None, tmp_path / "j", trials=1, space=RETRY_SPACE)
    assert [t["state"] for t in result["trials"]] == ["RUNNING", "COMPLETE"]  # no heartbeat: not judged


def test_item3_an_interrupted_trial_is_queued_again(data, tmp_path, monkeypatch):
    from rnnkit import api
    from rnnkit.errors import Interrupted

    base, out, real, calls = [f"data.train={data}", *FAST, "train.max_epochs=1"], tmp_path / "t", api.train, []

    def train(cfg, run_dir, **kw):
        calls.append(run_dir)
        if len(calls) == 2:
            raise Interrupted(signal.SIGTERM, None)
        return real(cfg, run_dir, **kw)

    monkeypatch.setattr(api, "train", train)
    with pytest.raises(Interrupted):
        tune(base, None, out, trials=3, space=RETRY_SPACE)
    result = tune(base, None, out, trials=1, space=RETRY_SPACE)
    assert [t["state"] for t in result["trials"]] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert result["trials"][2]["retry_of"] == 1 and result["trials"][2]["params"] == result["trials"][1]["params"]
    assert result["trials"][2]["run_dir"] == str(out / "trials" / "0002")


def test_item2_item3_one_out_holds_one_study_and_a_leftover_trial_directory_is_left_alone(data, tmp_path):
    base, out = [f"data.train={data}", *FAST, "train.max_epochs=1"], tmp_path / "t"
    leftover = out / "trials" / "0000" / "checkpoints"  # e.g. study.log was removed, trials/ was not
    leftover.mkdir(parents=True)
    (leftover / "step-00000001").write_text("kept")
    result = tune(base, None, out, trials=1, space=RETRY_SPACE, study_name="a")
    assert result["trials"][0]["state"] == "COMPLETE"
    assert result["trials"][0]["run_dir"] == str(out / "trials" / "0000-1")
    assert (leftover / "step-00000001").read_text() == "kept"
    with pytest.raises(ConfigError, match=r"holds the results of study 'a' .*Give --study a to continue it"):
        tune(base, None, out, trials=1, space=RETRY_SPACE, study_name="b")


def test_item3_seed_reproduces_one_worker_and_a_restart_draws_new_trials(data, tmp_path):
    def drawn(out, trials=2):
        assert main(_cli(data, out, trials, "--space", str(_space_file(tmp_path)), "--seed", "3")) == 0
        return [t["params"] for t in json.loads((out / "tune.json").read_text())["trials"]]

    first = drawn(tmp_path / "a")
    assert drawn(tmp_path / "b") == first
    again = drawn(tmp_path / "a")  # the same command in the same OUT: 2 more trials, not the first 2 again
    assert again[:2] == first and not set(map(str, again[2:])) & set(map(str, first))


def test_item3_bad_storage_and_trials_are_clear_errors(data, tmp_path, capsys):
    args = [str(data), "--out", str(tmp_path / "t")]
    assert main(["tune", *args, "--storage", "nosuchdb://x/y"]) == 2
    assert "--storage nosuchdb://x/y is not a database URL" in capsys.readouterr().err
    assert main(["tune", *args, "--storage", "postgresql://me:secret@localhost:1/db"]) == 2
    err = capsys.readouterr().err
    assert "--storage postgresql://me:***@localhost:1/db" in err and "secret" not in err and "Traceback" not in err
    assert main(["tune", *args, "--trials", "0"]) == 2
    assert "--trials 0" in capsys.readouterr().err


def test_item2_journal_a_live_worker_fails_the_trial_of_a_peer_killed_beside_it_and_runs_it_again(data, tmp_path):
    """Two workers on one journal file (one --out); one is SIGKILLed mid-trial. The journal has no heartbeat: the
    other worker, still running, finds the stale trial before its next one (same machine: the dead pid), marks it
    FAIL and runs its parameters again; nothing stays RUNNING."""
    out = tmp_path / "t"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    space = ["--space", str(_space_file(tmp_path))]
    victim = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", *_cli(data, out, 2, *space, epochs=6)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    survivor = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", *_cli(data, out, 4, *space, epochs=1)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # the victim's trial is running: its worker attribute is set and its directory claimed
            assert victim.poll() is None and time.monotonic() < deadline, victim.stderr.read()
            time.sleep(0.05)
            if not (out / "tune.json").exists():  # written once the study exists
                continue
            mine = [t for t in _load(out / "study.log").trials if t.state.name == "RUNNING"
                    and t.user_attrs.get("worker", {}).get("pid") == victim.pid and "run_dir" in t.user_attrs]
            if mine and os.path.exists(os.path.join(mine[0].user_attrs["run_dir"], "trial.json")):
                break
    finally:
        victim.kill()
        victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    _, err = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, err
    dead = mine[0].number
    assert f"trial {dead}: its worker (pid {victim.pid} on " in err and "marked failed, queued again" in err
    trials = _load(out / "study.log").trials
    assert [t.number for t in trials if t.state.name == "FAIL"] == [dead]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    retry = [t for t in trials if t.system_attrs.get("retry_history") == [dead]]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == mine[0].params
    assert retry[0].user_attrs["worker"]["pid"] == survivor.pid
    listed = json.loads((out / "tune.json").read_text())
    assert listed["counts"]["RUNNING"] == 0 and listed["counts"]["COMPLETE"] == len(trials) - 1


# issue 14 item 2: the doctor prunes a trial that diverged or went non-finite at once


def test_item2_the_doctor_prunes_a_diverging_and_a_nonfinite_trial_at_once_with_the_reason(data, tmp_path, capsys):
    """lr 3 makes the training loss climb far above its start, lr 1e30 makes it NaN; both come first, before
    the median rule can judge anything (it waits for 3 finished trials): the doctor prunes them at the first
    epoch its rules see it, saying why in tune.json. Without it (--no-doctor-prune) lr 3 trains to its end."""
    base = [f"data.train={data}", *FAST]
    space = {"optim.lr": [3.0, 1e30, 1e-2], "model.hidden_size": [16]}
    result = tune(base, None, tmp_path / "on", trials=3, space=space,
                  enqueue=[{"optim.lr": lr, "model.hidden_size": 16} for lr in (3.0, 1e30, 1e-2)])
    diverged, nan, good = result["trials"]
    assert [t["state"] for t in result["trials"]] == ["PRUNED", "PRUNED", "COMPLETE"], result["trials"]
    assert diverged["pruned"]["by"] == "doctor" and diverged["pruned"]["code"] == "divergence"
    why = diverged["pruned"]["reason"]
    assert "the training loss rose to" in why and "the learning rate 3 is above the guide's range" in why
    assert diverged["pruned"]["epoch"] == diverged["epochs"] < good["epochs"]  # stopped at the epoch it was seen
    assert nan["pruned"]["by"] == "doctor" and nan["pruned"]["code"] == "nonfinite"
    assert isinstance(nan["pruned"]["step"], int) and "non-finite" in nan["pruned"]["reason"]
    assert json.loads((tmp_path / "on" / "tune.json").read_text())["trials"][0]["pruned"] == diverged["pruned"]
    assert "trial 0: pruned by the doctor (divergence), val loss" in capsys.readouterr().err

    (tmp_path / "space.yaml").write_text(json.dumps({"optim.lr": [3.0], "model.hidden_size": [16]}))
    assert main(["tune", str(data), "--out", str(tmp_path / "off"), "--trials", "1", "--no-doctor-prune",
                 "--space", str(tmp_path / "space.yaml"), *[f"--set={s}" for s in FAST]]) == 0
    off = json.loads((tmp_path / "off" / "tune.json").read_text())["trials"]
    # the median rule never judges a study's first trials: lr 3 runs every epoch
    assert [(t["state"], t["epochs"]) for t in off] == [("COMPLETE", good["epochs"])] and "pruned" not in off[0]
    result = tune(base, None, tmp_path / "nan", trials=1, space=space, doctor=False,
                  enqueue=[{"optim.lr": 1e30, "model.hidden_size": 16}])
    assert [t["state"] for t in result["trials"]] == ["FAIL"]  # a NaN without the doctor: failed, as before


def test_issue14_space_size_counts_finite_spaces_and_not_continuous_ones():
    from rnnkit.tuning import space_size

    assert space_size({"a": [1, 2, 3], "b": {"low": 1, "high": 4}}) == 12
    assert space_size({"a": {"low": 0.0, "high": 0.5, "step": 0.1}, "b": {"low": 8, "high": 32, "step": 8}}) == 24
    assert space_size({"a": [1, 2], "b": {"low": 1e-4, "high": 1e-2, "log": True}}) is None


def test_issue14_a_finite_space_is_searched_once_per_setting_and_the_worker_stops_when_it_is_exhausted(
        data, tmp_path, capsys):
    """Three settings, five trials asked: three trials, all different, and the worker says why it stopped."""
    space = {"model.hidden_size": [8, 12, 16]}
    result = tune([f"data.train={data}", *FAST, "train.max_epochs=1"], None, tmp_path / "t", trials=5, space=space,
                  prune=False)
    err = capsys.readouterr().err
    assert [t["state"] for t in result["trials"]] == ["COMPLETE"] * 3
    assert sorted(t["params"]["model.hidden_size"] for t in result["trials"]) == [8, 12, 16]
    assert "the space holds 3 settings" in err and "all 3 settings of the space are tried" in err
    assert "after 3 of its 5 trial(s)" in err


def test_issue14_two_workers_exhaust_a_finite_space_without_a_repeat(data, tmp_path):
    """Two CLI workers on one study, 4 settings, 3 trials each: 4 complete trials, 4 different settings; a
    draw that repeats a running trial gives way before training and does not count."""
    path = tmp_path / "space.yaml"
    path.write_text(json.dumps({"model.hidden_size": [8, 12], "model.num_layers": [1, 2]}))
    out = tmp_path / "t"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "rnnkit.cli", *_cli(data, out, 3, "--space", str(path))]
    workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    errs = []
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        errs.append(err)
    trials = _load(out / "study.log").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and len({tuple(sorted(t.params.items())) for t in done}) == 4
    others = [t for t in trials if t.state.name != "COMPLETE"]
    assert all(t.state.name == "PRUNED" and t.user_attrs["pruned"]["by"] == "duplicate" for t in others)
    assert any("all 4 settings of the space are tried" in e for e in errs)  # a worker that ran 3 just ends


def test_issue14_a_repeated_setting_gives_way_to_the_earlier_trial(data, tmp_path, capsys):
    """TPE (a continuous space) with the same setting queued twice: the second is pruned as a duplicate before
    training, named in tune.json, and the worker still completes the trials it was asked for."""
    out = tmp_path / "t"
    out.mkdir()
    storage = out / "study.log"
    study = optuna.create_study(study_name="t", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))))
    same = {"optim.lr": 0.01, "model.hidden_size": 16}
    study.enqueue_trial(same)
    study.enqueue_trial(same)
    space = {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}, "model.hidden_size": [16, 24]}
    result = tune([f"data.train={data}", *FAST, "train.max_epochs=1"], None, out, trials=2, space=space,
                  prune=False)
    states = [(t["state"], t.get("pruned", {}).get("by")) for t in result["trials"]]
    assert states == [("COMPLETE", None), ("PRUNED", "duplicate"), ("COMPLETE", None)], states
    assert result["trials"][1]["pruned"]["of"] == 0 and result["trials"][1]["run_dir"] is None
    assert "trial 1: pruned as a duplicate of trial 0 (not counted)" in capsys.readouterr().err


def test_trials_do_not_refit_and_the_best_command_keeps_the_users_setting(data, tmp_path):
    """Asked for refit in the base, a trial still trains once (its score is the validation one, which a refit would
    not change), and the command that trains the best again asks for the refit."""
    result = tune([f"data.train={data}", *FAST, "train.max_epochs=1", "train.refit=true"], None, tmp_path / "t",
                  trials=1, space={"model.hidden_size": [8]}, prune=False)
    (trial,) = result["trials"]
    summary = json.loads((Path(trial["run_dir"]) / "summary.json").read_text())
    assert not summary["refit"]["on"] and trial["state"] == "COMPLETE"
    command = result["best"]["command"]
    assert "--set train.refit=true" in command and "train.refit=false" not in command
