"""Many short series (issue 11, item 2): ~200 yearly series of 15-60 points, a 6-year horizon, through the CLI
as a user runs it. A series too short for the window trains on the longest window its training span holds;
one too short for any window (or for one horizon each of validation and test) is set aside, named with its
length and what it lacks, in summary.json and on stderr; the run never stops on them while others remain."""

from __future__ import annotations

import json

from fakedata import write_short_yearly_series
from rnnkit.cli import main

SMALL = ["model.hidden_size=16", "model.embedding_dim=8", "data.batch_size=64", "train.max_epochs=3",
         "train.threads=1", "train.progress=plain"]


def _sets(pairs):
    return [a for p in pairs for a in ("--set", p)]


def test_default_run_on_200_short_yearly_series_trains_and_names_the_series_set_aside(tmp_path, capsys):
    path, lengths = write_short_yearly_series(tmp_path / "yearly.csv")
    out = tmp_path / "run"
    # the default run: forecast.auto chooses the protocol (within 20 s here; what follows holds for any choice)
    code = main(["train", str(path), "--task", "forecast", "--out", str(out),
                 *_sets(["forecast.time_column=year", "forecast.series_column=series", "forecast.horizon=6",
                         *SMALL, "forecast.auto_budget=20"])])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    aside = summary["data"]["short_series"]["set_aside"]
    # 6 test + 6 validation years, and a training window needs 1 year of history and 6 targets: 19 years at least
    expected = sorted(s for s, n in lengths.items() if n < 19)
    assert expected and sorted(a["series"] for a in aside) == expected
    for a in aside:
        assert a["length"] == lengths[a["series"]] and "too short" in a["why"]
        assert a["series"] in err  # named on stderr too
    auto = summary["data"]["auto"]  # whether or not the budget ran out, the ranking is whole and finite
    assert auto["tried"] + auto["not_tried"] == auto["candidates"] and len(auto["ranking"]) == auto["tried"]
    assert auto["chosen"] == {k: auto["ranking"][0][k] for k in auto["searched"]}
    assert all(r["val_mase"] == r["val_mase"] and r["val_mase"] > 0 for r in auto["ranking"])
    window = auto["chosen"]["input_length"]
    shorter = summary["data"]["short_series"]["shorter_window"]
    assert sorted(s["series"] for s in shorter) == sorted(s for s, n in lengths.items() if 19 <= n < window + 18)
    assert all(s["input_length"] == lengths[s["series"]] - 18 for s in shorter)
    assert summary["data"]["series"] == len(lengths)
    test = summary["metrics"]["test"]
    assert test["mse"] > 0 and "baselines" in test


def test_short_series_error_policy_names_every_series_and_the_fix(tmp_path, capsys):
    path, lengths = write_short_yearly_series(tmp_path / "yearly.csv", n_series=30)
    code = main(["train", str(path), "--task", "forecast", "--out", str(tmp_path / "run"),
                 *_sets(["forecast.time_column=year", "forecast.series_column=series", "forecast.horizon=6",
                         "forecast.short_series=error", "forecast.input_length=24", *SMALL])])
    err = capsys.readouterr().err
    assert code == 2
    assert "some series cannot be split chronologically" in err
    for sid, n in lengths.items():
        if n < 24 + 18:
            assert f"series {sid!r} ({n} steps)" in err
    assert "forecast.short_series=set_aside" in err
