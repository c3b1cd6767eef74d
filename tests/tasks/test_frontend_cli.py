"""model.frontend through the CLI on real UCR files (sktime's GunPoint, 150 steps, and Covid3Month for regression):
what auto chooses is printed in the model line and written to summary.json, a run predicts with the front-end
it was trained with, text and short series get none, and families that need every step refuse conv/patch."""

from __future__ import annotations

import json

import pytest

from fakedata import HAS_SKTIME, SMALL_CLI, write_text_csv
from fakedata import ucr_files as _ucr
from rnnkit.cli import main

pytestmark = pytest.mark.skipif(not HAS_SKTIME, reason="sktime (ships the UCR .ts files) is not installed")

SMALL = SMALL_CLI


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def test_auto_gives_a_long_univariate_series_the_conv_front_end_and_says_so(tmp_path, capsys):
    train, test = _ucr("GunPoint")
    run = tmp_path / "run"
    assert main(["train", str(train), "--test", str(test), "--out", str(run), *_sets(SMALL)]) == 0
    err = capsys.readouterr().err
    model_line = next(line for line in err.splitlines() if line.startswith("rnnkit: model:"))
    assert "conv front-end /2 (median 150 -> 75 steps; auto: median length > 100)" in model_line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["frontend"] == {"kind": "conv", "reduction": 2, "median_length": 150.0,
                                           "reason": "auto: median length > 100"}
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(test), "--output", str(out)]) == 0  # rebuilt with the front-end
    assert len(out.read_text().splitlines()) == 151
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(test)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(summary["metrics"]["test"]["accuracy"])


def test_short_series_and_text_get_no_front_end(tmp_path, capsys):
    train, test = _ucr("ItalyPowerDemand")  # 24 steps
    assert main(["train", str(train), "--test", str(test), "--out", str(tmp_path / "ip"), *_sets(SMALL)]) == 0
    summary = json.loads((tmp_path / "ip" / "summary.json").read_text())
    assert summary["data"]["frontend"]["kind"] == "none"
    assert "no front-end (auto: median length 24 <= 100)" in capsys.readouterr().err

    data = write_text_csv(tmp_path / "reviews.csv", n=120)
    args = ["--text-column", "review", "--label-column", "stars"]
    assert main(["train", str(data), *args, "--out", str(tmp_path / "txt"), *_sets(SMALL)]) == 0
    assert json.loads((tmp_path / "txt" / "summary.json").read_text())["data"]["frontend"]["kind"] == "none"
    assert "no front-end (auto: token input)" in capsys.readouterr().err
    code = main(["train", str(data), *args, "--out", str(tmp_path / "txt2"), *_sets([*SMALL, "model.frontend=conv"])])
    assert code == 2 and "numeric sequences only" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["conv", "patch"])
def test_regression_takes_an_explicit_front_end_and_predicts_with_it(tmp_path, capsys, kind):
    train, test = _ucr("Covid3Month")  # 84 steps: auto gives none, so ask for a front-end of /4
    run = tmp_path / "run"
    sets = [*SMALL, f"model.frontend={kind}", "model.frontend_reduction=4"]
    assert main(["train", str(train), "--test", str(test), "--task", "regress", "--out", str(run), *_sets(sets)]) == 0
    assert f"{kind} front-end /4 (median 84 -> 21 steps; model.frontend {kind})" in capsys.readouterr().err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["frontend"]["kind"] == kind
    assert summary["metrics"]["test"]["rmse"] > 0
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(test), "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 62


def test_families_that_need_every_step_refuse_a_front_end(tmp_path, capsys):
    data = write_text_csv(tmp_path / "reviews.csv", n=40)
    code = main(["train", str(data), "--task", "tag", "--out", str(tmp_path / "t"), *_sets(["model.frontend=conv"])])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.frontend" in err and "task tag reads the encoder at every step" in err
