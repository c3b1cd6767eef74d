"""Issue 11, item 3: a training set too small to fill an epoch of useful length (18 rows at batch 32 is one
optimizer step) has the settings that count epochs (warm-up, plateau decay, early stopping, max_epochs) count
`scale` passes as one epoch (`train.min_epoch_steps`), so that they do not act on one step each; every pass is still
validated. The sampler's own `passes` (several shuffled passes in one epoch) is tested here too."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.training.setup import epoch_scale

SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "train.progress=none",
         "train.threads=1"]


def _records(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_passes_repeat_every_index_once_per_pass_in_fresh_orders():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=37).tolist()
    one = BucketBatchSampler(lengths, 16, seed=3)
    three = BucketBatchSampler(lengths, 16, seed=3, passes=3)
    assert len(three) == 3 * len(one) == 9
    for epoch in (0, 4):
        batches = three.epoch_batches(epoch)
        assert batches[: len(one)] == one.epoch_batches(epoch)  # pass 0 is the one-pass order, bit for bit
        flat = [i for b in batches for i in b]
        assert sorted(flat) == sorted(list(range(37)) * 3)
        passes = [sorted(i for b in batches[k * 3:(k + 1) * 3] for i in b) for k in range(3)]
        assert all(p == list(range(37)) for p in passes)  # each pass covers every row once
        assert batches[:3] != batches[3:6]  # ... in its own order
    evaluation = BucketBatchSampler(lengths, 16, shuffle=False, passes=3)
    assert len(evaluation) == 3  # evaluation order: one pass whatever `passes` says
    assert evaluation.epoch_batches(0) == BucketBatchSampler(lengths, 16, shuffle=False).epoch_batches(0)
    state = three.state_dict()
    assert state["passes"] == 3
    with pytest.raises(ValueError, match="passes is 3 in the saved state but 1 now"):
        one.load_state_dict({**state, "start": 2})
    with pytest.raises(ValueError, match="passes must be an int >= 1"):
        BucketBatchSampler(lengths, 16, passes=0)


def test_the_epoch_scale_fills_the_minimum_number_of_steps():
    assert epoch_scale(1, 1, 8) == 8  # 18 rows at batch 32
    assert epoch_scale(3, 1, 8) == 3  # 9 batches
    assert epoch_scale(8, 1, 8) == 1 and epoch_scale(100, 1, 8) == 1
    assert epoch_scale(12, 5, 8) == 4  # accumulate 5: 48 batches make 10 steps
    assert epoch_scale(1, 1, 1) == 1


def test_a_tiny_training_set_counts_eight_passes_as_one_epoch(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    cfg = C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=3", "train.patience=2"])
    summary = api.train(cfg, tmp_path / "run")
    rows = summary["data"]["sizes"]["train"]
    assert rows < 32  # one batch of 32 a pass: 8 passes make one counted epoch
    assert summary["epoch_scale"] == 8
    records = _records(tmp_path / "run")
    event = next(r for r in records if r.get("event") == "epoch_scale")
    assert event == {"event": "epoch_scale", "scale": 8, "steps_per_pass": 1, "train_rows": rows,
                     "min_epoch_steps": 8, "max_passes": 24, "patience_passes": 16}
    epochs = [r for r in records if r.get("kind") == "epoch"]
    assert len(epochs) == summary["epochs_run"] == summary["steps"]  # each one-step pass is validated
    assert 16 < summary["epochs_run"] <= 24  # not stopped by 2 passes without improvement
    rates = [e["lr"] for e in epochs[:8]]
    assert rates[0] < 0.3e-3 and rates == sorted(rates) and rates[7] == pytest.approx(1e-3)  # warm-up: 8 steps
    saved = C.load_yaml(tmp_path / "run" / "config.yaml")
    assert saved["train"]["max_epochs"] == 3 and saved["train"]["patience"] == 2  # the user's, unscaled
    # the model card and the report count passes as passes (a new user read "15 max_epochs, 45 epochs run")
    from rnnkit.report.card import write_model_card

    passes = summary["epochs_run"]
    card = write_model_card(tmp_path / "run").read_text()
    assert (f"{passes} passes over the training set ({passes / 8:g} epochs of 8 passes: small data, "
            "train.min_epoch_steps)") in card
    if importlib.util.find_spec("matplotlib") is not None:
        from rnnkit.report import write_report

        page = write_report(tmp_path / "run").read_text()
        assert f"{passes} passes run ({passes / 8:g} epochs of 8 passes: small data)" in page
    one = api.train(C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=3", "train.min_epoch_steps=1"]),
                    tmp_path / "one")
    assert one["epoch_scale"] == 1 and one["steps"] == 3
    assert not any(r.get("event") == "epoch_scale" for r in _records(tmp_path / "one"))


def test_the_cli_says_how_passes_are_counted(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", str(train), "--out", str(tmp_path / "r"),
                           "--set", "train.max_epochs=1", "--set", "train.progress=plain", "--set", "train.threads=1",
                           "--set", "model.hidden_size=16", "--set", "model.num_layers=1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"small data: a pass over the \d+ training rows is 1 step\(s\); warm-up, plateau decay, early "
                     r"stopping and train.max_epochs count 8 passes as one epoch \(at most 8 passes, each validated; "
                     r"train.min_epoch_steps=8, 1 = off\)", proc.stderr), proc.stderr
    # the last line counts passes as passes (max_epochs=1 is 8 passes here)
    assert re.search(r"; best pass \d of 8 \(one epoch is 8 passes: small data\), stopped: ", proc.stdout), proc.stdout
    # ...and so does each progress line: one per validated pass, numbered 1..8, none called an epoch
    lines = [line.split()[:2] for line in proc.stderr.splitlines() if re.match(r"(pass|epoch) +\d", line)]
    assert lines == [["pass", str(k)] for k in range(1, 9)], proc.stderr
    # 3 validation rows: the training rows' loss chooses (classify's small-validation default), counted in passes
    assert re.search(r"selection: the loss over the \d+ training rows \(evaluation mode\) picks the best pass",
                     proc.stderr), proc.stderr


def test_a_resumed_small_run_keeps_counting_in_passes(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    run = tmp_path / "run"
    first = api.train(C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=1", "train.patience=50"]), run)
    assert first["epochs_run"] == 8 and first["stopped"] == "max_epochs"
    again = api.train(resume=run, overrides=["train.max_epochs=2"])
    assert again["epochs_run"] == 16 and again["steps"] == 16
    done = api.train(resume=run, overrides=["train.max_epochs=2"])
    assert done.get("already_finished") and "--set train.max_epochs=N (N > 2)" in done["note"]
