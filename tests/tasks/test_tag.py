"""Sequence labeling end to end through the public API: synthetic tasks with known answers, a slice of the
real Turkish treebank, predict output, entity-level metrics."""

from __future__ import annotations

import json
import random

import pytest

from rnnkit import api, cli
from rnnkit import config as C
from rnnkit.data.conll import read_tagged
from rnnkit.data.datasets import get_builtin, list_builtins
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.tag import detect_scheme, entity_scores, entity_spans, prepare

TINY = ["task=tag", "model.hidden_size=24", "model.embedding_dim=16", "model.num_layers=1", "tag.char_dim=8",
        "train.progress=none", "train.threads=1", "data.batch_size=16"]


def names_task(path, n=300, seed=0):
    """BIO person names: a name token after a name is I-PER, else B-PER; other words O (needs left context)."""
    rng = random.Random(seed)
    names, words = [f"N{i}" for i in range(8)], [f"w{i}" for i in range(15)]
    with open(path, "w") as fh:
        for _ in range(n):
            tokens = [rng.choice(names if rng.random() < 0.35 else words) for _ in range(rng.randint(3, 10))]
            tags = [("I-PER" if i and tokens[i - 1][0] == "N" else "B-PER") if t[0] == "N" else "O"
                    for i, t in enumerate(tokens)]
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    return path


@pytest.fixture(scope="module")
def treebank_slice(tmp_path_factory):
    """The first 300 sentences of the real web treebank (package files, read directly)."""
    web = get_builtin("turkish_treebanks").files()["web"]
    blocks = web.read_text(encoding="utf-8").split("\n\n")[:300]
    path = tmp_path_factory.mktemp("tb") / "web300.conllu"
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("crf", [False, True])
def test_synthetic_bio_task_is_learned(tmp_path, crf):
    train = names_task(tmp_path / "names.jsonl")
    cfg = C.resolve(None, [*TINY, f"data.train={train}", "train.max_epochs=12", "optim.lr=1e-2",
                           f"tag.crf={str(crf).lower()}"])
    summary = api.train(cfg, tmp_path / "run")
    test = summary["metrics"]["test"]
    assert test["accuracy"] > 0.97 and test["entity_f1"] > 0.95
    assert {"macro_f1", "entity_precision", "entity_recall", "baselines"} <= set(test)
    # a word-only baseline cannot tell B-PER from I-PER: the model must beat it on entities
    assert test["entity_f1"] > test["baselines"]["most_frequent_tag"]["entity_f1"] + 0.1
    assert summary["data"]["scheme"] == "bio"


def test_treebank_slice_trains_and_predicts_aligned_conll(tmp_path, treebank_slice):
    cfg = C.resolve(None, [*TINY, f"data.train={treebank_slice}", "train.max_epochs=3", "optim.lr=5e-3"])
    summary = api.train(cfg, tmp_path / "run")
    test = summary["metrics"]["test"]
    assert test["accuracy"] > 0.5  # 14 UPOS tags: chance is far lower; the run learned something
    assert 0 < test["baselines"]["most_frequent_tag"]["accuracy"] < 1
    assert summary["data"]["scheme"] == "none" and "entity_f1" not in test
    assert summary["data"]["sizes"]["train"] == 240  # 300 sentences, 10% val and 10% test carved, seeded
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "vocab.json", "labels.json", "chars.json",
                 "splits.json"):
        assert (tmp_path / "run" / name).exists(), name

    out = tmp_path / "pred.conll"
    n = api.predict(tmp_path / "run", treebank_slice, out)
    source = read_tagged(treebank_slice).records
    lines = out.read_text(encoding="utf-8").split("\n")
    assert n == 300 and lines.count("") == 301  # one blank line after each sentence (+ the final newline)
    written = read_tagged(out, format="conll", conll_column=2)  # token, predicted tag, gold tag
    assert [r.tokens for r in written.records] == [r.tokens for r in source]
    gold = read_tagged(out, format="conll")  # the last column is the gold tag
    assert [r.extra["tags"] for r in gold.records] == [r.extra["tags"] for r in source]
    tags = set(json.loads((tmp_path / "run" / "labels.json").read_text())["labels"])
    assert {t for r in written.records for t in r.extra["tags"]} <= tags
    # evaluate on the same file gives the loss and the task's metrics
    scores = api.evaluate(tmp_path / "run", treebank_slice)
    assert scores["rows"] == 300 and 0 < scores["accuracy"] <= 1


def test_predict_without_gold_tags(tmp_path):
    train = names_task(tmp_path / "names.jsonl", n=120)
    cfg = C.resolve(None, [*TINY, f"data.train={train}", "train.max_epochs=1"])
    api.train(cfg, tmp_path / "run")
    raw = tmp_path / "new.txt"
    raw.write_text("N1\nN2\nw3\n\nw1\n")  # one token per line, no tags
    api.predict(tmp_path / "run", raw, tmp_path / "p.conll")
    rows = [line.split("\t") for line in (tmp_path / "p.conll").read_text().split("\n")]
    assert [r[0] for r in rows] == ["N1", "N2", "w3", "", "w1", "", ""]
    assert all(len(r) == 2 for r in rows if r[0])


def test_builtin_uses_the_package_split(tmp_path):
    assert get_builtin("turkish_treebanks").installed()
    row = next(r for r in list_builtins() if r["name"] == "turkish_treebanks")
    assert row["task"] == "tag" and row["installed"]
    cfg = C.resolve(None, ["task=tag", "data.dataset=turkish_treebanks"])
    data = prepare(cfg)
    # 2,541 web + 2,310 wiki sentences; index % 10 within each file: 8/10 train, 1/10 dev, 1/10 test
    assert data.report["sizes"] == {"train": 2033 + 1848, "val": 254 + 231, "test": 254 + 231}
    assert len(data.prep.labels) == 14 and "NOUN" in data.prep.labels.labels
    with pytest.raises(ConfigError, match="not 'tag'"):
        prepare(C.resolve(None, ["task=tag", "data.dataset=japanese_vowels"]))


def test_unseen_tag_on_evaluate_names_the_line(tmp_path):
    train = names_task(tmp_path / "names.jsonl", n=120)
    api.train(C.resolve(None, [*TINY, f"data.train={train}", "train.max_epochs=1"]), tmp_path / "run")
    bad = tmp_path / "bad.conll"
    bad.write_text("N1\tB-PER\nw1\tB-LOC\n")
    with pytest.raises(DataError, match=f"{bad}:2"):
        api.evaluate(tmp_path / "run", bad)


def test_entity_spans_hand_made():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC")}
    assert entity_spans(["I-PER", "I-PER", "O"]) == {(0, 2, "PER")}  # I- after O starts an entity (conlleval)
    assert entity_spans(["B-PER", "I-LOC"]) == {(0, 1, "PER"), (1, 2, "LOC")}  # type change splits
    assert entity_spans(["B-PER", "B-PER"]) == {(0, 1, "PER"), (1, 2, "PER")}
    assert entity_spans(["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]) == {(0, 1, "PER"), (1, 4, "LOC"), (4, 5, "LOC")}
    assert entity_spans(["B-ORG", "E-ORG", "I-ORG"]) == {(0, 2, "ORG"), (2, 3, "ORG")}  # E- closes
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG"]]  # PER span too short: 2 of 3 predicted right
    s = entity_scores(pred, gold)
    assert s["entity_precision"] == pytest.approx(2 / 3) and s["entity_recall"] == pytest.approx(2 / 3)
    assert s["entity_f1"] == pytest.approx(2 / 3)
    assert entity_scores([["O"]], [["O"]])["entity_f1"] == 0.0


def test_scheme_detection():
    assert detect_scheme(["O", "B-PER", "I-PER"]) == "bio"
    assert detect_scheme(["O", "S-PER", "B-LOC", "E-LOC"]) == "bioes"
    assert detect_scheme(["NOUN", "VERB"]) == "none"
    assert detect_scheme(["O", "B-PER"], "none") == "none"
    with pytest.raises(ConfigError, match="tag.scheme=bio"):
        detect_scheme(["NOUN", "B-PER"], "bio")


def test_cli_train_tag_prints_the_result(tmp_path, capsys):
    train = names_task(tmp_path / "names.jsonl", n=120)
    code = cli.main(["train", str(train), "--task", "tag", "--out", str(tmp_path / "run"),
                     *[x for s in TINY[1:] for x in ("--set", s)], "--set", "train.max_epochs=1"])
    assert code == 0 and "accuracy" in capsys.readouterr().out


def test_item4_one_tag_is_a_data_error_before_anything_is_written(tmp_path, capsys):
    train = tmp_path / "words.jsonl"
    with open(train, "w") as fh:
        for i in range(40):
            tokens = [f"w{(i + j) % 9}" for j in range(3 + i % 4)]
            fh.write(json.dumps({"tokens": tokens, "tags": ["O"] * len(tokens)}) + "\n")
    run = tmp_path / "run"
    code = cli.main(["train", str(train), "--task", "tag", "--out", str(run),
                     *[x for s in TINY[1:] for x in ("--set", s)], "--set", "train.max_epochs=1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert (f"the training data cannot train a tagger:\n  - {train}: value 'O': only one tag in the training data "
            "(40 sentences, all tag 'O'); a tagger needs at least 2 tags. Fix: add sentences with at least one other "
            "tag") in err
    assert not run.exists() or not any(run.iterdir())  # no config, vocabulary, tags or splits


def test_a_tagger_no_better_than_its_baseline_on_entity_f1_is_a_doctor_finding(tmp_path, capsys):
    """Issue 11: "a model no better than its baseline on the headline metric is a doctor finding, not silence". One
    epoch at a learning rate that barely moves the weights (the issue's max_epochs=1 check): the run's entity F1,
    the headline that picks the epoch for BIO tags, stays below the most-frequent-tag baseline's; the CLI's doctor
    line and findings.json say so, and the checklist fails its predictions item."""
    from rnnkit.doctor.evidence import load_evidence

    train = names_task(tmp_path / "names.jsonl", n=200)
    run = tmp_path / "run"
    code = cli.main(["train", str(train), "--task", "tag", "--out", str(run),
                     *[x for s in TINY[1:] for x in ("--set", s)], "--set", "train.max_epochs=1",
                     "--set", "optim.lr=1e-5"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    test = summary["metrics"]["test"]
    assert summary["monitor"] == "entity_f1"
    assert test["entity_f1"] < test["baselines"]["most_frequent_tag"]["entity_f1"]  # the situation under test
    compared = {c.metric: c.better for c in load_evidence(run).baseline_comparisons()}
    assert compared == {"accuracy": False, "entity_f1": False}
    findings = {f["code"]: f for f in json.loads((run / "findings.json").read_text())}
    assert findings["baseline.not_beaten"]["severity"] == "warning"
    assert "no better than the most frequent tag baseline's" in findings["baseline.not_beaten"]["explanation"]
    assert "baseline.not_beaten" in out and "failed: Predictions sensible?" in out
