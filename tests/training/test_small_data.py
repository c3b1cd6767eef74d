"""Issue 11, item 3: a training set too small to fill an epoch of useful length (18 rows at batch 32 is one
optimizer step) makes each epoch several whole passes over it (`train.min_epoch_steps`), so that warm-up,
plateau decay and early stopping, which count epochs, do not act on one step each."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.errors import CheckpointError
from rnnkit.training.setup import passes_per_epoch

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


def test_passes_per_epoch_fills_the_minimum_number_of_steps():
    assert passes_per_epoch(1, 1, 8) == 8  # 18 rows at batch 32
    assert passes_per_epoch(3, 1, 8) == 3  # 9 batches
    assert passes_per_epoch(8, 1, 8) == 1 and passes_per_epoch(100, 1, 8) == 1
    assert passes_per_epoch(12, 5, 8) == 4  # accumulate 5: 48 batches make 10 steps
    assert passes_per_epoch(1, 1, 1) == 1


def test_a_tiny_training_set_gets_epochs_of_several_passes(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    cfg = C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=3"])
    summary = api.train(cfg, tmp_path / "run")
    rows = summary["data"]["sizes"]["train"]
    assert rows < 32  # one batch of 32 a pass -> 8 passes of one step each
    assert summary["passes_per_epoch"] == 8
    assert summary["steps"] == 3 * 8 and summary["epochs_run"] == 3
    event = next(r for r in _records(tmp_path / "run") if r.get("event") == "epoch_passes")
    assert event == {"event": "epoch_passes", "passes": 8, "steps_per_epoch": 8, "train_rows": rows,
                     "min_epoch_steps": 8}
    one = api.train(C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=3", "train.min_epoch_steps=1"]),
                    tmp_path / "one")
    assert one["passes_per_epoch"] == 1 and one["steps"] == 3
    assert not any(r.get("event") == "epoch_passes" for r in _records(tmp_path / "one"))


def test_the_cli_says_an_epoch_is_several_passes(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", str(train), "--out", str(tmp_path / "r"),
                           "--set", "train.max_epochs=1", "--set", "train.progress=plain", "--set", "train.threads=1",
                           "--set", "model.hidden_size=16", "--set", "model.num_layers=1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"small data: an epoch is 8 passes over the \d+ training rows \(8 steps between validations; "
                     r"train.min_epoch_steps=8, 1 = one pass\)", proc.stderr), proc.stderr


def test_a_mid_epoch_resume_with_another_number_of_passes_is_refused(tmp_path):
    train = write_numeric_jsonl(tmp_path / "d.jsonl", n=24)
    run = tmp_path / "run"
    cfg = C.resolve(None, [f"data.train={train}", *SMALL, "train.max_epochs=2", "train.checkpoint_every=3",
                           "train.keep_checkpoints=100"])
    api.train(cfg, run)
    # keep the checkpoints up to the mid-epoch one of step 3 (epoch 1 of 8 steps), as a kill there would leave them
    ckpts = run / "checkpoints"
    later = [p for p in ckpts.glob("step-*") if int(p.name.split("-")[1]) > 3]
    assert later and (ckpts / "step-00000003").is_dir(), sorted(x.name for x in ckpts.iterdir())
    for p in later:
        shutil.rmtree(p)
    for f in ("last.json", "best.json"):
        (ckpts / f).unlink()
    (run / "summary.json").unlink()
    with pytest.raises(CheckpointError, match=r"middle of epoch 1 of 8 pass\(es\).*now makes an epoch 2"):
        api.train(resume=run, overrides=["train.min_epoch_steps=2"])
    summary = api.train(resume=run)  # the run's own settings resume
    assert summary["steps"] == 16
