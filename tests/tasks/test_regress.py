"""Sequence regression (task regress) end to end: a known answer, the CLI round trip, bad targets, Covid3Month."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.datasets import get_builtin
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks import get_task

SMALL = ["model.hidden_size=16", "model.embedding_dim=8", "model.num_layers=1", "model.pooling=mean",
         "data.batch_size=16", "optim.lr=1e-2", "train.max_epochs=15", "train.threads=1", "train.progress=none"]


def _sets(overrides: list[str]) -> list[str]:
    return [a for kv in overrides for a in ("--set", kv)]


def amplitude_series(n: int = 240, seed: int = 0) -> list[tuple[np.ndarray, float, float]]:
    """Noisy sines of random length, phase, amplitude a and level b: (values (T,), a, b). The amplitude is a
    known function of the sequence (about sqrt(2) x its standard deviation), the level its mean."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(12, 31))
        a, b = rng.uniform(0.5, 3.0), rng.uniform(-1.0, 1.0)
        t = np.arange(length)
        x = a * np.sin(2 * np.pi * t / 8 + rng.uniform(0, 2 * np.pi)) + b + 0.05 * rng.standard_normal(length)
        out.append((np.round(x, 4), round(float(a), 4), round(float(b), 4)))
    return out


def write_jsonl(path, series, *, targets=("label",)):
    """One JSON object per sequence: the values under "sequence", the amplitude (and level) as the target(s)."""
    with open(path, "w") as fh:
        for x, a, b in series:
            row = {"sequence": x.tolist(), **dict(zip(targets, (a, b), strict=False))}
            fh.write(json.dumps(row) + "\n")
    return path


def write_csv(path, rows: list[dict]):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def amp_run(tmp_path_factory):
    """One tiny model trained through the CLI on 240 amplitude series (the other tests read it)."""
    root = tmp_path_factory.mktemp("amp")
    series = amplitude_series()
    data = write_jsonl(root / "amp.jsonl", series)
    run = root / "run"
    assert main(["train", str(data), "--task", "regress", "--out", str(run), *_sets(SMALL)]) == 0
    return data, run, series


def test_synthetic_amplitude_beats_the_training_mean_clearly(amp_run):
    data, run, series = amp_run
    summary = json.loads((run / "summary.json").read_text())
    test = summary["metrics"]["test"]
    base = test["baselines"]["training_mean"]
    assert set(test) >= {"loss", "mse", "rmse", "mae", "r2", "baselines"}
    assert test["rmse"] < 0.5 * base["rmse"], (test, base)
    assert test["r2"] > 0.75 and test["mae"] < base["mae"]
    assert math.isclose(test["rmse"], math.sqrt(test["mse"]))
    # the split was carved at random with the seed, and recorded; the targets' scaler was fitted on train only
    splits = json.loads((run / "splits.json").read_text())["splits"]
    assert {k: len(v) for k, v in splits.items()} == {"train": 192, "val": 24, "test": 24}
    by_id = {f"amp.jsonl:{i + 1}": a for i, (_, a, _) in enumerate(series)}
    prep = json.loads((run / "regress.json").read_text())
    assert prep["target_columns"] == ["label"]
    assert prep["target_mean"][0] == pytest.approx(np.mean([by_id[i] for i in splits["train"]]))
    assert prep["target_std"][0] == pytest.approx(np.std([by_id[i] for i in splits["train"]]))
    assert base["mean"] == pytest.approx(prep["target_mean"][0])
    test_targets = np.array([by_id[i] for i in splits["test"]])
    assert base["rmse"] == pytest.approx(float(np.sqrt(np.mean((test_targets - base["mean"]) ** 2))))


def test_predict_and_evaluate_round_trip_through_the_cli(amp_run, tmp_path, capsys):
    data, run, series = amp_run
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(data), "--output", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 240 predictions to {out}\n"
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert list(rows[0]) == ["id", "file", "line", "prediction"]
    assert [r["line"] for r in rows[:3]] == ["1", "2", "3"] and rows[0]["id"] == "amp.jsonl:1"
    pred = np.array([float(r["prediction"]) for r in rows])
    truth = np.array([a for _, a, _ in series])
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.5 * truth.std()  # in the targets' own units
    # a file without targets predicts as well (targets are not needed for predict)
    bare = tmp_path / "bare.jsonl"
    bare.write_text("".join(json.dumps({"sequence": x.tolist()}) + "\n" for x, _, _ in series[:5]))
    assert main(["predict", str(run), "--data", str(bare), "--output", str(tmp_path / "bare.csv")]) == 0
    bare_rows = list(csv.DictReader((tmp_path / "bare.csv").read_text().splitlines()))
    assert [float(r["prediction"]) for r in bare_rows] == pytest.approx(pred[:5], abs=1e-6)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] == 240 and set(scored) >= {"loss", "mse", "rmse", "mae", "r2"}
    assert scored["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - truth) ** 2))), rel=1e-4)
    # and the training mean's figures on the same rows, to hold the model against
    mean = scored["baselines"]["training_mean"]
    assert mean["rmse"] == pytest.approx(float(np.sqrt(np.mean((mean["mean"] - truth) ** 2))), rel=1e-4)
    assert scored["rmse"] < 0.5 * mean["rmse"]


def test_the_doctor_and_the_report_use_the_familys_hooks(amp_run):
    from rnnkit.doctor import diagnose
    from rnnkit.report import write_report

    _, run, _ = amp_run
    checks = {c.item: c for c in diagnose(run).checklist}
    sensible = checks["Predictions sensible?"]
    assert sensible.verdict == "pass" and "training mean baseline" in sensible.detail
    assert checks["Shapes match expectations?"].verdict == "pass"
    assert checks["Loss reasonable magnitude?"].verdict == "pass"
    html = write_report(run).read_text()
    assert "test baseline: training_mean" in html and "z-scored targets" in html and "pooling mean" in html


def test_hooks():
    task = get_task("regress")
    assert task.baseline == ("rmse", "training_mean", False) and task.metric_names[0] == "rmse"
    assert task.headline_score({"r2": 0.8, "mse": 2.0}) == 0.8 and task.uses_pooling
    assert task.estimator.name == "SequenceRegressor"
    assert task.chance_loss(None) == 1.0
    cfg = C.resolve(None, ["task=regress", "regress.target_columns=[amp, level]"])
    assert task.describe_model(cfg) == "; linear output for 2 target(s) (amp, level), MSE on z-scored targets"
    assert C.is_architecture_key("regress.target_columns")
    assert "regress:\n  target_columns: null" in C.commented_default("regress")
    assert get_builtin("covid3month").task == "regress"


def test_metrics_by_hand():
    from rnnkit.tasks.regress import regression_metrics

    true = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    pred = np.array([[1.0, 12.0], [2.0, 18.0], [4.0, 30.0]])
    m = regression_metrics(pred, true)
    assert m["mse"] == pytest.approx((0 + 4 + 0 + 4 + 1 + 0) / 6)
    assert m["rmse"] == pytest.approx(math.sqrt(9 / 6)) and m["mae"] == pytest.approx(5 / 6)
    assert m["r2"] == pytest.approx(((1 - 1 / 2) + (1 - 8 / 200)) / 2)  # per target, then averaged
    assert math.isnan(regression_metrics(np.zeros((2, 1)), np.ones((2, 1)))["r2"])  # constant truth: undefined


def test_random_split_is_seeded_and_keeps_every_split_non_empty():
    from rnnkit.data.records import Record
    from rnnkit.tasks.regress import random_split

    recs = [Record(f"f:{i}", "f", i) for i in range(1, 51)]
    a = random_split(recs, fractions={"val": 0.1, "test": 0.2}, seed=3)
    b = random_split(recs, fractions={"val": 0.1, "test": 0.2}, seed=3)
    assert [[r.id for r in v] for v in a.values()] == [[r.id for r in v] for v in b.values()]
    assert {k: len(v) for k, v in a.items()} == {"train": 35, "val": 5, "test": 10}
    assert [r.line for r in a["val"]] == sorted(r.line for r in a["val"])  # file order kept
    tiny = random_split(recs[:2], fractions={"val": 0.1, "test": 0.1}, seed=0)
    assert len(tiny["train"]) == 1 and len(tiny["val"]) + len(tiny["test"]) == 1


def test_several_targets_from_csv_long_format(tmp_path, capsys):
    """Long format (one row per step), two targets constant within each sequence: prediction_<name> columns."""
    rows = []
    for i, (x, a, b) in enumerate(amplitude_series(n=60, seed=1)):
        rows += [{"id": f"s{i}", "t": t, "x": v, "amp": a, "level": b} for t, v in enumerate(x)]
    data = write_csv(tmp_path / "long.csv", rows)
    run = tmp_path / "run"
    overrides = [*SMALL, "train.max_epochs=2", "data.id_column=id", "data.time_column=t",
                 "regress.target_columns=[amp, level]"]
    assert main(["train", str(data), "--task", "regress", "--out", str(run), *_sets(overrides)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["target_columns"] == ["amp", "level"]
    assert set(summary["metrics"]["test"]["baselines"]["training_mean"]["mean"]) == {"amp", "level"}
    prep = json.loads((run / "regress.json").read_text())
    assert prep["num_features"] == 1  # x only: the other target column is not an input channel
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(data), "--output", str(out)]) == 0
    pred = list(csv.DictReader(out.read_text().splitlines()))
    assert list(pred[0]) == ["id", "file", "line", "prediction_amp", "prediction_level"] and len(pred) == 60
    first_length = len(amplitude_series(n=60, seed=1)[0][0])
    assert pred[0]["id"] == "long.csv:s0" and pred[1]["line"] == str(2 + first_length)  # each sequence's first row


def test_a_bad_target_stops_training_with_exit_2_naming_the_row(tmp_path, capsys):
    series = amplitude_series(n=40)
    rows = [{"sequence": json.dumps(x.tolist()), "label": a} for x, a, _ in series]
    rows[4]["label"] = "abc"  # line 6 (line 1 is the header)
    rows[6]["label"] = "nan"
    rows[7]["label"] = "inf"
    rows[9]["label"] = "0,5"
    data = write_csv(tmp_path / "train.csv", rows)
    run = tmp_path / "run"
    assert main(["train", str(data), "--task", "regress", "--out", str(run), *_sets(SMALL)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:6 column 'label': value 'abc': a regression target must be a number. Fix: write" in err
    assert f"{data}:8 column 'label': value 'nan': a regression target must be a finite number" in err
    assert f"{data}:9 column 'label': value 'inf'" in err
    assert f"{data}:11 column 'label': value '0,5'" in err and "decimal separator as a point" in err
    assert "--bad-rows skip" in err
    assert not (run / "summary.json").exists() and not (run / "checkpoints").exists()
    # --bad-rows skip leaves them out, each in rejects.jsonl with its raw row
    overrides = [*SMALL, "train.max_epochs=1", "data.max_bad_fraction=0.2"]
    assert main(["train", str(data), "--task", "regress", "--out", str(tmp_path / "skip"), "--bad-rows", "skip",
                 *_sets(overrides)]) == 0
    rejects = [json.loads(line) for line in (tmp_path / "skip" / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [6, 8, 9, 11] and rejects[0]["raw"].rstrip().endswith(",abc")
    assert rejects[0]["problems"][0]["column"] == "label"


def test_bad_targets_in_jsonl_long_format_and_evaluate(amp_run, tmp_path):
    from rnnkit.tasks.regress import TASK

    _, run, series = amp_run
    lines = [json.dumps({"sequence": x.tolist(), "label": a}) for x, a, _ in series[:20]]
    lines[2] = json.dumps({"sequence": series[2][0].tolist(), "label": True})
    lines[3] = json.dumps({"sequence": series[3][0].tolist(), "label": "1e999"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        api.evaluate(run, bad)
    assert [(p.line, p.column, p.value) for p in err.value.problems] == [(3, "label", "True"), (4, "label", "1e999")]
    # evaluate through the CLI: exit 2 as well
    assert main(["evaluate", str(run), "--data", str(bad)]) == 2
    # long format: a target that changes within a sequence
    steps = [("a", 1, 0.5, 1.0), ("a", 2, 0.1, 1.0), ("b", 1, 0.2, 2.0), ("b", 2, 0.3, "x")]
    long = write_csv(tmp_path / "long.csv", [dict(zip(("id", "t", "x", "y"), s, strict=True)) for s in steps])
    cfg = C.resolve(None, ["task=regress", f"data.train={long}", "data.id_column=id", "data.time_column=t",
                           "data.label_column=y"])
    with pytest.raises(DataError) as err:
        TASK.prepare(cfg)
    assert any(p.line == 5 and p.column == "y" for p in err.value.problems)


def test_ts_files_regression_header_bad_target_and_a_classification_file(tmp_path):
    from rnnkit.tasks.regress import TASK

    head = "@problemName toy\n@univariate true\n@equalLength true\n@seriesLength 4\n@targetLabel true\n@data\n"
    cases = [f"{i},{i + 1},{i + 2},{i + 3}:{i * 0.5}" for i in range(30)]
    good = tmp_path / "good.ts"
    good.write_text(head + "\n".join(cases) + "\n")
    cfg = C.resolve(None, ["task=regress", f"data.train={good}"])
    data = TASK.prepare(cfg)
    assert sum(data.report["sizes"].values()) == 30 and data.prep.num_features == 1
    assert data.prep.target_mean[0] == pytest.approx(np.mean([ex.extra["y"][0] for ex in data.datasets["train"]]))
    cases[4] = "1,2,3,4:abc"
    bad = tmp_path / "bad.ts"
    bad.write_text(head + "\n".join(cases) + "\n")
    with pytest.raises(DataError) as err:
        TASK.prepare(C.resolve(None, ["task=regress", f"data.train={bad}"]))
    assert [(p.file, p.line, p.value) for p in err.value.problems] == [(str(bad), 11, "abc")]
    klass = tmp_path / "classes.ts"
    klass.write_text(head.replace("@targetLabel true", "@classLabel true a b") + "1,2,3,4:a\n2,3,4,5:b\n")
    with pytest.raises(DataError, match="classification .ts file"):
        TASK.prepare(C.resolve(None, ["task=regress", f"data.train={klass}"]))
    with pytest.raises(ConfigError, match="one target per case"):
        TASK.prepare(C.resolve(None, ["task=regress", f"data.train={good}", "regress.target_columns=[a, b]"]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_regression_ts_file_trained_as_classify_names_task_regress_before_training(tmp_path, capsys, split):
    """A new user's regression .ts file (@targetLabel true) and no --task: it was a 110-class classifier that
    trained and exited 0, or with --test, one 'label not seen' error per case; now the header's line and the
    fix are named, and nothing is trained."""
    head = "@problemName toy\n@univariate true\n@equalLength true\n@seriesLength 4\n@targetLabel true\n@data\n"
    rng = np.random.default_rng(0)
    reg = tmp_path / "reg.ts"
    reg.write_text(head + "".join(f"{i},{i + 1},{i + 2},{i + 3}:{rng.uniform(0, 9):.3f}\n" for i in range(60)))
    classes = tmp_path / "classes.ts"
    classes.write_text(head.replace("@targetLabel true", "@classLabel true a b")
                       + "".join(f"{i},{i + 1},{i + 2},{i + 3}:{'ab'[i % 2]}\n" for i in range(60)))
    train, test = (reg, classes) if split == "train" else (classes, reg)
    run = tmp_path / "run"
    code = main(["train", str(train), "--test", str(test), "--out", str(run), *_sets(SMALL)])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{reg}:5" in err and "@targetLabel true" in err and "--task regress" in err
    assert "label not seen" not in err and "Traceback" not in err
    assert not (run / "checkpoints").exists()


def test_evaluating_a_classifier_on_a_regression_ts_file_names_task_regress(tmp_path, capsys):
    """`rnnkit evaluate RUN reg.ts` for a classifier: the train-time refusal (the header's line, --task regress),
    not one 'label not seen' line per case."""
    head = "@problemName toy\n@univariate true\n@equalLength true\n@seriesLength 4\n@targetLabel true\n@data\n"
    reg = tmp_path / "reg.ts"
    reg.write_text(head + "".join(f"{i},{i + 1},{i + 2},{i + 3}:{i * 0.37:.3f}\n" for i in range(40)))
    classes = tmp_path / "classes.ts"
    classes.write_text(head.replace("@targetLabel true", "@classLabel true a b")
                       + "".join(f"{i},{i + 1},{i + 2},{i + 3}:{'ab'[i % 2]}\n" for i in range(60)))
    run = tmp_path / "run"
    assert main(["train", str(classes), "--out", str(run), *_sets(SMALL)]) == 0
    capsys.readouterr()
    code = main(["evaluate", str(run), "--data", str(reg)])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{reg}:5" in err and "@targetLabel true" in err and "--task regress" in err
    assert "label not seen" not in err and "Traceback" not in err


def test_a_constant_target_or_a_missing_target_column_is_a_data_error(tmp_path):
    from rnnkit.tasks.regress import TASK

    rows = [{"sequence": json.dumps(x.tolist()), "label": 1.5, "other": a} for x, a, _ in amplitude_series(n=30)]
    data = write_csv(tmp_path / "flat.csv", rows)
    with pytest.raises(DataError, match="nothing to learn"):
        TASK.prepare(C.resolve(None, ["task=regress", f"data.train={data}"]))
    with pytest.raises(DataError, match="target column not found") as err:
        TASK.prepare(C.resolve(None, ["task=regress", f"data.train={data}", "regress.target_columns=[other, otter]"]))
    assert err.value.problems[0].column == "otter"


def test_text_input_and_the_estimator(tmp_path):
    """Text sequences work too (target: the share of 'up' tokens); the estimator scores R^2 and predicts JSONL."""
    from rnnkit.estimator import Estimator

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(80):
        words = rng.choice(["up", "down", "flat"], size=int(rng.integers(3, 12))).tolist()
        rows.append({"text": " ".join(words), "label": words.count("up") / len(words)})
    data = write_csv(tmp_path / "words.csv", rows)
    est = Estimator(task="regress", model__hidden_size=8, model__embedding_dim=8, model__num_layers=1,
                    train__max_epochs=2, train__threads=1).fit(train=str(data))
    assert json.loads((est.run_dir_ / "regress.json").read_text())["kind"] == "text"
    r2 = est.score(data=str(data))
    assert r2 == pytest.approx(api.evaluate(est.run_dir_, data)["r2"]) and r2 <= 1.0
    pred = est.predict(data=str(data))  # Estimator(task="regress") is a SequenceRegressor: floats, one per row
    assert pred.shape == (80,) and pred.dtype == float and np.isfinite(pred).all()
    assert type(est).__name__ == "Estimator" and est._kind() == "regressor"


@pytest.mark.skipif(not get_builtin("covid3month").installed(), reason="sktime's Covid3Month files are not installed")
def test_covid3month_short_run_reports_rmse_and_the_training_mean(tmp_path, capsys):
    run = tmp_path / "run"
    overrides = ["train.max_epochs=1", "model.hidden_size=16", "model.embedding_dim=8", "model.num_layers=1",
                 "train.threads=1", "train.progress=none"]
    assert main(["train", "--dataset", "covid3month", "--out", str(run), *_sets(overrides)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("done: test ") and " rmse " in out and "baseline training_mean: " in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "regress" and summary["data"]["sizes"] == {"train": 126, "test": 61, "val": 14}
    test = summary["metrics"]["test"]
    assert math.isfinite(test["rmse"]) and test["rmse"] > 0
    assert test["baselines"]["training_mean"]["rmse"] == pytest.approx(0.0447, abs=5e-4)
    assert "training mean" in summary["data"]["reference"]


def test_rejected_targets_raw_text_is_read_in_chunks_not_the_whole_table(tmp_path, monkeypatch):
    """Bad targets in a long-format file and in numeric rows, under --bad-rows skip: rejects.jsonl holds each
    rejected record's raw text (all the rows of a sequence, in file order), found by reading the file again in
    chunks, never as one whole table."""
    from rnnkit.data import tables
    from rnnkit.tasks import regress

    rng = np.random.default_rng(0)
    steps = [{"id": f"s{s}", "t": t, "x": f"{rng.normal():.3f}", "y": f"{s * 0.1:.1f}"}
             for t in range(6) for s in range(40)]  # the sequences' rows interleaved
    for t in range(6):  # sequence s7: a target that is not a number (the same on every row)
        steps[t * 40 + 7]["y"] = "abc"
    long = write_csv(tmp_path / "long.csv", steps)
    rows = [{"sequence": json.dumps([[float(v)] for v in rng.normal(size=5).round(3)]), "label": f"{i * 0.5}"}
            for i in range(40)]
    rows[9]["label"] = "n/a"
    numeric = write_csv(tmp_path / "rows.csv", rows)

    def whole_table(*args, **kwargs):
        raise AssertionError("the whole table was loaded for the rejects' raw text")

    monkeypatch.setattr(regress, "load_table", whole_table)
    monkeypatch.setattr(tables, "load_table", whole_table)
    for data, extra, line, raw in [
        (long, ["data.id_column=id", "data.time_column=t", "data.label_column=y"], 9,
         "".join(f"s7,{t},{steps[t * 40 + 7]['x']},abc\r\n" for t in range(6))),
        (numeric, [], 11, '"' + rows[9]["sequence"] + '",n/a\r\n'),
    ]:
        out = tmp_path / data.stem
        cfg = C.resolve(None, ["task=regress", f"data.train={data}", "data.bad_rows=skip",
                               "data.max_bad_fraction=0.1", *extra])
        regress.TASK.prepare(cfg, out)
        rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
        assert [(r["line"], r["raw"]) for r in rejects] == [(line, raw)], rejects


def test_a_bad_target_read_from_a_pipe_is_skipped_with_its_raw_text(tmp_path):
    """A training file read from a pipe (`rnnkit train /dev/stdin`) can be read once: a bad target under
    --bad-rows skip is rejected with the row as it was read, not a second read of the drained pipe (which failed
    with 'the file is empty')."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    rows = [{"sequence": json.dumps([[float(v)] for v in rng.normal(size=5).round(3)]), "label": f"{i * 0.5}"}
            for i in range(60)]
    rows[9]["label"] = "n/a"
    data = write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", "train", "/dev/stdin", "--task", "regress", "--out", str(out),
         "--set", "data.format=csv", "--set", "data.bad_rows=skip", "--set", "data.max_bad_fraction=0.1",
         "--set", "train.max_epochs=1", "--set", "train.progress=none", "--set", "train.threads=1",
         "--set", "model.hidden_size=8"],
        input=data.read_bytes(), capture_output=True, timeout=300)  # a pipe, not the file
    assert done.returncode == 0, done.stderr.decode()
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["raw"], r["problems"][0]["value"]) for r in rejects] == [
        (11, '"' + rows[9]["sequence"] + '",n/a\r\n', "n/a")]
    # two targets from a pipe: the second target's cells come from the one read too (a KeyError before), and a
    # target column the file lacks is named before training
    for row in rows:
        row["level"] = "1.5" if row["label"] == "n/a" else f"{float(row['label']) * 2:.2f}"
    two = write_csv(tmp_path / "two.csv", rows)
    for targets, code in (("[label, level]", 0), ("[label, levle]", 2)):
        done = subprocess.run(
            [sys.executable, "-m", "rnnkit.cli", "train", "/dev/stdin", "--task", "regress",
             "--out", str(tmp_path / f"two{code}"), "--set", "data.format=csv", "--set", "data.bad_rows=skip",
             "--set", "data.max_bad_fraction=0.1", "--set", f"regress.target_columns={targets}", "--set",
             "train.max_epochs=1", "--set", "train.progress=none", "--set", "train.threads=1", "--set",
             "model.hidden_size=8"], input=two.read_bytes(), capture_output=True, timeout=300)
        assert done.returncode == code, done.stderr.decode()
        if code:
            assert "'levle'" in done.stderr.decode() and "target column not found" in done.stderr.decode()
            assert "Traceback" not in done.stderr.decode()
        else:
            summary = json.loads((tmp_path / "two0" / "summary.json").read_text())
            assert set(summary["metrics"]["test"]["baselines"]["training_mean"]["mean"]) == {"label", "level"}


def test_numeric_labels_trained_as_classes_draw_a_warning_naming_task_regress(tmp_path):
    """A new user's CSV with a numeric target and no --task: 246 classes from 289 rows, test accuracy 0, and no
    word; now a warning before training says the labels are numbers and names --task regress."""
    rows = [{"sequence": json.dumps(x.tolist()), "label": round(a, 1)} for x, a, _ in amplitude_series(n=300)]
    data = write_csv(tmp_path / "amp.csv", rows)  # 26 values of 0.1 steps: each seen several times
    cfg = C.resolve(None, [f"data.train={data}", "train.progress=none"])
    with pytest.warns(UserWarning, match=r"label column 'label' holds numbers.*--task regress"):
        get_task("classify").prepare(cfg)
    # a few numeric class codes (0/1/2) are classes: no warning
    rows = [{"sequence": json.dumps(x.tolist()), "label": i % 3} for i, (x, _, _) in enumerate(amplitude_series(n=120))]
    data = write_csv(tmp_path / "codes.csv", rows)
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        get_task("classify").prepare(C.resolve(None, [f"data.train={data}", "train.progress=none"]))
    assert not [w for w in seen if "holds numbers" in str(w.message)]
