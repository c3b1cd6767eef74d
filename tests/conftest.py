"""Shared fixtures: small realistic data files written to tmp_path."""

import pytest

from fakedata import write_numeric_jsonl, write_text_csv


@pytest.fixture
def text_csv(tmp_path):
    return write_text_csv(tmp_path / "reviews.csv")


@pytest.fixture
def numeric_jsonl(tmp_path):
    return write_numeric_jsonl(tmp_path / "series.jsonl")
