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
