"""Issue 8 item 10: `train.threads: null` means auto (rnnkit.threads), recorded in summary.json.

No timing here: the policy's arithmetic runs on fake inputs, the registry on real processes, and
the speed itself lives in bench/bench_threads.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest
import torch

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit import threads as T

SMALL = ["model.hidden_size=8", "model.embedding_dim=8", "model.num_layers=1", "data.batch_size=32",
         "train.progress=none", "train.max_epochs=2"]


@pytest.fixture
def registry_dir(tmp_path, monkeypatch):
    """A private registry, and torch's threads put back as the suite pinned them (conftest)."""
    path = tmp_path / "registry"
    monkeypatch.setenv(T.DIR_ENV, str(path))
    before = torch.get_num_threads()
    yield path
    torch.set_num_threads(before)


@pytest.mark.parametrize(("cores", "processes", "other", "expected"), [
    (2, 1, 0.0, 2),  # alone on an idle machine: every core
    (2, 2, 0.0, 1), (4, 2, 0.0, 2), (16, 3, 0.0, 5),  # cores // rnnkit trainings
    (2, 4, 0.0, 1),  # more trainings than cores: still one each
    (2, 1, 0.4, 2),  # background noise below half a core is ignored
    (2, 1, 1.3, 1), (8, 1, 3.2, 5), (8, 2, 3.2, 2),  # the other load's cores are not ours
    (2, 1, 7.0, 1),  # a saturated machine: one thread, never zero
])
def test_item10_auto_policy_arithmetic(cores, processes, other, expected):
    assert T.auto_threads(cores, processes, other) == expected


def test_item10_omp_num_threads_is_read_and_wins_over_auto(tmp_path, registry_dir, monkeypatch):
    assert T.omp_num_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert T.omp_num_threads({"OMP_NUM_THREADS": "4,2"}) == 4  # nested levels: the outer one
    assert T.omp_num_threads({"OMP_NUM_THREADS": "0"}) is None
    assert T.omp_num_threads({"OMP_NUM_THREADS": "many"}) is None
    assert T.omp_num_threads({}) is None
    monkeypatch.setattr(T, "usable_cores", lambda: 8)
    monkeypatch.setattr(T, "cpu_busy_seconds", lambda cpus: None)  # no /proc/stat: the load average decides
    monkeypatch.setattr(T, "load_average", lambda: 0.0)
    reg = T.Registry(tmp_path / "reg")
    try:
        s = T.choose(None, registry=reg, environ={"OMP_NUM_THREADS": "3"})
        assert (s.threads, s.auto, s.reason) == (3, False, "OMP_NUM_THREADS=3 in the environment")
        assert torch.get_num_threads() == 3
        s = T.choose(2, registry=reg, environ={"OMP_NUM_THREADS": "3"})  # an explicit train.threads wins
        assert (s.threads, s.auto, s.reason) == (2, False, "train.threads=2")
        s = T.choose(None, registry=reg, environ={})
        assert (s.threads, s.auto) == (8, True) and s.reason == "auto: 8 cores / 1 rnnkit training -> 8"
        monkeypatch.setattr(T, "load_average", lambda: 3.2)  # other jobs' load: their cores are not ours
        s = T.choose(None, registry=reg, environ={})
        assert s.threads == 5 and "other load 3.2" in s.reason
    finally:
        reg.release()


def test_item10_other_load_is_the_busy_cpu_less_the_rnnkit_trainings(monkeypatch):
    clock = {"wall": 100.0, "mine": 10.0, "busy": 500.0, "pids": {11: 40.0, 12: None}}
    monkeypatch.setattr(T, "time", types.SimpleNamespace(perf_counter=lambda: clock["wall"],
                                                         process_time=lambda: clock["mine"]))
    monkeypatch.setattr(T, "affinity_cpus", lambda: [0, 1])
    monkeypatch.setattr(T, "cpu_busy_seconds", lambda cpus: clock["busy"])
    monkeypatch.setattr(T, "process_cpu_seconds", lambda pid: clock["pids"][pid])
    entries = [T.Entry(11, 1), T.Entry(12, 1)]  # 12: unreadable at first (e.g. just started)
    meter = T.LoadMeter(2)
    assert meter.measure(entries) is None and meter.available  # the first call only primes
    clock.update(wall=102.0, mine=11.0, busy=503.6, pids={11: 41.2, 12: 0.5})
    # 3.6 busy CPU-s in 2 s, less this process's 1.0 and the other training's 1.2; 12 has no baseline yet
    assert meter.measure(entries) == pytest.approx((3.6 - 1.0 - 1.2) / 2)
    clock.update(wall=104.0, mine=12.0, busy=507.6, pids={11: 42.2, 12: 1.5})
    assert meter.measure(entries) == pytest.approx((4.0 - 1.0 - 1.0 - 1.0) / 2)
    half = T.LoadMeter(1)  # a quota of 1 core on these 2 CPUs: half of what they show
    half.measure(entries)
    clock.update(wall=106.0, mine=13.0, busy=511.6, pids={11: 43.2, 12: 2.5})
    assert half.measure(entries) == pytest.approx((4.0 - 3.0) / 2 / 2)


def test_item10_auto_follows_the_machine_while_training(tmp_path, registry_dir, monkeypatch):
    """Re-checks (fake measurements): fewer threads at once when others arrive, more only when two
    checks in a row agree; the changes and the time-weighted mean reach the summary's evidence."""
    reg = T.Registry(tmp_path / "reg")
    reg.register(1)
    s = T.Session(4, "auto: 4 cores / 1 rnnkit training -> 4", True, 4, 1, reg)
    loads = iter([0.0, 2.2, 0.1, 0.0, 0.1, 0.0])
    monkeypatch.setattr(T.Session, "other_load", lambda self, entries: next(loads))
    seen = []
    for _ in range(6):
        s.recheck()
        seen.append(s.threads)
    assert seen == [4, 2, 2, 4, 4, 4]
    assert torch.get_num_threads() == 4 and [c[1] for c in s.changes] == [2, 4]
    assert s.changes[0][2] == "auto: 4 cores / 1 rnnkit training, other load 2.2 -> 2"
    rep = s.report()
    assert (rep["threads"], rep["threads_reason"]) == (4, "auto: 4 cores / 1 rnnkit training -> 4")
    assert 2 <= rep["cpu"]["threads_mean"] <= 4 and len(rep["cpu"]["thread_changes"]) == 2
    reg.release()


def test_item10_usable_cores_honour_a_cgroup_quota(tmp_path):
    proc = tmp_path / "cgroup"
    (tmp_path / "fs").mkdir()
    proc.write_text("0::/\n")
    (tmp_path / "fs" / "cpu.max").write_text("150000 100000\n")
    assert T.cgroup_quota(tmp_path / "fs", proc) == 1.5
    (tmp_path / "fs" / "cpu.max").write_text("max 100000\n")
    assert T.cgroup_quota(tmp_path / "fs", proc) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu" / "job").mkdir(parents=True)
    proc.write_text("4:cpu,cpuacct:/job\n0::/\n")
    (v1 / "cpu" / "job" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "job" / "cpu.cfs_period_us").write_text("100000\n")
    assert T.cgroup_quota(v1, proc) == 3.0
    (v1 / "cpu" / "job" / "cpu.cfs_quota_us").write_text("-1\n")
    assert T.cgroup_quota(v1, proc) is None
    assert 1 <= T.usable_cores() <= (os.cpu_count() or 1)


CHILD = """
import sys, time
from rnnkit.threads import Registry
Registry(sys.argv[1]).register(int(sys.argv[2]))
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(T.fcntl is None, reason="flock registry: POSIX only")
def test_item10_registry_counts_live_processes_and_forgets_a_killed_one(tmp_path):
    path = tmp_path / "registry"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n)], stdout=subprocess.PIPE, text=True)
                for n in (1, 2)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        reg = T.Registry(path)
        assert sorted(e.threads for e in reg.live()) == [1, 2]
        assert {e.pid for e in reg.live()} == {c.pid for c in children}
        os.kill(children[0].pid, signal.SIGKILL)  # no clean-up code runs: the kernel drops its lock
        children[0].wait()
        assert [e.pid for e in reg.live()] == [children[1].pid]
        assert len(list(path.glob("*" + T.SUFFIX))) == 1  # the dead entry's file was removed
        reg.register(3)  # this process joins; its own entry counts without taking its lock
        assert reg.count() == 2
        reg.release()
        assert reg.count() == 1
    finally:
        for child in children:
            child.kill()
            child.wait()
            child.stdout.close()
    deadline = time.monotonic() + 30
    while T.Registry(path).count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert T.Registry(path).count() == 0


def test_item10_summary_records_the_threads_used(tmp_path, registry_dir, monkeypatch):
    data = write_numeric_jsonl(tmp_path / "series.jsonl", n=240)
    summary = api.train(C.resolve(None, [f"data.train={data}", *SMALL]), tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    # the suite's OMP_NUM_THREADS=1 (tests/conftest.py) is respected, and recorded as the reason
    assert on_disk["threads"] == summary["threads"] == 1
    assert on_disk["threads_reason"] == "OMP_NUM_THREADS=1 in the environment"
    cpu = on_disk["cpu"]
    assert cpu["threads_mean"] == 1 and cpu["thread_changes"] == [] and cpu["usable_cores"] >= 1
    assert cpu["session_wall_seconds"] > 0 and cpu["process_cpu_seconds"] > 0
    assert T.Registry(registry_dir).count() == 0  # the run left the registry when it finished

    summary = api.train(C.resolve(None, [f"data.train={data}", *SMALL, "train.threads=2"]), tmp_path / "run2")
    assert (summary["threads"], summary["threads_reason"]) == (2, "train.threads=2")  # explicit always wins

    monkeypatch.delenv("OMP_NUM_THREADS")
    summary = api.train(C.resolve(None, [f"data.train={data}", *SMALL]), tmp_path / "run3")
    assert summary["threads_reason"].startswith("auto: ") and 1 <= summary["threads"] <= T.usable_cores()
