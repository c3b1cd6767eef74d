"""`train.max_batch_positions`: a batch of long documents runs forward and backward in pieces of fewer rows, whose
gradients add up to the whole batch's (the same optimizer step, the activations of one piece in memory at a time).

Found on SpamAssassin (BENCHMARKS.md, "Data larger than memory"): memory mode peaked at 4.9 GB for 31 MB of e-mails,
because a batch of 32 documents read in up to 8 windows of 512 steps holds 256 x 512 positions' activations."""

import csv
import json
import random

import pytest
import torch

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.training.loop import batch_pieces
from rnnkit.training.setup import batch_positions

WORDS = [f"w{i}" for i in range(60)]


def _documents(path, n=160, seed=0):
    """Text rows of 4-90 words (a fifth longer than 48); the class says whether w1 occurs."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(n):
            words = rng.choices(WORDS, k=rng.randint(49, 90) if i % 5 == 0 else rng.randint(4, 30))
            out.writerow([" ".join(words), "yes" if "w1" in words else "no"])
    return path


BASE = ["data.max_length=16", "data.long_sequences=window", "data.batch_size=16", "model.hidden_size=16",
        "model.embedding_dim=8", "model.num_layers=1", "model.dropout=0.0", "model.recurrent_dropout=0.0",
        "model.input_dropout=0.0", "train.max_epochs=3", "train.progress=none", "train.log_every=1",
        "train.probe_every=null", "train.min_epoch_steps=1", "train.threads=1"]


def _train(data, out, *extra, seen=None):
    """api.train; `seen` (a list) gets rows x longest row of every batch the task collates while training."""
    cfg = C.resolve(None, [f"data.train={data}", *BASE, *extra])
    if seen is None:
        return api.train(cfg, out)
    from rnnkit.tasks import classify

    original = classify.TASK.collate

    def collate(examples):
        batch = original(examples)
        if torch.is_grad_enabled():  # training (evaluation runs without autograd)
            seen.append(len(examples) * max(len(e) for e in examples))
        return batch

    patched = classify.TASK.__class__(**{**classify.TASK.__dict__, "collate": collate})
    import rnnkit.api as api_module

    real_get = api_module.get_task
    api_module.get_task = lambda name: patched if name == "classify" else real_get(name)
    try:
        return api.train(cfg, out)
    finally:
        api_module.get_task = real_get


def _steps(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "step"' in x]


def test_a_batch_of_long_documents_runs_in_pieces_with_the_whole_batchs_gradient(tmp_path):
    data = _documents(tmp_path / "docs.csv")
    whole_seen, split_seen = [], []
    whole = _train(data, tmp_path / "whole", "train.max_batch_positions=0", seen=whole_seen)
    split = _train(data, tmp_path / "split", "train.max_batch_positions=300", seen=split_seen)
    assert max(whole_seen) > 300  # the whole batches hold more positions than the limit...
    assert max(split_seen) <= 300  # ...and no piece does
    assert len(split_seen) > len(whole_seen)
    assert split["batch_pieces"]["split"] > 0 and whole["batch_pieces"]["split"] == 0
    assert split["batch_pieces"]["max_positions"] == 300 and whole["batch_pieces"]["max_positions"] is None
    # the same optimizer steps: the same number, the same losses and the same weights, up to float rounding
    a, b = _steps(tmp_path / "whole"), _steps(tmp_path / "split")
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) == 3 * 8  # 128 training rows, batches of 16
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-4, abs=1e-6)
    assert [sorted(r["ids"]) for r in b] == [sorted(r["ids"]) for r in a]  # every row of the batch, once
    assert split["metrics"]["test"]["loss"] == pytest.approx(whole["metrics"]["test"]["loss"], rel=1e-4)
    events = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
              if '"event": "batch_pieces"' in x]
    assert events and events[0]["split"] == split["batch_pieces"]["split"]


def test_the_default_limit_cuts_only_documents_longer_than_the_window(tmp_path):
    cfg = C.resolve(None, ["data.batch_size=32", "data.max_length=512"])
    assert cfg.train.max_batch_positions == "auto" and batch_positions(cfg) == 32 * 512
    assert batch_positions(C.resolve(None, ["data.window_length=128", "data.batch_size=8"])) == 8 * 128
    assert batch_positions(C.resolve(None, ["train.max_batch_positions=0"])) is None
    # rows no longer than the window (truncated ones included) never fill more than batch x window positions
    short = [torch.zeros(n) for n in (512, 3, 512, 100)]
    assert [len(p) for p in batch_pieces(short, 4 * 512)] == [4]
    long = [torch.zeros(n) for n in (4096, 10, 900, 20)]
    assert [len(p) for p in batch_pieces(long, 4 * 512)] == [1, 1, 1, 1]  # 2048 // 4096 rounds up to one row
    assert [len(p) for p in batch_pieces(long, 8192)] == [2, 2]
    assert [id(x) for x in sum(batch_pieces(long, 8192), [])] == [id(x) for x in long]  # in order, each once


def test_a_bad_limit_is_a_config_error_naming_the_key(tmp_path):
    for bad in ("-5", "lots", "true"):
        with pytest.raises(ConfigError, match="train.max_batch_positions"):
            C.resolve(None, [f"train.max_batch_positions={bad}"])


# token-averaged families: a small model, no dropout of any kind, every step logged, two epochs
SMALL = ["model.embedding_dim=8", "model.hidden_size=16", "model.num_layers=1", "model.dropout=0.0",
         "model.recurrent_dropout=0.0", "model.input_dropout=0.0", "data.batch_size=16", "train.max_epochs=2",
         "train.progress=none", "train.log_every=1", "train.probe_every=null", "train.min_epoch_steps=1",
         "train.threads=1"]


def _assert_same_steps_with_and_without_pieces(common, limit, tmp_path):
    """Whole batches against pieces of at most `limit` positions: every step's loss and the test loss agree."""
    whole = api.train(C.resolve(None, [*common, "train.max_batch_positions=0"]), tmp_path / "whole")
    split = api.train(C.resolve(None, [*common, f"train.max_batch_positions={limit}"]), tmp_path / "split")
    assert split["batch_pieces"]["split"] > 0 and whole["batch_pieces"]["split"] == 0
    a, b = _steps(tmp_path / "whole"), _steps(tmp_path / "split")
    assert len(a) == len(b) > 4
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-4, abs=1e-6)
    assert split["metrics"]["test"]["loss"] == pytest.approx(whole["metrics"]["test"]["loss"], rel=1e-4)


def _tagged(path, n=96, seed=0):
    """BIO sentences of 2-40 tokens: pieces of a batch hold very different tokens per row."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            tokens = [rng.choice(WORDS[:20]) for _ in range(rng.randint(30, 40) if i % 4 == 0 else rng.randint(2, 6))]
            tags = ["B-X" if t in ("w1", "w2") else "O" for t in tokens]
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    return path


def test_a_tagger_whose_loss_averages_tokens_weighs_its_pieces_by_tokens(tmp_path):
    """A tagger's loss is the mean over the batch's real tokens: pieces weighed by rows would give a step loss
    (and gradient) that is not the whole batch's (found by reading the loop; the weighting was by rows)."""
    data = _tagged(tmp_path / "tags.jsonl")
    common = [f"data.train={data}", "task=tag", "tag.char_dim=8", "tag.crf=false", "tag.word_dropout=0.0", *SMALL]
    _assert_same_steps_with_and_without_pieces(common, 100, tmp_path)


def test_a_seq2seq_model_whose_loss_averages_target_tokens_weighs_its_pieces_by_them(tmp_path):
    rng = random.Random(1)
    rows = ["source\ttarget"]
    for i in range(96):
        s = "".join(rng.choice("abcdef") for _ in range(rng.randint(20, 26) if i % 4 == 0 else rng.randint(2, 4)))
        rows.append(f"{s}\t{' '.join(reversed(s))}")
    data = tmp_path / "rev.tsv"
    data.write_text("\n".join(rows) + "\n")
    common = [f"data.train={data}", "task=seq2seq", "seq2seq.beam=1", "seq2seq.teacher_forcing_start=1.0",
              "seq2seq.teacher_forcing_end=1.0", *SMALL]
    _assert_same_steps_with_and_without_pieces(common, 60, tmp_path)
