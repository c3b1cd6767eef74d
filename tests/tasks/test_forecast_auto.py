"""forecast.auto (issue 11, item 1) through rnnkit.api and the CLI on realistic monthly series: the protocol is
chosen from the span before the test start only, explicit settings are never searched, the choice and the
ranking are in summary.json and config.yaml reproduces the choice without a second search."""

from __future__ import annotations

import csv
import json

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
    assert auto["searched"] == ["transform", "window_norm"]
    assert auto["fixed"] == {"input_length": 12, "model.cell": "gru"}
    assert all(r["input_length"] == 12 and r["model.cell"] == "gru" for r in auto["ranking"])
    assert {(r["transform"], r["window_norm"]) for r in auto["ranking"]} == {
        (t, w) for t in ("none", "sqrt", "log") for w in (False, True)}
    scores = [r["val_mase"] for r in auto["ranking"] if r["round"] == 2]
    assert scores == sorted(scores) and auto["ranking"][0]["round"] == 2
    assert auto["chosen"] == {k: auto["ranking"][0][k] for k in ("transform", "window_norm")}
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
