"""forecast.auto (issue 11, item 1) through rnnkit.api and the CLI on realistic monthly series: the protocol is
chosen from the span before the test start only, explicit settings are never searched, the choice and the
ranking are in summary.json and config.yaml reproduces the choice without a second search."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.report import write_report

SMALL = ["model.hidden_size=8", "model.embedding_dim=8", "data.batch_size=16", "optim.lr=1e-2",
         "train.max_epochs=4", "train.threads=1", "train.progress=none", "forecast.auto_budget=100000"]


def write_monthly(path, values, start="1990-01"):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "sales"])
        for i, v in enumerate(values):
            w.writerow([str(np.datetime64(start) + i), f"{v:.4f}"])
    return path


def airline_like(n=132, seed=0):
    """Trend x multiplicative yearly season x noise: the shape of the airline passengers series."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (100 + 1.5 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) * np.exp(0.03 * rng.standard_normal(n))


def _cfg(path, *extra):
    return C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=month",
                            "forecast.horizon=3", "forecast.test_size=24", "forecast.seasonality=12", *SMALL, *extra])


def test_changing_the_test_span_changes_no_choice(tmp_path):
    """The search reads the training span only: with every test-span value replaced, the chosen protocol and
    every candidate's validation score are the same, while the test metrics (which do read it) change."""
    y = airline_like()
    other = y.copy()
    other[-24:] = other[-24:] * np.linspace(0.5, 3.0, 24) + 40  # still positive: the transforms' domain is the same
    runs = {}
    for name, values in (("a", y), ("b", other)):
        path = write_monthly(tmp_path / f"{name}.csv", values)
        runs[name] = api.train(_cfg(path, "forecast.auto_keys=[input_length,transform,model.cell]"), tmp_path / name)
    a, b = runs["a"]["data"]["auto"], runs["b"]["data"]["auto"]
    assert a["chosen"] == b["chosen"] and a["searched"] == ["input_length", "transform", "model.cell"]
    keys = ("input_length", "transform", "model.cell", "val_mase", "val_mse")
    assert [{k: r[k] for k in keys} for r in a["ranking"]] == [{k: r[k] for k in keys} for r in b["ranking"]]
    assert runs["a"]["metrics"]["test"]["mse"] != runs["b"]["metrics"]["test"]["mse"]
    # the origins end where the test span starts (1999-01) and step back one validation span (11 months)
    assert a["origin_times"] == [["1998-02", "1998-12"], ["1997-03", "1998-01"], ["1996-04", "1997-02"]]
    assert a["tried"] == a["candidates"] == 3 * 3 * 2 and not a["budget_exhausted"]


def test_explicit_settings_are_not_searched_and_config_yaml_reproduces_the_choice(tmp_path, capsys):
    path = write_monthly(tmp_path / "sales.csv", airline_like(seed=1))
    out = tmp_path / "run"
    assert main(["train", str(path), "--task", "forecast", "--out", str(out),
                 *[a for s in ["forecast.time_column=month", "forecast.horizon=3", "forecast.test_size=24",
                               "forecast.seasonality=12", "forecast.input_length=12", "model.cell=gru", *SMALL,
                               "train.progress=plain"]
                   for a in ("--set", s)]]) == 0
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    auto = summary["data"]["auto"]
    assert auto["searched"] == ["transform", "window_norm", "residual"]
    assert auto["fixed"] == {"input_length": 12, "model.cell": "gru"}
    assert all(r["input_length"] == 12 and r["model.cell"] == "gru" for r in auto["ranking"])
    assert {(r["transform"], r["window_norm"], r["residual"]) for r in auto["ranking"]} == {
        (t, w, res) for t in ("none", "sqrt", "log") for w in (False, True) for res in ("none", "seasonal")}
    scores = [r["val_mase"] for r in auto["ranking"] if r["round"] == 2]
    assert scores == sorted(scores) and auto["ranking"][0]["round"] == 2
    assert auto["chosen"] == {k: auto["ranking"][0][k] for k in ("transform", "window_norm", "residual")}
    assert "forecast.auto chose transform=" in captured.err  # at the start, and again after the done: line
    assert captured.out.index("note: forecast.auto chose transform=") > captured.out.index("done:")
    saved = C.from_dict(C.load_yaml(out / "config.yaml"))
    assert saved.forecast.transform == auto["chosen"]["transform"] and saved.forecast.auto_keys == []
    assert saved.forecast.window_norm is auto["chosen"]["window_norm"]
    page = write_report(out).read_text()  # the report shows the search and its choice
    assert "Protocol search" in page and f"chose transform={auto['chosen']['transform']}" in page
    # the saved config trains the chosen protocol again, without searching
    again = api.train(C.resolve(out / "config.yaml", ["train.max_epochs=1"]), tmp_path / "again")
    assert "auto" not in again["data"]


def test_no_candidate_beats_seasonal_naive_is_said_in_the_last_lines_and_summary(tmp_path, capsys):
    """A series that repeats its year exactly: the seasonal naive forecast is perfect on validation, so no
    network beats it; the CLI says so after the `done:` line and summary.json carries the fact."""
    season = np.array([112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118], dtype=float)
    path = write_monthly(tmp_path / "flat.csv", np.tile(season, 10))
    out = tmp_path / "run"
    assert main(["train", str(path), "--task", "forecast", "--out", str(out),
                 *[a for s in ["forecast.time_column=month", "forecast.horizon=3", "forecast.test_size=24",
                               "forecast.seasonality=12", "forecast.auto_keys=[input_length]", *SMALL]
                   for a in ("--set", s)]]) == 0
    stdout = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["auto"]["beats_seasonal_naive"] is False
    # its in-sample seasonal naive error is 0, so MASE is undefined and the ranking falls back to MSE
    assert summary["data"]["auto"]["metric"] == "mse" and summary["data"]["auto"]["val"]["seasonal_naive"]["mse"] == 0
    lines = stdout.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("done:"))
    assert any("did not beat the seasonal naive forecast on validation" in line for line in lines[done + 1:])
    # ...and the doctor makes it a finding, with the family's advice (the run's findings.json)
    findings = {f["code"]: f for f in json.loads((out / "findings.json").read_text())}
    f = findings["protocol.not_beaten"]
    assert f["severity"] == "warning" and "against the seasonal-naive forecast's 0" in f["explanation"]
    assert any("--set forecast.residual=seasonal" in a for a in f["advice"])


def _train_cli(tmp_path, name, values, sets, capsys, *, with_stdout=False):
    path = write_monthly(tmp_path / f"{name}.csv", values)
    out = tmp_path / name
    assert main(["train", str(path), "--task", "forecast", "--out", str(out),
                 *[a for s in ["forecast.time_column=month", "forecast.horizon=3", "forecast.test_size=24",
                               "forecast.seasonality=12", *SMALL, *sets] for a in ("--set", s)]]) == 0
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    return (summary, captured.err, out, captured.out) if with_stdout else (summary, captured.err, out)


def test_the_residual_is_searched_by_default_and_the_choice_is_stated(tmp_path, capsys):
    """Every other protocol key set by hand, none of forecast.auto_keys: the default layer leaves
    forecast.residual to the search, which ranks none against the seasonal-naive residual (the data has a season
    and the windows hold one) and says what it chose in summary.json, on stderr and in config.yaml."""
    summary, err, out = _train_cli(tmp_path, "seasonal", airline_like(seed=2),
                                   ["forecast.input_length=24", "forecast.transform=none",
                                    "forecast.window_norm=false", "model.cell=gru", "train.progress=plain"], capsys)
    auto = summary["data"]["auto"]
    assert auto["searched"] == ["residual"] and auto["candidates"] == auto["tried"] == 2
    assert auto["fixed"] == {"input_length": 24, "transform": "none", "window_norm": False, "model.cell": "gru"}
    assert sorted(r["residual"] for r in auto["ranking"]) == ["none", "seasonal"]
    assert auto["chosen"] == {"residual": auto["ranking"][0]["residual"]}
    scores = [r["val_mase"] for r in auto["ranking"]]
    assert scores == sorted(scores) and all(s > 0 for s in scores)
    assert f"forecast.auto chose residual={auto['chosen']['residual']}" in err
    saved = C.from_dict(C.load_yaml(out / "config.yaml"))
    assert saved.forecast.residual == auto["chosen"]["residual"] and saved.forecast.auto_keys == []


def test_a_window_shorter_than_the_season_searches_the_naive_residual(tmp_path, capsys):
    """A 6-month window cannot hold the 12-month season, so the change is taken from the last value instead."""
    summary, _, _ = _train_cli(tmp_path, "short", airline_like(seed=3),
                               ["forecast.input_length=6", "forecast.transform=none", "forecast.window_norm=false",
                                "model.cell=lstm"], capsys)
    assert sorted(r["residual"] for r in summary["data"]["auto"]["ranking"]) == ["last", "none"]


def test_a_residual_you_set_is_not_searched(tmp_path, capsys):
    summary, err, _ = _train_cli(tmp_path, "mine", airline_like(seed=4),
                                 ["forecast.residual=seasonal", "forecast.transform=none",
                                  "forecast.window_norm=false", "model.cell=gru"], capsys)
    auto = summary["data"]["auto"]
    assert auto["searched"] == ["input_length"] and auto["fixed"]["residual"] == "seasonal"
    assert all(r["residual"] == "seasonal" for r in auto["ranking"])
    assert sorted(r["input_length"] for r in auto["ranking"]) == [12, 24, 36]  # a seasonal residual's window >= m
    assert "residual" not in auto["chosen"]


def test_the_docs_describe_the_residual_search():
    """The README's forecasting paragraph and the config's comments (what `rnnkit config` prints) say that
    forecast.auto chooses the residual too."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = next(p for p in readme.split("\n\n") if p.startswith("Forecasting chooses its own protocol"))
    assert "`forecast.residual`" in paragraph and "seasonal naive" in paragraph
    assert "`forecast.linear`" in readme
    text = C.commented_default("forecast")
    auto_line = next(line for line in text.splitlines() if line.strip().startswith("auto:"))
    assert "residual" in auto_line
    residual_line = next(line for line in text.splitlines() if line.strip().startswith("residual: auto"))
    assert "forecast.auto" in residual_line


def test_the_checklist_and_the_done_line_count_the_search(tmp_path, capsys):
    """A new user's forecast: forecast.auto tried every candidate, yet the checklist said 'Hyperparameters tuned?
    not searched', and the done line's seconds left out the search (2 s of a 17 s run)."""
    summary, _, out, stdout = _train_cli(tmp_path, "air", airline_like(), ["forecast.auto_keys=[input_length]"],
                                         capsys, with_stdout=True)
    auto = summary["data"]["auto"]
    assert summary["data"]["prepare_seconds"] >= auto["seconds"] > 0
    done = next(line for line in stdout.splitlines() if line.startswith("done:"))
    prepared = summary["data"]["prepare_seconds"]
    assert (f"+ {prepared:.0f} s reading and preparing the data" in done) is (prepared >= 0.5)
    if auto["seconds"] >= 0.5:  # the search's share is named
        assert f"({auto['seconds']:.0f} s of it the forecast.auto search)" in done
    tuned = next(c for c in json.loads((out / "checklist.json").read_text()) if c["item"] == "Hyperparameters tuned?")
    assert tuned["verdict"] == ("fail" if summary["config_warnings"] else "pass")  # hidden 8: below the range
    assert "not searched" not in tuned["detail"]
    assert f"input_length searched over {auto['tried']} candidates" in tuned["detail"]
    assert f"over {len(auto['ranking'][0]['folds'])} origin(s)" in tuned["detail"]


def test_a_search_whose_budget_ran_out_early_is_not_called_tuned():
    """A new user's weekly co2 run: forecast.auto tried 1 of 72 candidates before its budget ran out, and the
    checklist passed 'Hyperparameters tuned?' with 'searched over 1 candidates'."""
    from pathlib import Path

    from rnnkit import config as C
    from rnnkit.doctor.checklist import run_checklist
    from rnnkit.doctor.evidence import Evidence

    auto = {"by": "forecast.auto", "budget_key": "forecast.auto_budget", "searched": ["input_length", "transform"],
            "tried": 1, "candidates": 72, "budget_exhausted": True, "metric": "mase", "origins": 3,
            "ranking": [{"folds": [{"mase": 0.3}]}]}
    ev = Evidence(Path("run"), C.resolve(None, ["task=forecast"]),
                  {"metrics": {}, "config_warnings": [], "data": {"auto": auto}}, [], [], [])
    (check,) = [c for c in run_checklist(ev, []) if c.item == "Hyperparameters tuned?"]
    assert check.verdict == "fail" and "after 1 of 72 candidates: raise forecast.auto_budget" in check.detail
    assert "over 1 origin(s)" in check.detail


def test_a_budget_that_ran_out_before_the_longer_round_says_so():
    """'72 of 72 candidates tried in 30 s, budget exhausted' read as a contradiction (every candidate tried): what
    the budget cut was the longer round at every origin, and the choice rests on fewer origins."""
    from rnnkit.tasks._forecast_auto import _exhausted_words

    assert _exhausted_words(False, 3, 3) == ""
    assert _exhausted_words(True, 3, 3) == ", budget exhausted"
    said = _exhausted_words(True, 1, 3)
    assert "before the longer round at all 3 origins" in said and "rests on 1" in said and "auto_budget" in said
