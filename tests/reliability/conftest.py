"""Fixtures of the reliability suite: one data file and one uninterrupted reference run per session."""

from __future__ import annotations

import shutil

import pytest
import torch
from relsupport import BASE, FAMILIES, family_overrides

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C


@pytest.fixture(scope="session")
def series(tmp_path_factory):
    """240 noisy sine sequences (3 channels, 5-39 steps, 3 classes) as JSONL."""
    return write_numeric_jsonl(tmp_path_factory.mktemp("data") / "series.jsonl")


@pytest.fixture(scope="session")
def reference(series, tmp_path_factory):
    """The run every interrupted run must reproduce: BASE trained without interruption."""
    run = tmp_path_factory.mktemp("reference") / "run"
    threads = torch.get_num_threads()
    try:
        api.train(C.resolve(None, [f"data.train={series}", *BASE]), run)
    finally:
        torch.set_num_threads(threads)  # BASE sets 1 thread; leave the rest of the session as it was
    return run


@pytest.fixture(scope="session")
def family_run(request, tmp_path_factory):
    """family -> (its data file, its uninterrupted BASE run), made on first use and shared by the session.

    classify is the `series` file and the `reference` run; every other family trains its own tiny run
    (`relsupport.FAMILIES`) with the same steps and checkpoints.
    """
    made = {}

    def get(family: str):
        if family not in made:
            if family == "classify":
                made[family] = request.getfixturevalue("series"), request.getfixturevalue("reference")
            else:
                data = FAMILIES[family].write(tmp_path_factory.mktemp(f"data-{family}"))
                run = tmp_path_factory.mktemp(f"reference-{family}") / "run"
                threads = torch.get_num_threads()
                try:
                    api.train(C.resolve(None, family_overrides(family, data)), run)
                finally:
                    torch.set_num_threads(threads)
                made[family] = data, run
        return made[family]

    return get


@pytest.fixture(autouse=True)
def _keep_thread_count():
    """Runs inside this process set 1 thread (BASE); restore the session's count after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def finished_run(reference, tmp_path):
    """A private copy of the finished reference run, to tamper with."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    return run
