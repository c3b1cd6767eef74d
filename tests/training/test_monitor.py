"""Issue 11, item 4: the best epoch, early stopping and plateau decay follow the family's headline validation
metric (macro-F1 for imbalanced classes, entity F1 for BIO tags, WER for seq2seq) with the loss breaking ties;
`train.monitor` sets it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.training.schedules import EarlyStopping, Monitor, PlateauState

SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "data.batch_size=16",
         "train.progress=none", "train.threads=1"]


def _epochs(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in x]


def _event(run, name):
    return next(r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("event") == name)


def _imbalanced(path, n=300, seed=0):
    """Two classes at 9:1, told apart by a sine's frequency under noise."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            k = int(i % 10 == 0)
            t = np.arange(int(rng.integers(8, 30)))
            x = np.sin((0.4 + 0.5 * k) * t)[:, None] + 0.6 * rng.standard_normal((len(t), 1))
            fh.write(json.dumps({"sequence": x.round(4).tolist(), "label": "rare" if k else "common"}) + "\n")
    return path


def test_ties_on_the_metric_go_to_the_lower_loss():
    m = Monitor("accuracy")
    es = EarlyStopping()
    es, up = es.update(m.value({"accuracy": 0.8, "loss": 0.5}), 0, m.tie({"accuracy": 0.8, "loss": 0.5}))
    assert up
    es, up = es.update(m.value({"accuracy": 0.8, "loss": 0.4}), 1, 0.4)
    assert up and es.best_epoch == 1  # same accuracy, lower loss
    es, up = es.update(m.value({"accuracy": 0.8, "loss": 0.45}), 2, 0.45)
    assert not up and es.bad_epochs == 1
    es, up = es.update(m.value({"accuracy": 0.9, "loss": 0.9}), 3, 0.9)
    assert up and es.best == -0.9  # a better accuracy wins even at a higher loss
    assert Monitor("wer").value({"wer": 0.3}) == 0.3 and Monitor("loss").tie({"loss": 1.0}) is None
    p = PlateauState()
    for loss in (0.5, 0.4, 0.3):  # accuracy flat, the loss falling: no plateau
        p = p.update(-0.8, patience=2, tie=loss)
    assert p.reductions == 0 and p.bad_epochs == 0
    p = p.update(-0.8, patience=2, tie=0.35).update(-0.8, patience=2, tie=0.36)
    assert p.reductions == 1
    assert math.isinf(EarlyStopping(**{"best": 1.0, "best_epoch": 0, "bad_epochs": 0}).best_tie)  # old checkpoints


def test_imbalanced_classes_pick_the_best_epoch_by_macro_f1(tmp_path):
    run = tmp_path / "run"
    cfg = C.resolve(None, [f"data.train={_imbalanced(tmp_path / 'd.jsonl', n=600)}", *SMALL, "train.max_epochs=8",
                           "data.val_fraction=0.2"])
    summary = api.train(cfg, run)
    assert summary["monitor"] == "macro_f1"  # 12 of the rare class in validation
    assert "imbalanced, 9:1" in _event(run, "monitor")["why"]
    epochs = _epochs(run)
    best = max(epochs, key=lambda e: (e["val_macro_f1"], -e["val_loss"]))
    assert summary["best_epoch"] == best["epoch"]
    assert summary["metrics"]["val"]["macro_f1"] == pytest.approx(best["val_macro_f1"])
    # with only 6 of the rare class in validation, macro-F1 is too coarse: the loss, and the reason says so
    small = api.train(C.resolve(None, [f"data.train={_imbalanced(tmp_path / 's.jsonl')}", *SMALL,
                                       "train.max_epochs=2", "data.val_fraction=0.2"]), tmp_path / "small")
    assert small["monitor"] == "loss"
    assert "only 6 of the rarest class" in _event(tmp_path / "small", "monitor")["why"]


def test_balanced_classes_select_on_the_loss_and_accuracy_on_request(tmp_path, numeric_jsonl):
    """Measured (BENCHMARKS.md): on small validation splits accuracy picked worse epochs than the loss."""
    run = tmp_path / "loss"
    summary = api.train(C.resolve(None, [f"data.train={numeric_jsonl}", *SMALL, "train.max_epochs=4"]), run)
    assert summary["monitor"] == "loss" and "balanced" in _event(run, "monitor")["why"]
    assert summary["best_epoch"] == min(_epochs(run), key=lambda e: e["val_loss"])["epoch"]
    run = tmp_path / "acc"
    summary = api.train(C.resolve(None, [f"data.train={numeric_jsonl}", *SMALL, "train.max_epochs=4",
                                         "train.monitor=accuracy"]), run)
    assert summary["monitor"] == "accuracy"
    best = max(_epochs(run), key=lambda e: (e["val_accuracy"], -e["val_loss"]))
    assert summary["best_epoch"] == best["epoch"]


def test_a_monitor_that_validation_does_not_report_is_named_with_the_ones_it_does(tmp_path, numeric_jsonl):
    """Checked before the first step (it used to surface after the first epoch, as a TrainingError)."""
    cfg = C.resolve(None, [f"data.train={numeric_jsonl}", *SMALL, "train.max_epochs=2", "train.monitor=f1"])
    with pytest.raises(ConfigError, match=r"'train.monitor': 'f1' is not among the validation figures \(loss, "
                                          r"accuracy, macro_f1\); set it to one of them, or auto"):
        api.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists() or '"kind": "step"' not in \
        (tmp_path / "run" / "metrics.jsonl").read_text()


def test_bio_tags_select_on_entity_f1(tmp_path):
    """A tagger on BIO entity tags: selection on entity F1 (token accuracy rewards tagging everything O)."""
    rng = np.random.default_rng(0)
    names, words = ["anna", "bob", "cara", "dan", "eve"], ["the", "a", "saw", "met", "with", "today", "went"]
    lines = []
    for _ in range(200):
        toks, tags = [], []
        for _ in range(int(rng.integers(4, 9))):
            if rng.random() < 0.15:
                toks += [str(rng.choice(names)), "smith"]
                tags += ["B-PER", "I-PER"]
            else:
                toks.append(str(rng.choice(words)))
                tags.append("O")
        lines += [f"{w}\t{t}" for w, t in zip(toks, tags, strict=True)] + [""]
    path = tmp_path / "ner.conll"
    path.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    summary = api.train(C.resolve(None, [f"data.train={path}", "task=tag", *SMALL, "train.max_epochs=3"]), run)
    assert summary["monitor"] == "entity_f1" and _event(run, "monitor")["why"] == "BIO entity tags"
    best = max(_epochs(run), key=lambda e: (e["val_entity_f1"], -e["val_loss"]))
    assert summary["best_epoch"] == best["epoch"]
    # entity tags get the CRF by default (tag.crf null): 3 tags -> a 3x3 transition matrix and start/end scores
    plain = api.train(C.resolve(None, [f"data.train={path}", "task=tag", *SMALL, "train.max_epochs=1",
                                       "tag.crf=false"]), tmp_path / "plain")
    assert summary["parameters"] - plain["parameters"] >= 9


def test_imbalanced_classes_train_on_a_logit_adjusted_loss_and_say_so(tmp_path, capsys):
    """Issue 11, item 4: what a practitioner tries first on skewed classes, by default: the logit-adjusted loss
    (logits + log class shares in training; the plain logits predict), stated in the model line."""
    import torch

    from rnnkit.cli import main
    from rnnkit.tasks import get_task

    path = _imbalanced(tmp_path / "d.jsonl")
    cfg = C.resolve(None, [f"data.train={path}", *SMALL])
    (tmp_path / "prep").mkdir()
    task = get_task("classify")
    data = task.prepare(cfg, tmp_path / "prep")
    assert data.report["class_balance"]["kind"] == "logit_adjust" and data.prep.class_counts[0] > \
        5 * data.prep.class_counts[1]
    model = task.build_model(cfg, data.prep).eval()
    batch = task.collate(data.datasets["train"].examples[:8])
    shares = torch.tensor(data.prep.class_counts, dtype=torch.float32) / sum(data.prep.class_counts)
    with torch.no_grad():
        plain, trained = task.forward(model, batch, None), task.forward(model, batch, 0)
    torch.testing.assert_close(trained - plain, shares.log().expand_as(plain))
    assert "class_log_prior" not in model.state_dict()  # the weights a checkpoint keeps are the plain model's
    # balanced data, or train.class_balance=none: no adjustment
    balanced = C.resolve(None, [f"data.train={path}", *SMALL, "train.class_balance=none"])
    assert task.build_model(balanced, data.prep).__dict__["_buffers"].get("class_log_prior") is None
    run = tmp_path / "run"
    args = [str(path), "--out", str(run),
            *[a for s in SMALL + ["train.max_epochs=2", "train.progress=plain"] for a in ("--set", s)]]
    assert main(["train", *args]) == 0
    err = capsys.readouterr().err
    assert "logit-adjusted loss (auto: classes 9:1)" in err
    # 300 rows at 9:1: 3 of the rare class in validation, too few for macro-F1
    assert "rnnkit: selection: val loss picks the best epoch and stops early (classes imbalanced 9:1, but " in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["class_balance"]["kind"] == "logit_adjust"
