"""Issue 12: the doctor names a cut that hides much of the data (`inputs.truncated`, and the checklist's data item),
with the option that keeps more: windows for a family that reads them, head+tail, a longer limit; with windows,
more of them. The long-sequence speed advice reads fewer steps (fewer windows, or truncation keeping both ends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit import config as C
from rnnkit.doctor import rules as R
from rnnkit.doctor.checklist import run_checklist
from rnnkit.doctor.evidence import Evidence


def _evidence(data: dict, *items: str, **summary) -> Evidence:
    return Evidence(Path("run"), C.resolve(None, list(items)), {"data": data, **summary}, [], [], [])


def _data(cut_rows: int, rows: int = 100, *, by="data.max_length", limit=512, keep="head", mode="truncate") -> dict:
    train = {"rows": rows, "cut_rows": cut_rows, "cut_rows_share": cut_rows / rows, "positions": rows * 600,
             "dropped_positions": cut_rows * 300, "dropped_share": cut_rows * 300 / (rows * 600)}
    return {"sizes": {"train": rows, "val": 10}, "truncated": {"train": cut_rows, "val": 0},
            "truncation": {"limit": limit, "by": by, "keep": keep, "splits": {"train": train}},
            "long_sequences": {"mode": mode, "reason": "test"}}


@pytest.mark.parametrize(("cut", "fires"), [(0, False), (10, False), (11, True), (100, True)])
def test_truncated_fires_above_a_tenth_of_the_training_rows(cut, fires):
    found = R.truncation(_evidence(_data(cut)))
    assert [f.code for f in found] == (["inputs.truncated"] if fires else [])
    if fires:
        (f,) = found
        assert f.severity == "warning" and f.evidence["cut_rows"] == cut
        assert f"data.max_length=512 cut {cut} of the 100 training rows ({cut}%) to the head" in f.explanation
        assert f"dropping {cut * 300:,} of the 60,000 training positions ({cut * 300 / 60_000:.0%})" in f.explanation


def test_the_advice_names_windows_first_for_a_classifier_then_head_tail_then_a_longer_limit():
    (f,) = R.truncation(_evidence(_data(40)))
    assert f.advice[0].startswith("read each document whole in windows: --set data.long_sequences=window")
    assert "--set data.truncate_keep=head_tail" in f.advice[1]
    assert f.advice[2].endswith("--set data.max_length=1024")
    # the checklist's data item fails, naming the same first option
    check = run_checklist(_evidence(_data(40)), [])[0]
    assert check.verdict == "fail" and "data.max_length cuts 40% of the train rows" in check.detail
    assert "--set data.long_sequences=window" in check.detail

    (both,) = R.truncation(_evidence(_data(40, keep="head_tail") | {"truncation": {
        **_data(40)["truncation"], "keep": "head_tail", "head": 128, "tail": 384}}))
    assert "to the first 128 and the last 384 steps" in both.explanation
    assert not any("truncate_keep=head_tail" in a for a in both.advice)  # already kept both ends


def test_a_family_without_windows_gets_the_truncation_options_only():
    (f,) = R.truncation(_evidence(_data(50), "task=regress"))
    assert not any("long_sequences" in a for a in f.advice)
    assert "--set data.truncate_keep=head_tail" in f.advice[0]


def test_windows_capped_by_max_windows_advise_more_windows():
    data = _data(30, by="data.max_windows", limit=4096, mode="window")
    (f,) = R.truncation(_evidence(data, "data.max_windows=8"))
    assert "data.max_windows=8 windows (4096 steps) cut 30 of the 100 training rows" in f.explanation
    assert f.advice == ["more windows per document (memory grows with them): --set data.max_windows=16"]
    assert "data.max_windows cuts 30% of the train rows" in run_checklist(_evidence(data), [])[0].detail


def test_a_run_from_before_the_counts_is_judged_on_its_rows():
    old = {"sizes": {"train": 100}, "truncated": {"train": 30}}
    (f,) = R.truncation(_evidence(old))
    assert f.evidence["cut_rows_share"] == 0.3 and "dropping" not in f.explanation


def test_long_sequence_speed_advice_reads_fewer_steps():
    """Windows read every step of a document, so they are no cure for a slow epoch (on CPU the time per real step
    stayed the same: BENCHMARKS.md); the advice reads fewer steps: fewer windows, or truncation with both ends."""
    slow = {"train_real_tokens": 3000 * 100}
    (f,) = [f for f in R.slow(_evidence(_data(0), **slow)) if f.code == "slow.long_sequences"]
    assert f.advice[0].endswith("--set data.max_length=1024")
    assert f.advice[1] == "keeping both ends of each row: --set data.truncate_keep=head_tail"
    assert not any("long_sequences=window" in a for a in f.advice)
    windowed = _data(0, mode="window") | {"long_sequences": {"mode": "window", "window_length": 512}}
    (f,) = [f for f in R.slow(_evidence(windowed, **slow)) if f.code == "slow.long_sequences"]
    assert f.advice[0].startswith("cut each document to fewer windows: --set data.max_windows=4")
    assert "--set data.long_sequences=truncate --set data.truncate_keep=head_tail" in f.advice[1]


def test_fewer_windows_advice_starts_below_the_windows_a_document_has():
    """Found by a new user on ACSF1 (3 windows of 512 per series): "--set data.max_windows=4" (half the cap of 8)
    changed nothing. The advice halves the most windows a training document has, and is left out when every
    document is one window."""
    slow = {"train_real_tokens": 3000 * 100}

    def advice(most: int) -> list[str]:
        data = _data(0, mode="hierarchical") | {"long_sequences": {
            "mode": "hierarchical", "window_length": 512, "splits": {"train": {"documents": 90, "windows": 270,
                                                                                "mean_windows": 3.0,
                                                                                "max_windows": most}}}}
        (f,) = [f for f in R.slow(_evidence(data, **slow)) if f.code == "slow.long_sequences"]
        return f.advice

    assert advice(3)[0].startswith("cut each document to fewer windows: --set data.max_windows=1 (")
    assert advice(8)[0].startswith("cut each document to fewer windows: --set data.max_windows=4 (")
    assert not any("max_windows" in a for a in advice(1))
    assert "--set data.long_sequences=truncate --set data.truncate_keep=head_tail" in advice(1)[0]
