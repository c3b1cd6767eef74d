"""Item 8, extended to the task families: whatever bytes a user hands the tagging, seq2seq or
forecasting readers, they end in a result or a DataError/ConfigError -- never another exception."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rnnkit.data.conll import read_tagged
from rnnkit.data.pairs import read_cmudict, read_pairs
from rnnkit.data.timeseries import read_series
from rnnkit.errors import ConfigError, DataError

FUZZ = settings(max_examples=int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# plausible building blocks mixed with hostile ones, so the fuzzer reaches past the header checks
PIECES = ["\t", ",", " ", "\n", "\n\n", "#", "1", "2", "-", "_", ".", "NOUN", "VERB", "B-PER", "I-PER", "O",
          "tokens", "tags", "source", "target", "time", "value", "[", "]", "{", "}", '"', ":", "nan", "inf",
          "1e400", "1900", "1901", "2000-01", "\x00", "é", "(2)", "AA1", "K", "AE0"]
text = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=60).map("".join)


def _run(suffix: str, content: str, read) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
        with contextlib.suppress(DataError, ConfigError):  # anything else fails the test
            read(path)


@pytest.mark.parametrize("suffix", [".conll", ".conllu", ".jsonl"])
@FUZZ
@given(content=text)
@example(content="\u00b2")  # a superscript 2: str.isdigit() says yes, int() refuses (a crash found by the fuzzer)
@example(content="\u00b2\tx\t_\t_\t_\t_\t_\t_\t_\t_\n")
def test_tagging_readers_never_crash(suffix, content):
    _run(suffix, content, read_tagged)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
@FUZZ
@given(content=text)
def test_pair_readers_never_crash(suffix, content):
    _run(suffix, content, read_pairs)


@FUZZ
@given(content=text)
def test_cmudict_reader_never_crashes(content):
    _run(".dict", content, read_cmudict)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@FUZZ
@given(content=text)
def test_series_reader_never_crashes(suffix, content):
    _run(suffix, "time,value\n" + content, lambda p: read_series(p, time_column="time"))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_in_every_family_reader(raw):
    for suffix, read in ((".conllu", read_tagged), (".tsv", read_pairs), (".dict", read_cmudict),
                         (".csv", lambda p: read_series(p, time_column="time"))):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"data{suffix}"
            path.write_bytes(raw)
            with contextlib.suppress(DataError, ConfigError):
                read(path)
