"""Shared fixtures: small realistic data files written to tmp_path."""

import os

# One intra-op thread for the suite and every subprocess it starts: these tiny models gain nothing from
# more, and on a shared 2-core machine two spinning OpenMP pools (ours and a neighbour's) made a 10 s
# test take 220 s. Measured speed lives in bench/, never here.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from fakedata import write_numeric_jsonl, write_text_csv  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def text_csv(tmp_path):
    return write_text_csv(tmp_path / "reviews.csv")


@pytest.fixture
def numeric_jsonl(tmp_path):
    return write_numeric_jsonl(tmp_path / "series.jsonl")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's directory, for this test alone (to see which temporary directories a call leaves)."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp
