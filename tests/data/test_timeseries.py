"""Time-series reading, validation, chronological splits and scaling, driven through rnnkit's API."""

import csv
import json

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import DataError
from rnnkit.tasks import get_task


def write_series(path, times, values, *, header=("time", "value"), series=None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(([header[0], "store"] if series else [header[0]]) + list(header[1:]))
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            w.writerow([t, series[i]] if series else [t] + [v] if not isinstance(v, list) else [t, *v])
    return path


def cfg_for(path, *sets):
    return C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.input_length=4", "train.max_epochs=1",
                            "forecast.auto=false",
                            "train.progress=none", *sets])


def data_error(path, tmp_path, *sets) -> DataError:
    with pytest.raises(DataError) as info:
        api.train(cfg_for(path, *sets), tmp_path / "run")
    return info.value


def test_gap_names_the_row_and_the_missing_steps(tmp_path):
    years = [*range(1900, 1930), *range(1932, 1960)]  # 1930 and 1931 missing; the row of 1932 is line 32
    path = write_series(tmp_path / "y.csv", years, [float(i % 7) for i in range(len(years))])
    err = data_error(path, tmp_path)
    (p,) = err.problems
    assert (p.line, p.column, p.value) == (32, "time", "1932")
    assert "2 missing step(s) (1930 .. 1931)" in p.rule and "line 31" in p.rule
    assert f"{path}:32" in str(err) and "Fix:" in str(err)


def test_monthly_dates_gap_duplicate_unsorted_and_nan_each_listed(tmp_path):
    months = [str(np.datetime64("2000-01") + i) for i in range(40)]
    values = [str(float(i)) for i in range(40)]
    months[10] = months[9]  # duplicate of line 11 on line 12
    months[20], months[21] = months[21], months[20]  # out of order: line 23 earlier than line 22
    del months[30]  # gap: 2002-07 missing
    del values[30]
    values[5] = "nan"
    values[6] = "abc"
    path = write_series(tmp_path / "m.csv", months, values)
    err = data_error(path, tmp_path)
    got = {(p.line, p.column): p.rule for p in err.problems}
    assert "duplicate timestamp" in got[(12, "time")]
    assert "out of order" in got[(23, "time")]
    assert "gap: 1 missing step(s) (2002-07)" in got[(32, "time")]
    assert [p.line for p in err.problems] == sorted(p.line for p in err.problems)  # in file order
    assert (24, "time") not in got  # the row after the swapped pair is not reported again
    assert "NaN/Inf" in got[(7, "value")]
    assert "non-numeric" in got[(8, "value")]


def test_skip_policy_drops_whole_series_and_writes_rejects(tmp_path):
    t = list(range(60))
    rows = [(i, "a", float(np.sin(i))) for i in t] + [(i, "b", float(np.cos(i))) for i in t if i != 20]
    path = tmp_path / "long.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "store", "sales"])
        w.writerows(rows)
    cfg = cfg_for(path, "forecast.series_column=store", "data.bad_rows=skip", "data.max_bad_fraction=0.5")
    data = get_task("forecast").prepare(cfg, tmp_path)
    assert data.report["series"] == 1 and data.report["rejected_series"] == 1
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["record_id"] == "long.csv:b" and "gap" in rejects[0]["problems"][0]["rule"]
    assert {ex.extra["series"] for ex in data.datasets["train"].examples} == {"a"}


def test_chronological_split_and_scaler_fitted_on_training_span_only(tmp_path):
    n = 80
    values = np.concatenate([np.linspace(0, 1, 60), np.linspace(50, 60, 20)])  # the future looks very different
    path = write_series(tmp_path / "s.csv", range(2000, 2000 + n), [float(v) for v in values])
    cfg = cfg_for(path, "forecast.test_size=10", "forecast.val_size=10", "forecast.horizon=2")
    data = get_task("forecast").prepare(cfg, tmp_path)
    (scaler,) = data.prep.scalers.values()
    np.testing.assert_allclose(scaler.mean[0], values[:60].mean())
    np.testing.assert_allclose(scaler.std[0], values[:60].std())
    assert data.report["spans"] == {"train": ["2000", "2059"], "val": ["2060", "2069"], "test": ["2070", "2079"]}
    # windows never let a later split's targets into an earlier split, and never look ahead
    bounds = {"train": (0, 60), "val": (60, 70), "test": (70, 80)}
    for split, (a, b) in bounds.items():
        origins = [ex.extra["origin"] for ex in data.datasets[split].examples]
        assert origins == sorted(origins) and min(origins) >= max(a, 4) and max(origins) + 2 <= b
        for ex in data.datasets[split].examples:
            o = ex.extra["origin"]
            np.testing.assert_allclose(ex.extra["raw_target"][:, 0], values[o:o + 2])
            # inputs are the z-scored history right before the origin, nothing later
            np.testing.assert_allclose(ex.inputs[:, 0].numpy(), scaler.transform(values[o - 4:o, None])[:, 0],
                                       rtol=1e-5)
    assert len(data.datasets["test"]) == 9  # origins 70..78: every horizon inside the test span


def test_test_start_time_and_too_short_series(tmp_path):
    path = write_series(tmp_path / "s.csv", range(1900, 1960), [float(i % 5) for i in range(60)])
    data = get_task("forecast").prepare(cfg_for(path, "forecast.test_start=1950", "forecast.test_end=1955"), tmp_path)
    assert data.report["spans"]["test"] == ["1950", "1955"] and data.report["unused_after_test_end"] == 4
    err = data_error(path, tmp_path, "forecast.input_length=50")
    assert "too short for the split" in err.problems[0].rule


@pytest.mark.parametrize("transform, forward", [("sqrt", np.sqrt), ("log", np.log)])
def test_transform_is_applied_before_the_scaler_and_undone_for_metrics(tmp_path, transform, forward):
    values = 5 + 4 * np.sin(np.arange(60) / 3) ** 2
    path = write_series(tmp_path / "s.csv", range(2000, 2060), [float(v) for v in values])
    cfg = cfg_for(path, "forecast.test_size=10", "forecast.val_size=10", f"forecast.transform={transform}")
    task = get_task("forecast")
    data = task.prepare(cfg, tmp_path)
    (scaler,) = data.prep.scalers.values()
    np.testing.assert_allclose(scaler.mean[0], forward(values[:40]).mean())  # fitted on the transformed span
    ex = data.datasets["test"].examples[0]
    o = ex.extra["origin"]
    np.testing.assert_allclose(ex.inputs[:, 0].numpy(), scaler.transform(forward(values[o - 4:o, None]))[:, 0],
                               rtol=1e-5)
    np.testing.assert_allclose(ex.extra["raw_target"][:, 0], values[o:o + 1])  # truth stays in original units
    # a perfect forecast in model units scores 0 in original units: the transform is inverted
    preds = [ex.target.double() for ex in data.datasets["test"].examples]
    metrics = task.score(preds, data.datasets["test"].examples, data.prep, cfg)
    assert metrics["mse"] < 1e-8 and metrics["mae"] < 1e-4
    assert json.loads((tmp_path / "forecast.json").read_text())["transform"] == transform


@pytest.mark.parametrize("transform, bad, rule", [("sqrt", -2.0, "sqrt needs values >= 0"),
                                                  ("log", 0.0, "log needs values > 0")])
def test_values_outside_the_transform_domain_are_named_before_training(tmp_path, transform, bad, rule):
    values = [float(1 + i % 5) for i in range(40)]
    values[17] = bad  # line 19 (header, then 1-based rows)
    path = write_series(tmp_path / "s.csv", range(2000, 2040), values)
    err = data_error(path, tmp_path, f"forecast.transform={transform}")
    (p,) = err.problems
    assert (p.line, p.column, p.value) == (19, "value", bad)
    assert rule in p.rule and "forecast.transform=none" in p.fix
    assert not (tmp_path / "run" / "checkpoints").exists()


def _stacked(path, ids, *, n=100, id_column="store", numeric_ids=False):
    """Several series one after another in one file, each with its own id in `id_column` (times start again)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sales", id_column, "day"])
        for k, sid in enumerate(ids):
            for day in range(1, n + 1):
                w.writerow([f"{10 * k + np.sin(day / 3):.4f}", k + 1 if numeric_ids else sid, day])
    return path


@pytest.mark.parametrize("numeric_ids", [False, True])
def test_several_series_and_no_series_column_name_the_column_and_the_key(tmp_path, numeric_ids):
    """A new user's file of two stores, one after the other, without forecast.series_column: each row of the
    second store was 'out of order' or 'duplicate', with advice to sort on the first column (the target); the
    error is now one problem that names the column that holds the ids and the key to set."""
    path = _stacked(tmp_path / "two.csv", ["a", "b"], numeric_ids=numeric_ids)
    err = data_error(path, tmp_path, "forecast.time_column=day")
    (p,) = err.problems
    assert (p.file, p.line, p.column) == (str(path), 102, "store")
    assert "times start again" in p.rule and "2 series" in p.rule
    assert "--set forecast.series_column=store" in p.fix
    # with the key set, the same file trains: two series
    data = get_task("forecast").prepare(cfg_for(path, "forecast.time_column=day", "forecast.series_column=store"),
                                        tmp_path)
    assert data.report["series"] == 2


def test_unsorted_rows_are_told_a_sort_on_the_time_column(tmp_path):
    """The sort advice names the time column's own position (column 3 here), not the first column."""
    path = tmp_path / "shuffled.csv"
    rows = [(f"{np.sin(d / 3):.4f}", "x", d) for d in range(1, 61)]
    rows[10], rows[11] = rows[11], rows[10]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sales", "note", "day"])
        w.writerows(rows)
    err = data_error(path, tmp_path, "forecast.time_column=day")
    (p,) = [p for p in err.problems if "out of order" in p.rule]
    assert p.line == 13
    assert "-k3,3n" in p.fix and "-k1,1n" not in p.fix and "sort_values('day')" in p.fix
    # a quoted field with the delimiter inside: `sort -t,` would split it, so only pandas is advised
    rows[0] = (rows[0][0], "Acme, Inc.", rows[0][2])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sales", "note", "day"])
        w.writerows(rows)
    (p,) = [p for p in data_error(path, tmp_path, "forecast.time_column=day").problems if "out of order" in p.rule]
    assert "sort -s" not in p.fix and "sort_values('day')" in p.fix


def test_a_bad_series_is_counted_as_a_series_in_the_header(tmp_path):
    t = list(range(60))
    rows = [(i, "a", 1.0) for i in t] + [(i, "b", 2.0) for i in t if i not in (20, 30)]
    path = tmp_path / "gaps.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "store", "sales"])
        w.writerows(rows)
    err = data_error(path, tmp_path, "forecast.series_column=store")
    assert str(err).startswith(f"1 bad series (1 in {path}), 2 problem(s)")
    err = data_error(path, tmp_path, "forecast.series_column=store", "data.bad_rows=skip")
    assert "1 of 2 series (50.00%) are bad" in str(err)


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


@pytest.mark.parametrize(("style", "first", "after"), [
    (lambda y, m: f"{y}-Q{(m - 1) // 3 + 1}", "1980-Q1", ["1994-Q1", "1994-Q2"]),
    (lambda y, m: f"{y}Q{(m - 1) // 3 + 1}", "1980Q1", ["1994Q1", "1994Q2"]),  # statsmodels' macrodata
    (lambda y, m: f"{y} Q{(m - 1) // 3 + 1}", "1980 Q1", ["1994 Q1", "1994 Q2"]),  # R's ts printout
    (lambda y, m: f"{MONTHS[m - 1][:3]} {y}", "Jan 1980", ["Jan 1985", "Feb 1985"]),
    (lambda y, m: f"{MONTHS[m - 1]} {y}", "January 1980", ["January 1985", "February 1985"]),
])
def test_quarters_and_month_names_are_read_as_dates_and_written_back_the_same_way(tmp_path, style, first, after):
    """Quarterly times (1980-Q1, 1980Q1, 1980 Q1) and months by name (Jan 1980) are common exports (R, spreadsheets,
    statsmodels): read as dates on a monthly axis (a quarter: step 3 months), and the forecasts are written with
    the times in the file's own style."""
    quarterly = "Q" in first
    n = 56 if quarterly else 60
    months = [(1980 + (3 * i if quarterly else i) // 12, (3 * i if quarterly else i) % 12 + 1) for i in range(n)]
    path = write_series(tmp_path / "q.csv", [style(y, m) for y, m in months],
                        [f"{10 + np.sin(i):.4f}" for i in range(n)])
    assert path.read_text().splitlines()[1].startswith(first)
    api.train(cfg_for(path, "forecast.horizon=2", "forecast.test_size=8"), tmp_path / "run")
    out = tmp_path / "f.csv"
    assert api.predict(tmp_path / "run", path, out) == 2
    assert [r["time"] for r in csv.DictReader(out.read_text().splitlines())] == after


def test_a_time_column_in_no_known_format_is_one_problem_that_lists_the_formats(tmp_path):
    """Not one "unreadable time" line per row ("expected a number (the column holds numbers)" for a column that
    holds none): one problem naming the column, the first value and its line, and the formats that are read."""
    path = write_series(tmp_path / "w.csv", [f"week {i}" for i in range(1, 41)], [str(float(i)) for i in range(40)])
    err = data_error(path, tmp_path)
    (p,) = err.problems
    assert (p.line, p.column, p.value) == (2, "time", "week 1")
    assert "none of the 40 times" in p.rule and "holds numbers" not in p.rule
    for fmt in ("2020-01-31", "2020-01", "2020-Q1", "Jan 2020", "numbers"):
        assert fmt in str(err), fmt


def _monthly(path, values, start="1990-01"):
    return write_series(path, [str(np.datetime64(start) + i) for i in range(len(values))],
                        [f"{v:.4f}" for v in values])


def test_seasonality_left_unset_comes_from_the_calendar_when_the_history_shows_it(tmp_path, capsys):
    """Monthly times: 12 when the history before the test span repeats yearly (the seasonal naive baseline and MASE
    then use it), 1 for a random walk on the same calendar; a season only in the test span chooses nothing
    (changing test values changes no choice); numeric times and a seasonality you set are left alone."""
    rng = np.random.default_rng(0)
    n, test = 120, 24
    t = np.arange(n)
    seasonal = 50 + 0.2 * t + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    walk = 50 + np.cumsum(rng.normal(0, 1, n))
    sets = ("forecast.horizon=3", f"forecast.test_size={test}")

    def chosen(values, *more, name="m.csv", times=None):
        path = _monthly(tmp_path / name, values) if times is None else write_series(
            tmp_path / name, times, [f"{v:.4f}" for v in values])
        summary = api.train(cfg_for(path, *sets, *more), tmp_path / name.replace(".csv", ""))
        cfg = C.from_dict(C.load_yaml(tmp_path / name.replace(".csv", "") / "config.yaml"))
        assert (cfg.forecast.seasonality or 1) == summary["data"]["seasonality"]  # saved for predict and evaluate
        return summary["data"]

    data = chosen(seasonal, name="s.csv")
    assert data["seasonality"] == 12
    note = data["seasonality_inferred"]
    assert note["calendar"] == "monthly" and note["candidate"] == 12 and note["autocorrelation"] > note["threshold"]
    assert chosen(walk, name="w.csv")["seasonality"] == 1
    only_in_test = np.concatenate([walk[:n - test], seasonal[n - test:] - seasonal[n - test] + walk[n - test - 1]])
    moved = chosen(only_in_test, name="t.csv")
    assert moved["seasonality"] == 1
    assert moved["seasonality_inferred"]["autocorrelation"] == chosen(walk, name="w2.csv")["seasonality_inferred"][
        "autocorrelation"]
    assert chosen(seasonal, "forecast.seasonality=6", name="u.csv")["seasonality"] == 6
    numeric = chosen(seasonal, name="n.csv", times=list(range(1, n + 1)))
    assert numeric["seasonality"] == 1 and "seasonality_inferred" not in numeric


def test_seasonality_from_the_calendar_is_said_on_stderr(tmp_path, capsys):
    t = np.arange(96)
    path = write_series(tmp_path / "q.csv", [f"{1990 + i // 4}-Q{i % 4 + 1}" for i in t],
                        [f"{20 + 5 * (i % 4 == 3) + 0.1 * i:.3f}" for i in t])
    api.train(C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.input_length=4", "train.max_epochs=1",
                               "forecast.auto=false", "forecast.test_size=8"]), tmp_path / "run")
    err = capsys.readouterr().err
    assert "forecast.seasonality=4: quarterly times, and the history before the test span repeats every 4 steps" in err


def test_interleaved_series_without_a_series_column_are_one_problem_naming_the_column(tmp_path):
    """Three stores' rows shuffled together and no forecast.series_column: 115 lines of 'gap' and 'out of order'
    with advice to sort on time; now one problem: the column that with the time tells every row apart, the key to
    set, and the sort within each series the rows still need."""
    rng = np.random.default_rng(0)
    rows = [(t, s, f"{(t % 7) + 3 * k:.1f}") for k, s in enumerate("abc") for t in range(1, 41)]
    order = rng.permutation(len(rows))
    path = tmp_path / "shuffled.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "store", "value"])
        w.writerows(rows[i] for i in order)
    err = data_error(path, tmp_path)
    (p,) = err.problems
    assert p.column == "store" and "3 series" in p.rule and "(or 'value')" not in p.fix
    assert "--set forecast.series_column=store" in p.fix and "-k2,2 -k1,1n" in p.fix
    # one duplicated row in one series with a column that tells the pair apart is a duplicate, not two series
    one = tmp_path / "one.csv"
    with open(one, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "flag", "value"])
        w.writerows([(t, "a", 1.5 * t) for t in range(1, 31)] + [(30, "b", 1.0)])
    (d,) = data_error(one, tmp_path).problems
    assert "duplicate timestamp" in d.rule
    named = data_error(path, tmp_path, "forecast.series_column=store")  # then: the sort within each series
    assert {"not in time order" in q.rule for q in named.problems} == {True} and len(named.problems) == 3
    assert all("-k2,2 -k1,1n" in q.fix for q in named.problems)


@pytest.mark.parametrize(("first", "step", "count", "season"), [
    ("2000-01", 1, 30, (12, "monthly")), ("2000-01", 3, 30, (4, "quarterly")), ("2000-01-01", 1, 30, (7, "daily")),
    ("2000-01-01T00", 1, 30, (24, "hourly")), ("2000-01-01T00:00", 30, 30, (48, "half-hourly")),
    ("2000-01-01T00:00", 5, 30, None),  # 288 steps a day: more than the search's windows are worth
    ("2000", 1, 30, None), ("2000-01-01", 7, 30, None)])
def test_the_calendar_season_of_a_time_axis(first, step, count, season):
    from rnnkit.data.seasonality import calendar_season
    from rnnkit.data.time_axis import infer_axis, infer_step

    axis, positions, bad = infer_axis([str(np.datetime64(first) + step * i) for i in range(count)])
    axis.step = infer_step([positions])
    assert not bad and calendar_season(axis) == season


def test_a_shuffled_series_is_one_problem_with_a_sort_that_works_for_its_times(tmp_path):
    """A new user's monthly file in random row order, times written 'Jan 1949': 50 'out of order' lines (and 'gap'
    and 'irregular spacing, step 22 months' ones made up by the disorder) each advising `sort -k1,1`, which sorts
    'Apr 1960' before 'Aug 1949'. Now one problem for the series, the step read from the sorted times, and no text
    sort for times that do not sort as text."""
    rng = np.random.default_rng(1)
    times = [f"{MONTHS[i % 12][:3]} {1949 + i // 12}" for i in range(144)]
    values = [f"{100 + i + 10 * np.sin(i / 2):.2f}" for i in range(144)]
    order = rng.permutation(144)
    path = write_series(tmp_path / "air.csv", [times[i] for i in order], [values[i] for i in order])
    err = data_error(path, tmp_path)
    (p,) = err.problems
    assert "not in time order" in p.rule and "step 1 month" in p.rule
    assert "sort -s" not in p.fix and "ISO" in p.fix
    assert "would leave out 1 of 1 series" in str(err) and "or pass `--bad-rows skip`" not in str(err)
    # ISO months sort as text: the shell sort is still offered, and a file with one swapped pair keeps its line
    iso = write_series(tmp_path / "iso.csv", [str(np.datetime64("1949-01") + int(i)) for i in order],
                       [values[i] for i in order])
    (q,) = data_error(iso, tmp_path).problems
    assert "sort -s -t, -k1,1" in q.fix


def test_predict_and_evaluate_on_too_little_history_say_so_and_name_the_series(tmp_path):
    """A file with fewer steps than the model's window: predict forecast from what it had without a word, and
    the too-short error named series '' (a file without a series column) and "fewer than 12 step(s) of history +
    horizon" for 20 steps. Now predict warns with the window it used, and the error names the file's series
    (as the predictions do) and the steps evaluation needs."""
    values = [f"{10 + np.sin(i / 2):.4f}" for i in range(80)]
    path = _monthly(tmp_path / "m.csv", [float(v) for v in values])
    api.train(cfg_for(path, "forecast.input_length=12", "forecast.horizon=3", "forecast.test_size=12",
                      "forecast.seasonality=1"), tmp_path / "run")
    short = write_series(tmp_path / "tail.csv", [str(np.datetime64("1996-01") + i) for i in range(7)], values[:7])
    with pytest.warns(UserWarning, match=r"'tail' has 7 steps, fewer than the model's forecast.input_length 12"):
        assert api.predict(tmp_path / "run", short, tmp_path / "p.csv") == 3
    tiny = write_series(tmp_path / "tiny.csv", ["1996-01", "1996-02"], values[:2])
    with pytest.raises(DataError) as err:
        api.evaluate(tmp_path / "run", tiny)
    (p,) = err.value.problems
    assert "series 'tiny' has 2 steps" in p.rule and "series ''" not in p.rule
    assert "needs at least 4 (1 step of history + the horizon 3)" in p.rule


def test_a_column_missing_from_a_file_to_predict_is_told_to_rename_it(tmp_path):
    """The model's columns are fixed: `--set forecast.time_column=...` (the training-time fix) cannot help
    predict or evaluate, and the problem named the column twice ("column 'time': value 'time'")."""
    values = [f"{10 + np.sin(i / 2):.4f}" for i in range(60)]
    path = _monthly(tmp_path / "m.csv", [float(v) for v in values])
    api.train(cfg_for(path, "forecast.horizon=2", "forecast.test_size=8"), tmp_path / "run")
    other = write_series(tmp_path / "o.csv", [str(np.datetime64("1990-01") + i) for i in range(30)], values[:30],
                         header=("month", "value"))
    with pytest.raises(DataError) as err:
        api.predict(tmp_path / "run", other, tmp_path / "p.csv")
    (p,) = err.value.problems
    assert p.column == "time" and p.value is None
    assert "--set" not in p.fix
    assert "the model reads column 'time'" in p.fix
    with pytest.raises(DataError) as err:
        api.train(cfg_for(other), tmp_path / "run2")
    assert "--set forecast.time_column=<column>" in err.value.problems[0].fix


def test_a_validation_span_of_a_few_windows_is_said_with_the_val_size_that_gives_more(tmp_path):
    """air passengers' protocol as a user writes it (test 24 months, horizon 12): validation is 12 months, ONE
    window, and the best epoch and early stopping rested on one forecast without a word."""
    values = [10 + np.sin(i / 2) for i in range(60)]
    path = _monthly(tmp_path / "m.csv", values)
    with pytest.warns(UserWarning, match=r"validation holds only 3 window\(s\).*forecast.val_size=12 gives 10"):
        api.train(cfg_for(path, "forecast.horizon=3", "forecast.test_size=8", "forecast.seasonality=1"),
                  tmp_path / "run")
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error", UserWarning)
        api.train(cfg_for(path, "forecast.horizon=3", "forecast.test_size=8", "forecast.seasonality=1",
                          "forecast.val_size=12"), tmp_path / "run2")


def test_evaluate_gives_the_baselines_of_the_same_windows(tmp_path):
    """`rnnkit evaluate RUN FILE` on a forecaster gave metrics with nothing to hold them against; now the naive and
    seasonal-naive forecasts of the same windows, as the run's test metrics have them."""
    t = np.arange(96)
    values = 20 + 5 * np.sin(2 * np.pi * t / 12) + 0.1 * t
    path = _monthly(tmp_path / "m.csv", values)
    summary = api.train(cfg_for(path, "forecast.horizon=3", "forecast.test_size=12", "forecast.seasonality=12",
                                "forecast.input_length=12"), tmp_path / "run")
    tail = _monthly(tmp_path / "tail.csv", values[72:], start=str(np.datetime64("1990-01") + 72))
    scored = api.evaluate(tmp_path / "run", tail)
    assert scored["rows"] == 24 - 12 - 3 + 1 == summary["data"]["sizes"]["test"]
    base = scored["baselines"]
    assert set(base) == {"naive", "seasonal_naive"} and base["seasonal_naive"]["seasonality"] == 12
    # the last 12 months are the run's test span: the same windows, the same baseline figures
    test = summary["metrics"]["test"]["baselines"]
    assert base["seasonal_naive"]["mse"] == pytest.approx(test["seasonal_naive"]["mse"])
    assert base["naive"]["mse"] == pytest.approx(test["naive"]["mse"])
