"""Issue 14, item 1 (fixed costs): the final scoring of the training split reads a seeded sample of
train.train_eval_rows rows when the split is larger; validation and test are scored whole; summary.json and the
report say so; null scores every row."""

from __future__ import annotations

import importlib.util

import pytest

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.training.evaluation import evaluate
from rnnkit.training.precision import resolve_precision
from rnnkit.training.setup import train_eval_sample

TINY = ["model.hidden_size=8", "model.embedding_dim=8", "model.num_layers=1", "train.max_epochs=2",
        "train.threads=1", "train.progress=none", "train.probe_every=0"]


def test_the_sample_is_seeded_sorted_and_only_taken_above_the_limit():
    whole = train_eval_sample(50, 100, 0)
    assert whole == {"rows": 50, "of": 50, "sampled": False, "indices": list(range(50))}
    assert train_eval_sample(50, None, 0)["sampled"] is False
    a, b, c = train_eval_sample(500, 100, 0), train_eval_sample(500, 100, 0), train_eval_sample(500, 100, 1)
    assert a == b and a["indices"] != c["indices"]
    assert a["rows"] == 100 and a["of"] == 500 and a["sampled"]
    assert a["indices"] == sorted(set(a["indices"])) and len(a["indices"]) == 100 and a["indices"][-1] < 500


def test_a_large_training_split_is_scored_on_its_sample_and_the_run_says_so(tmp_path):
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=300)
    run = tmp_path / "run"
    summary = api.train(C.resolve(None, [f"data.train={data}", *TINY, "train.train_eval_rows=60"]), run)
    n_train = summary["data"]["sizes"]["train"]
    assert n_train > 60
    assert summary["train_eval"] == {"rows": 60, "of": n_train, "sampled": True}
    # the train figures are those of the trained model on exactly the sampled rows; val is scored whole
    cfg, prep, task, model, dev = api.load_run(run)
    from rnnkit.data.pipeline import prepare_data

    train = prepare_data(cfg).datasets["train"]
    picked = train_eval_sample(len(train), 60, cfg.train.seed)["indices"]
    fp32 = resolve_precision("fp32", dev)
    sampled, _ = evaluate(model, SequenceDataset([train.examples[i] for i in picked]), task, prep, cfg, device=dev,
                          precision=fp32)
    whole, _ = evaluate(model, train, task, prep, cfg, device=dev, precision=fp32)
    assert summary["metrics"]["train"]["loss"] == pytest.approx(sampled["loss"], rel=1e-6)
    assert sampled["loss"] != pytest.approx(whole["loss"], rel=1e-9)
    if importlib.util.find_spec("matplotlib") is not None:
        from rnnkit.report import write_report

        assert f"train (a sample of 60 of {n_train:,} rows)" in write_report(run).read_text(encoding="utf-8")


def test_null_scores_every_training_row(tmp_path):
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=120)
    summary = api.train(C.resolve(None, [f"data.train={data}", *TINY, "train.train_eval_rows=null"]), tmp_path / "r")
    n = summary["data"]["sizes"]["train"]
    assert summary["train_eval"] == {"rows": n, "of": n, "sampled": False}
    with pytest.raises(Exception, match="train_eval_rows"):
        C.resolve(None, ["train.train_eval_rows=0"])


def test_the_validation_split_is_scored_once_per_epoch_and_not_again_at_the_end(tmp_path, monkeypatch):
    """The best checkpoint's weights are the ones validated at its epoch: the final scoring reuses those figures
    (one evaluation of the validation split fewer), and they equal a fresh evaluation of the restored weights."""
    import json

    from rnnkit.training import setup

    calls = []
    real = setup.evaluate

    def counting(model, dataset, *args, **kwargs):
        calls.append(len(dataset))
        return real(model, dataset, *args, **kwargs)

    monkeypatch.setattr(setup, "evaluate", counting)
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=300)
    run = tmp_path / "run"
    summary = api.train(C.resolve(None, [f"data.train={data}", *TINY, "train.max_epochs=3",
                                         "train.min_epoch_steps=1"]), run)
    sizes = summary["data"]["sizes"]
    assert summary["epochs_run"] == 3
    # three validations (one per epoch), then the training sample and the test split only
    assert calls == [sizes["val"]] * 3 + [sizes["train"], sizes["test"]]
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    best = [r for r in epochs if r.get("kind") == "epoch"][summary["best_epoch"] - 1]
    assert summary["metrics"]["val"]["loss"] == best["val_loss"]
    assert summary["metrics"]["val"]["accuracy"] == best["val_accuracy"]
    monkeypatch.setattr(setup, "evaluate", real)
    cfg, prep, task, model, dev = api.load_run(run)
    from rnnkit.data.pipeline import prepare_data

    prepared = prepare_data(cfg)
    fresh, _ = evaluate(model, prepared.datasets["val"], task, prep, cfg, device=dev,
                        precision=resolve_precision("fp32", dev))
    assert fresh["loss"] == pytest.approx(summary["metrics"]["val"]["loss"], rel=1e-6)
    assert fresh["accuracy"] == summary["metrics"]["val"]["accuracy"]
    # the validation split has its trivial baseline too (the doctor compares it): the training majority's share
    import numpy as np

    majority = np.bincount(prepared.datasets["train"].scalar_targets()).argmax()
    share = float((prepared.datasets["val"].scalar_targets() == majority).mean())
    assert summary["metrics"]["val"]["baselines"]["majority_class"]["accuracy"] == pytest.approx(share)


def test_figures_of_a_step_this_session_did_not_validate_are_not_reused():
    from rnnkit.training.loop import LoopState
    from rnnkit.training.setup import ValidatedWeights

    memo = ValidatedWeights()
    validate = memo.wrap(lambda model: {"loss": 0.5, "per_class": {"a": 1}})
    state = LoopState()
    state.step = 40
    validate(None)
    memo.on_epoch_end(state, {"improved": True})
    state.step = 80
    memo.on_epoch_end(state, {"improved": True})  # an epoch end without a validation in this session: nothing kept
    state.step = 120
    validate(None)
    memo.on_epoch_end(state, {"improved": False})  # not the best: never the restored weights
    assert memo.at(40) == {"loss": 0.5, "per_class": {"a": 1}}
    assert memo.at(80) is None and memo.at(120) is None and memo.at(20) is None and memo.at(None) is None
    memo.at(40)["per_class"]["a"] = 2  # a copy: the summary may be changed without changing the record
    assert memo.at(40)["per_class"]["a"] == 1


def test_a_task_whose_baselines_take_no_split_keeps_its_test_baselines(tmp_path, monkeypatch):
    """A family written before `baselines(data, cfg, split)` (a plugin's two-argument function) still gets its
    test baselines, and no validation ones, instead of a TypeError after the whole run."""
    import dataclasses

    import rnnkit.tasks.classify as classify

    task = classify.TASK
    monkeypatch.setattr(classify, "TASK", dataclasses.replace(task, baselines=lambda data, cfg: task.baselines(data,
                                                                                                              cfg)))
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=120)
    summary = api.train(C.resolve(None, [f"data.train={data}", *TINY]), tmp_path / "r")
    assert "majority_class" in summary["metrics"]["test"]["baselines"]
    assert "baselines" not in summary["metrics"]["val"]
