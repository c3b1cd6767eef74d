"""forecast.series_embedding (issue 11, item 2): many series in long format, one global model with per-series
scaling and one learned vector per training series, through rnnkit.api and the CLI.

The data of the first test are built so that a short window cannot tell the series apart while the series
differ: every store has its own cycle length (3 to 12 days), and after the per-series z-score two noisy values of
a sine do not say which cycle they come from; the series id does."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.report import write_report
from rnnkit.tasks.forecast import ForecastPrep
from rnnkit.training.callbacks import Callback

SMALL = ["model.hidden_size=16", "model.embedding_dim=8", "data.batch_size=64", "optim.lr=1e-2",
         "train.threads=1", "train.progress=none", "train.seed=0"]
PERIODS = (3, 4, 6, 8, 12)


def write_stores(path, n_series=30, n=120, seed=0, noise=1.0, extra_series=()):
    """Daily sales of `n_series` stores in long format (day, store, sales): each store its own level (50..150),
    its own cycle length (PERIODS in turn) and phase, amplitude 10, Gaussian noise of std `noise`.
    `extra_series`: more store names, drawn the same way after the others (stores a model never saw)."""
    rng = np.random.default_rng(seed)
    names = [f"s{i:02d}" for i in range(n_series)] + list(extra_series)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["day", "store", "sales"])
        for i, name in enumerate(names):
            t = np.arange(n)
            level, phase = rng.uniform(50, 150), rng.uniform(0, 2 * np.pi)
            y = level + 10 * np.sin(2 * np.pi * t / PERIODS[i % len(PERIODS)] + phase) + noise * rng.standard_normal(n)
            for day, v in zip(t, y, strict=True):
                w.writerow([int(day), name, f"{v:.3f}"])
    return path, names


def _cfg(path, *extra):
    return C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=day",
                            "forecast.series_column=store", "forecast.input_length=2", "forecast.test_size=20",
                            "forecast.val_size=20", "forecast.auto=false", *SMALL, *extra])


def test_series_embedding_tells_apart_series_a_short_window_cannot(tmp_path):
    """Same data, seed and budget: with the embedding the validation and test MSE fall several-fold (measured:
    about 18 without, 2.3 with; the noise floor is 1), and the run says what it used."""
    path, names = write_stores(tmp_path / "stores.csv")
    runs = {on: api.train(_cfg(path, f"forecast.series_embedding={on}", "train.max_epochs=8"), tmp_path / on)
            for on in ("false", "true")}
    off, on = runs["false"]["metrics"], runs["true"]["metrics"]
    for split in ("val", "test"):
        assert on[split]["mse"] < 0.4 * off[split]["mse"], (split, on[split]["mse"], off[split]["mse"])
    # both are trained models, not a broken one against a working one: each beats the naive forecast
    naive = on["test"]["baselines"]["naive"]["mse"]
    assert off["test"]["mse"] < 0.5 * naive and on["test"]["mse"] < 0.1 * naive
    assert runs["true"]["data"]["series_embedding"] == {"series": 30, "dim": 8,
                                                        "unseen_series": "index 0, the zero vector"}
    assert "series_embedding" not in runs["false"]["data"]
    # the embedding's parameters: (30 + 1) x 8
    assert runs["true"]["parameters"] - runs["false"]["parameters"] == 31 * 8
    assert json.loads((tmp_path / "true" / "forecast.json").read_text())["series_ids"] == names
    assert "series embedding (one learned vector per training series)" in write_report(tmp_path / "true").read_text()


def test_forecast_json_round_trip_and_a_series_not_in_training(tmp_path):
    """forecast.json keeps the series order; predict and evaluate take a store the model never saw (index 0, the
    zero vector, with a warning saying so), and the learned vectors are used for the others."""
    path, names = write_stores(tmp_path / "train.csv", n_series=6, n=60)
    run = tmp_path / "run"
    api.train(_cfg(path, "forecast.series_embedding=true", "train.max_epochs=2"), run)
    prep = ForecastPrep.load(run)
    assert prep.series_ids == names and prep.series_indices() == {n: i + 1 for i, n in enumerate(names)}

    new, _ = write_stores(tmp_path / "new.csv", n_series=6, n=60, seed=1, extra_series=["brand_new"])
    out = tmp_path / "fc.csv"
    with pytest.warns(UserWarning, match="'brand_new' was not in the training data.*neutral zero vector"):
        assert api.predict(run, new, out) == 7
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["series"] for r in rows] == [*names, "brand_new"] and all(np.isfinite(float(r["forecast"])) for r in rows)
    with pytest.warns(UserWarning, match="neutral zero vector"):
        scored = api.evaluate(run, new)
    assert scored["rows"] == 7 * (60 - 2) and np.isfinite(scored["mse"])

    cfg, prep, task, model, _ = api.load_run(run, device="cpu")
    with pytest.warns(UserWarning, match="brand_new"):
        dataset, _ = task.load_inference(cfg, prep, new, False, None)
    assert [ex.extra["series_index"] for ex in dataset.examples] == [1, 2, 3, 4, 5, 6, 0]
    batch = task.collate(dataset.examples)
    assert batch.extra["series_index"].dtype == torch.int64
    with torch.no_grad():
        used = task.forward(model, batch).prediction
        neutral = model(batch.inputs, batch.lengths, batch.mask).prediction  # no index: every window unseen
    torch.testing.assert_close(used[6], neutral[6])  # index 0 adds nothing
    assert model.series_embedding.weight.shape == (7, 8) and not model.series_embedding.weight[0].any()
    assert not torch.allclose(used[:6], neutral[:6], atol=1e-5)  # the trained stores' vectors change the forecast

    # a forecast.json written before series embeddings (no series_ids) loads with none
    d = json.loads((run / "forecast.json").read_text())
    del d["series_ids"]
    (run / "forecast.json").write_text(json.dumps(d))
    assert ForecastPrep.load(run).series_ids == []


def test_series_embedding_without_series_column_is_refused_before_training(tmp_path, capsys):
    path, _ = write_stores(tmp_path / "one.csv", n_series=1, n=60)
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=day",
                           "forecast.series_embedding=true", "forecast.auto=false", *SMALL])
    with pytest.raises(ConfigError) as err:
        api.train(cfg, tmp_path / "run")
    text = str(err.value)
    assert "forecast.series_embedding=true needs forecast.series_column" in text
    assert "forecast.series_column=COLUMN" in text and "forecast.series_embedding=false" in text
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "summary.json").exists()
    # the CLI: a config error (exit status 2), said on stderr
    assert main(["train", str(path), "--task", "forecast", "--out", str(tmp_path / "cli"),
                 "--set", "forecast.time_column=day", "--set", "forecast.series_embedding=true",
                 "--set", "train.progress=none"]) == 2
    assert "forecast.series_embedding=true needs forecast.series_column" in capsys.readouterr().err
    assert not (tmp_path / "cli" / "checkpoints").exists()


def test_series_embedding_is_an_architecture_key(tmp_path, capsys):
    """Resuming with it changed, or predicting with it changed, is refused (the weights have another shape)."""
    assert C.is_architecture_key("forecast.series_embedding")
    path, _ = write_stores(tmp_path / "stores.csv", n_series=6, n=60)

    class Crash(Callback):
        def on_step_end(self, state, record):
            if state.step == 3:
                raise RuntimeError("simulated crash")

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        api.train(_cfg(path, "train.max_epochs=2", "data.batch_size=16", "train.checkpoint_every=1"), run,
                  callbacks=[Crash()])
    assert main(["train", "--resume", str(run), "--set", "forecast.series_embedding=true"]) == 3
    assert "  forecast.series_embedding: checkpoint False -> now True" in capsys.readouterr().err.splitlines()
    assert main(["train", "--resume", str(run)]) == 0  # unchanged, it resumes
    with pytest.raises(ConfigError, match="predict cannot change the model: forecast.series_embedding"):
        api.predict(run, path, tmp_path / "fc.csv", overrides=["forecast.series_embedding=true"])
    with pytest.raises(CheckpointError):  # the same error class the resume refusal above exits with
        api.train(resume=run, overrides=["forecast.series_embedding=true"])


def test_forecast_auto_runs_with_the_series_embedding(tmp_path, monkeypatch):
    """The protocol search trains its candidates with the embedding, each window carrying its series index."""
    from rnnkit.models import forecaster
    from rnnkit.tasks import _forecast_auto

    searching, seen = [False], []  # the largest series index of each batch the search's candidates read
    forward, train_and_score = forecaster.Forecaster.forward, _forecast_auto._train_and_score

    def recording(self, inputs, lengths, mask, series_index=None):
        if searching[0]:
            seen.append(-1 if self.series_embedding is None or series_index is None else int(series_index.max()))
        return forward(self, inputs, lengths, mask, series_index)

    def candidate(*args, **kwargs):
        searching[0] = True
        try:
            return train_and_score(*args, **kwargs)
        finally:
            searching[0] = False

    monkeypatch.setattr(forecaster.Forecaster, "forward", recording)
    monkeypatch.setattr(_forecast_auto, "_train_and_score", candidate)
    path, _ = write_stores(tmp_path / "stores.csv", n_series=6, n=80)
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=day",
                           "forecast.series_column=store", "forecast.test_size=10", "forecast.val_size=10",
                           "forecast.series_embedding=true", "forecast.auto_keys=[input_length]",
                           "forecast.auto_budget=1", "train.max_epochs=2", *SMALL])
    summary = api.train(cfg, tmp_path / "run")
    auto = summary["data"]["auto"]
    assert auto["tried"] >= 1 and auto["chosen"]["input_length"] in (5, 11, 24)
    assert summary["data"]["series_embedding"]["series"] == 6
    assert seen and min(seen) >= 1 and max(seen) == 6  # every candidate has the embedding; windows carry 1..6
    assert np.isfinite(summary["metrics"]["test"]["mse"])
