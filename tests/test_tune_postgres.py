"""`rnnkit tune` on a real PostgreSQL server (issue 14 item 2): workers as separate CLI processes sharing one
study, a worker killed with SIGKILL whose trial Optuna's heartbeat fails and retries, a restart that continues.

The server: RNNKIT_TEST_POSTGRES (an SQLAlchemy URL; `.ci/postgres.sh start DIR` prints it, CI exports it), or,
when it is unset and PostgreSQL's binaries are installed, a throwaway one this module starts with the same
script (stopped at the end). Neither: every test here is skipped, saying how to get one. Each test gets a
database of its own (the URL's user must be allowed to create databases; the script's `rnnkit` is a superuser).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from fakedata import write_numeric_jsonl
from rnnkit.errors import MissingExtra
from rnnkit.tuning import make_storage, tune

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "postgres.sh"
FAST = ["train.threads=1", "model.embedding_dim=8"]
# a continuous learning rate: two trials with the same parameters can only come from samplers drawing alike
SPACE = {"optim.lr": {"low": 1e-3, "high": 3e-2, "log": True}, "model.hidden_size": [8, 16]}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _postgres_bin() -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return str(found[-1].parent) if found else (os.path.dirname(shutil.which("initdb") or "") or None)


@pytest.fixture(scope="module")
def server():
    """The server's URL (RNNKIT_TEST_POSTGRES, or a server started here)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'rnnkit[tune]'")
    url = os.environ.get("RNNKIT_TEST_POSTGRES")
    if url:
        yield url
        return
    if _postgres_bin() is None:
        pytest.skip("RNNKIT_TEST_POSTGRES is unset and PostgreSQL is not installed: apt-get install postgresql, "
                    "or start a server with `eval \"$(.ci/postgres.sh start DIR)\"`")
    where = tempfile.mkdtemp(prefix="rnnkit-pg-")  # short: the server's unix socket lives there
    started = subprocess.run(["bash", str(SCRIPT), "start", where], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", where], capture_output=True, timeout=60)
        pytest.skip(f"RNNKIT_TEST_POSTGRES is unset and {SCRIPT.name} could not start a server: "
                    f"{started.stderr.strip()[-400:]}")
    try:
        yield Path(where, "url").read_text().strip()
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", where], capture_output=True, timeout=60)


def _libpq(url) -> str:
    """The URL without SQLAlchemy's driver part, for psycopg itself."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def database(server, request):
    """A fresh database for this test on the server: its URL, given as `postgresql://` (no driver named)."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = (re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8])
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _libpq(base.set(database=name))
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_numeric_jsonl(tmp_path_factory.mktemp("pg") / "d.jsonl", n=240)


def _cli(data, out, trials, url, *, epochs, study="s"):
    return [sys.executable, "-m", "rnnkit.cli", "tune", str(data), "--out", str(out), "--trials", str(trials),
            "--storage", url, "--study", study, "--no-prune", "--space", str(out.parent / "space.yaml"),
            *[f"--set={s}" for s in [*FAST, f"train.max_epochs={epochs}"]]]


def _load(url, study="s"):
    return optuna.load_study(study_name=study, storage=make_storage(url, Path(".")))


def test_postgresql_url_gets_the_installed_driver_and_a_missing_one_is_a_clear_error(database, tmp_path,
                                                                                       monkeypatch):
    assert database.startswith("postgresql://")  # no driver named: SQLAlchemy alone would want psycopg2
    storage = make_storage(database, tmp_path)
    assert storage.engine.dialect.driver == ("psycopg2" if _has("psycopg2") else "psycopg")
    study = optuna.create_study(storage=storage, study_name="probe")
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [study.study_name]
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(MissingExtra, match=r"the database driver is not installed.*pip install 'rnnkit\[tune\]'"):
        make_storage(database, tmp_path)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_two_cli_workers_on_one_postgres_study_complete_exactly_their_trials_none_alike(data, database, tmp_path):
    """Two `rnnkit tune` processes started together on an empty database (each creates Optuna's tables), as on
    two machines: each its own --out, one --storage and --study; 3 + 3 trials, all COMPLETE, numbered 0-5, six
    different parameter sets, each trained in its own worker's directory."""
    (tmp_path / "space.yaml").write_text(json.dumps(SPACE))
    workers = [subprocess.Popen(_cli(data, tmp_path / f"w{i}", 3, database, epochs=1), env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        assert "study s: " in out
    trials = _load(database).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert sorted(t.number for t in trials) == list(range(6))
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == 6, drawn
    for i in range(2):  # each worker ran its own 3, each in a directory of its own
        mine = [t for t in trials if t.user_attrs["run_dir"].startswith(str(tmp_path / f"w{i}") + "/")]
        assert len(mine) == 3 and all(Path(t.user_attrs["run_dir"], "summary.json").exists() for t in mine)
    # tune.json of the worker that finished last holds the whole study
    listed = [json.loads((tmp_path / f"w{i}" / "tune.json").read_text()) for i in range(2)]
    assert max(result["counts"]["COMPLETE"] for result in listed) == 6
    # the one that finished first wrote a snapshot: its own 3 complete, the other's trials so far (complete or
    # running; the other may be between two trials then, so fewer than 6 in all, never more)
    for result in listed:
        assert result["counts"]["COMPLETE"] >= 3 and result["counts"]["RUNNING"] + result["counts"]["COMPLETE"] <= 6


def test_a_sigkilled_worker_is_failed_by_the_heartbeat_retried_and_the_study_continues(data, database, tmp_path,
                                                                                        monkeypatch, capsys):
    """`kill -9` of a CLI worker as its second trial starts; then a worker that cannot see that process (as on another
    machine: only Optuna's heartbeat can tell it is dead) runs 2 trials with a 1 s heartbeat: the dead trial is
    FAIL, its parameters run again first (a new trial, a fresh directory), then a new trial; 3 COMPLETE, none
    RUNNING, the first worker's trial kept."""
    from rnnkit import tuning

    (tmp_path / "space.yaml").write_text(json.dumps(SPACE))
    out = tmp_path / "t"
    worker = subprocess.Popen(_cli(data, out, 3, database, epochs=4), env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    marker = out / "trials" / "0001" / "trial.json"
    try:
        while not marker.exists():
            assert worker.poll() is None, worker.stderr.read()
            time.sleep(0.01)
        # at once: trial 1 is RUNNING from before its trial.json is written until its training ends, and on a fast
        # machine 4 epochs took less than the half second this test once waited here (CI saw it COMPLETE)
    finally:
        worker.kill()  # SIGKILL: no handler runs, the trial is left RUNNING
        worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    assert [t.state.name for t in _load(database).trials] == ["COMPLETE", "RUNNING"]

    monkeypatch.setattr(tuning, "_worker_gone", lambda worker: False)  # this machine's pid check is blind here
    time.sleep(2.1)  # past the 1 s grace period (the database clock counts whole seconds)
    result = tune([f"data.train={data}", *FAST, "train.max_epochs=1"], None, out, trials=2, storage=database,
                  study_name="s", space=SPACE, prune=False, heartbeat=(1, 1))
    assert "is gone" not in capsys.readouterr().err  # not this machine's pid check: the heartbeat failed it
    trials = _load(database).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    dead, retry, new = trials[1], trials[2], trials[3]
    assert retry.params == dead.params and retry.user_attrs["run_dir"] != dead.user_attrs["run_dir"]
    assert retry.system_attrs["retry_history"] == [1]
    assert len({tuple(sorted(t.params.items())) for t in (trials[0], dead, new)}) == 3
    assert Path(retry.user_attrs["run_dir"], "summary.json").exists()
    assert result["counts"]["COMPLETE"] == 3 and result["counts"]["RUNNING"] == 0
    assert result["trials"][2]["retry_of"] == 1
    assert result["trials"][0]["run_dir"] == str(out / "trials" / "0000")  # the killed worker's trial, kept
    assert json.loads((out / "tune.json").read_text()) == result
