"""The forecasting family end to end through rnnkit.api: sine waves, baselines, predict CSV, built-ins."""

import csv
import json

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.data.datasets import get_builtin
from rnnkit.tasks import get_task

SMALL = ["model.hidden_size=16", "model.embedding_dim=8", "data.batch_size=16", "optim.lr=1e-2",
         "train.max_epochs=25", "train.threads=1", "train.progress=none"]
PINNED = ["forecast.auto=false"]  # tests of one protocol's behaviour: no search (test_forecast_auto.py has it)


def write_sine(path, n=240, period=12, noise=0.02, seed=0):
    """A noisy sine with months as times: a known answer (the next values follow the phase)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(n)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "load"])
        for i, v in enumerate(y):
            w.writerow([str(np.datetime64("2000-01") + i) + "-01", f"{v:.5f}"])
    return path, y


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
def test_sine_wave_beats_naive_by_a_clear_margin(tmp_path, head):
    """Beats naive; predict names the value column `forecast`, as the README says (issue 8, item 15)."""
    path, y = write_sine(tmp_path / "sine.csv")
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=month",
                           "forecast.input_length=12", "forecast.horizon=3", "forecast.test_size=24",
                           f"forecast.head={head}", *SMALL, *PINNED])
    summary = api.train(cfg, tmp_path / "run")
    test = summary["metrics"]["test"]
    naive = test["baselines"]["naive"]
    assert set(test) >= {"mse", "mae", "rmse", "mase", "smape", "baselines"}
    assert test["rmse"] < 0.3 * naive["rmse"], (test, naive)
    assert test["mase"] < 0.3 * naive["mase"]
    assert summary["data"]["sizes"]["test"] == 22  # origins where all 3 targets fall in the last 24 steps
    assert summary["data"]["defaults_applied"][0] == "model.bidirectional=False"
    saved = C.from_dict(C.load_yaml(tmp_path / "run" / "config.yaml"))
    assert saved.model.bidirectional is False and saved.forecast.horizon == 3

    # predict: forecasts for the 3 months after the end of the file, in original units
    out = tmp_path / "forecast.csv"
    assert api.predict(tmp_path / "run", path, out) == 3
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert list(rows[0]) == ["series", "month", "step", "forecast"]  # issue 8 item 15: the README's name
    assert [(r["series"], r["month"], r["step"]) for r in rows] == [
        ("sine", "2020-01-01", "1"), ("sine", "2020-02-01", "2"), ("sine", "2020-03-01", "3")]
    expected = 10 + 3 * np.sin(2 * np.pi * np.arange(240, 243) / 12)
    np.testing.assert_allclose([float(r["forecast"]) for r in rows], expected, atol=0.6)

    # evaluate on the same file: rolling windows with targets, metrics in original units
    scored = api.evaluate(tmp_path / "run", path)
    assert scored["rows"] == 240 - 12 - 3 + 1 and scored["rmse"] < 0.5


def write_tiny(path, values, series=None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "y"] if series is None else ["t", "id", "y"])
        for i, v in enumerate(values):
            w.writerow([i + 1, v] if series is None else [i + 1, series, v])
    return path


def test_baselines_and_metrics_by_hand(tmp_path):
    y = [1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9, 8, 10, 9, 12, 10, 11]
    path = write_tiny(tmp_path / "tiny.csv", y)
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=t", "forecast.input_length=2",
                           "forecast.horizon=2", "forecast.test_size=4", "forecast.val_size=4",
                           "forecast.seasonality=2", "forecast.task_defaults=false", *PINNED])
    task = get_task("forecast")
    data = task.prepare(cfg, tmp_path)
    got = task.baselines(data, cfg)
    # test targets: steps 16..19 (0-based); origins 16, 17, 18 (each needs 2 targets inside the span)
    train = np.array(y[:12], dtype=float)
    scale = np.mean(np.abs(train[2:] - train[:-2]))  # in-sample seasonal naive MAE on the 12 training steps
    truth = [(y[16], y[17]), (y[17], y[18]), (y[18], y[19])]
    naive = [(y[15], y[15]), (y[16], y[16]), (y[17], y[17])]
    seasonal = [(y[14], y[15]), (y[15], y[16]), (y[16], y[17])]
    for name, fc in (("naive", naive), ("seasonal_naive", seasonal)):
        err = np.array(fc, dtype=float) - np.array(truth, dtype=float)
        smape = np.mean(200 * np.abs(err) / (np.abs(truth) + np.abs(np.array(fc, dtype=float))))
        assert got[name]["mse"] == pytest.approx(np.mean(err ** 2))
        assert got[name]["mae"] == pytest.approx(np.mean(np.abs(err)))
        assert got[name]["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)))
        assert got[name]["mase"] == pytest.approx(np.mean(np.abs(err)) / scale)
        assert got[name]["smape"] == pytest.approx(smape)
    assert got["seasonal_naive"]["seasonality"] == 2
    # the model's score uses the same functions on de-normalised forecasts: a perfect forecast scores 0
    (scaler,) = data.prep.scalers.values()
    perfect = [__import__("torch").tensor(scaler.transform(np.array(t, dtype=float)[:, None])) for t in truth]
    assert task.score(perfect, data.datasets["test"].examples, data.prep, cfg)["mse"] == pytest.approx(0, abs=1e-9)


def test_many_series_long_format_each_scaled_on_its_own_training_span(tmp_path):
    path = tmp_path / "stores.csv"
    rng = np.random.default_rng(1)
    series = {"a": 100 + rng.standard_normal(50).cumsum(), "b": -5 + 0.1 * rng.standard_normal(50)}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["week", "store", "sales", "promo"])
        for i in range(50):
            for sid, v in series.items():
                w.writerow([i, sid, f"{v[i]:.4f}", i % 2])
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=week",
                           "forecast.series_column=store", "forecast.covariate_columns=promo",
                           "forecast.input_length=5", "forecast.test_size=5", "forecast.val_size=5",
                           "train.max_epochs=2", *SMALL[:4], "train.progress=none", *PINNED])
    summary = api.train(cfg, tmp_path / "run")
    prep = json.loads((tmp_path / "run" / "forecast.json").read_text())
    assert prep["target_columns"] == ["sales"] and prep["covariate_columns"] == ["promo"]
    for sid, v in series.items():
        assert prep["scalers"][sid]["mean"][0] == pytest.approx(v[:40].round(4).mean(), rel=1e-6)
    assert summary["data"]["sizes"] == {"train": 2 * 35, "val": 10, "test": 10}
    out = tmp_path / "fc.csv"
    api.predict(tmp_path / "run", path, out)
    assert [r["series"] for r in csv.DictReader(out.read_text().splitlines())] == ["a", "b"]


def _installed(name):
    return get_builtin(name).installed()


@pytest.mark.skipif(not _installed("sunspots"), reason="statsmodels data not installed")
def test_sunspots_builtin_follows_zhang_protocol(tmp_path):
    cfg = C.resolve(None, ["task=forecast", "data.dataset=sunspots", "train.progress=none"])
    data = get_task("forecast").prepare(cfg, tmp_path)
    assert data.report["spans"]["test"] == ["1921", "1987"] and data.report["sizes"]["test"] == 67
    assert data.report["spans"]["train"][0] == "1700" and data.report["spans"]["val"][1] == "1920"
    assert cfg.forecast.seasonality == 11 and cfg.model.bidirectional is False  # resolved in the config
    assert (cfg.forecast.transform, cfg.forecast.window_norm, cfg.model.cell) == ("sqrt", True, "gru")


@pytest.mark.skipif(not _installed("sunspots"), reason="statsmodels data not installed")
def test_sunspots_with_every_default_halves_the_naive_error(tmp_path):
    """What `rnnkit train --dataset sunspots` gives a user (one seed; bench_forecast.py has the spread)."""
    summary = api.train(C.resolve(None, ["data.dataset=sunspots", "train.progress=none", "train.threads=1"]),
                        tmp_path / "run")
    test = summary["metrics"]["test"]
    assert test["mse"] < 0.5 * test["baselines"]["naive"]["mse"], test
    assert "forecast.window_norm=True" in summary["data"]["defaults_applied"]
    rows = api.predict(tmp_path / "run", get_builtin("sunspots").files()["train"], tmp_path / "next.csv")
    assert rows == 1 and "sunspots,2009,1," in (tmp_path / "next.csv").read_text()  # the year after the file


@pytest.mark.skipif(not _installed("air_passengers"), reason="pmdarima data not installed")
def test_air_passengers_builtin_seasonal_naive_is_the_published_50_7(tmp_path):
    cfg = C.resolve(None, ["task=forecast", "data.dataset=air_passengers", "train.progress=none", *PINNED])
    data = get_task("forecast").prepare(cfg, tmp_path)
    assert data.report["spans"]["test"] == ["1960-01", "1960-12"] and data.report["sizes"]["test"] == 1
    base = get_task("forecast").baselines(data, cfg)
    assert base["seasonal_naive"]["rmse"] == pytest.approx(50.71, abs=0.01)
    # the user's explicit choice wins over the data set's protocol
    cfg = C.resolve(None, ["task=forecast", "data.dataset=air_passengers", "forecast.residual=none",
                           "forecast.test_size=24", "train.progress=none", *PINNED])
    data = get_task("forecast").prepare(cfg, tmp_path)
    assert cfg.forecast.residual == "none" and data.report["spans"]["test"] == ["1959-01", "1960-12"]


def test_window_norm_forecasts_cycles_larger_than_any_in_training(tmp_path):
    """The test span's cycles are three times the training span's: a plain network saturates near
    the largest values it was trained on, one with window_norm scales its forecast with the window. (Plain: without
    the default linear path too, which is scale-equivariant and extrapolates the amplitude by itself.)"""
    n, period = 300, 12
    t = np.arange(n)
    amplitude = np.where(t < 252, 1.0, 3.0)  # test (last 36 steps, origins with history in the new regime)
    y = 20 + amplitude * np.sin(2 * np.pi * t / period)
    path = tmp_path / "cycles.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "y"])
        w.writerows([i, f"{v:.6f}"] for i, v in enumerate(y))
    common = ["task=forecast", f"data.train={path}", "forecast.time_column=t", "forecast.input_length=12",
              "forecast.test_size=36", "forecast.val_size=24", "train.seed=0", "forecast.linear=false", *SMALL,
              *PINNED]
    scores = {}
    for norm in ("false", "true"):
        summary = api.train(C.resolve(None, [*common, f"forecast.window_norm={norm}"]), tmp_path / f"run-{norm}")
        scores[norm] = summary["metrics"]["test"]
    naive = scores["true"]["baselines"]["naive"]["rmse"]
    assert scores["true"]["rmse"] < 0.5 * scores["false"]["rmse"], scores
    assert scores["true"]["rmse"] < 0.5 * naive, (scores["true"], naive)
    saved = C.from_dict(C.load_yaml(tmp_path / "run-true" / "config.yaml"))
    assert saved.forecast.window_norm is True


def test_the_linear_path_is_a_forecasting_default_but_not_where_it_cannot_apply(tmp_path):
    """On in forecasting's defaults; off with tbptt (a stream has no window), in the built-in protocols (measured
    without it), with forecast.task_defaults=false, and when you say so; a run builds the model with it."""
    assert C.resolve(None, ["task=forecast"]).forecast.linear is True
    for sets in (["forecast.tbptt=16"], ["data.dataset=sunspots"], ["data.dataset=air_passengers"],
                 ["forecast.task_defaults=false"], ["forecast.linear=false"]):
        assert C.resolve(None, ["task=forecast", *sets]).forecast.linear is False, sets
    path, _ = write_sine(tmp_path / "sine.csv")
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=month",
                           "forecast.input_length=12", *SMALL, *PINNED])
    data = get_task("forecast").prepare(cfg)
    model = get_task("forecast").build_model(cfg, data.prep)
    assert model.ar is not None and model.ar.in_features == 12
    with pytest.raises(C.ConfigError, match="forecast.linear=false"):
        get_task("forecast").prepare(C.resolve(None, ["task=forecast", f"data.train={path}",
                                                      "forecast.time_column=month", "forecast.tbptt=16",
                                                      "forecast.linear=true", *SMALL, *PINNED]))


def test_a_test_span_at_a_level_training_never_reached_is_named_not_blamed_on_the_labels(tmp_path):
    """The held-out `heartrate` case (BENCHMARKS.md): a series that ends at a level below anything in its training
    span. The network's forecasts revert toward the levels it knows, validation (inside them) cannot show it, and
    the doctor said the labels were the suspect; it names the shift, and a stationary sine is not named."""
    path, y = write_sine(tmp_path / "sine.csv")
    shifted = tmp_path / "shifted.csv"
    rows = list(csv.reader(path.read_text().splitlines()))
    with open(shifted, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(rows[0])
        for i, (t, v) in enumerate(rows[1:]):
            out.writerow([t, f"{float(v) - (12 if i >= 216 else 0):.5f}"])  # the last 24 steps 12 lower
    found = {}
    for name, file in (("sine", path), ("shifted", shifted)):
        cfg = C.resolve(None, ["task=forecast", f"data.train={file}", "forecast.time_column=month",
                               "forecast.input_length=12", "forecast.horizon=3", "forecast.test_size=24",
                               *SMALL, "train.max_epochs=6", *PINNED])
        summary = api.train(cfg, tmp_path / name)
        found[name] = {f["code"]: f for f in json.loads((tmp_path / name / "findings.json").read_text())}
        test = summary["metrics"]["test"]
        if name == "shifted":  # the network lost to naive there: the finding explains a result, it is not a trend's
            assert test["mase"] > test["baselines"]["naive"]["mase"]
        rng = summary["data"]["out_of_range"]
        assert rng["val"]["share"] == 0
        assert rng["test"]["share"] == (0 if name == "sine" else 1)
    assert "data.out_of_range" not in found["sine"]
    finding = found["shifted"]["data.out_of_range"]
    assert finding["severity"] == "warning" and "100% of the test targets (24 of 24)" in finding["explanation"]
    assert "forecast.window_norm=true" in " ".join(finding["advice"])
    assert "labels.unpredictable" not in found["shifted"]


def test_data_column_keys_are_refused_under_forecasting_with_the_forecast_key(tmp_path):
    """A new user set data.time_column / data.id_column for a forecast: silently ignored (the file's 'time'
    column was used, or the series were mixed); now a ConfigError names the forecast key that does it."""
    from rnnkit.errors import ConfigError

    path, _ = write_sine(tmp_path / "sine.csv")
    for key, value, fix in (("data.time_column", "month", "forecast.time_column"),
                            ("data.id_column", "store", "forecast.series_column"),
                            ("data.label_column", "load", "forecast.target_columns"),
                            ("data.feature_columns", "[load]", "forecast.covariate_columns")):
        cfg = C.resolve(None, ["task=forecast", f"data.train={path}", f"{key}={value}", *SMALL, *PINNED])
        with pytest.raises(ConfigError, match=fr"{key}.*{fix}"):
            get_task("forecast").prepare(cfg)


def test_a_numeric_column_left_out_of_the_roles_is_said(tmp_path):
    path = tmp_path / "two.csv"
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "load", "temperature"])
        for i in range(120):
            w.writerow([str(np.datetime64("2000-01") + i) + "-01", f"{10 + np.sin(i / 2):.4f}",
                        f"{rng.normal():.3f}"])
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=month",
                           "forecast.target_columns=[load]", "forecast.test_size=12", *SMALL, *PINNED])
    with pytest.warns(UserWarning, match=r"'temperature'.*not used.*forecast.covariate_columns"):
        get_task("forecast").prepare(cfg)


def test_the_commented_config_says_how_forecasting_splits_and_names_its_own_keys(capsys):
    from rnnkit.cli import main

    assert main(["config", "--task", "forecast"]) == 0
    data = capsys.readouterr().out.split("\nmodel:")[0]
    assert "stratified" not in data
    val = next(line for line in data.splitlines() if line.strip().startswith("val:"))
    assert "forecast.val_size" in val
    assert "forecast.series_column" in next(line for line in data.splitlines() if "id_column:" in line)
