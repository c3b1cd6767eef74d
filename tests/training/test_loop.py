"""The training loop through the public API: early stopping, best weights, non-finite loss, resume."""

import json
import subprocess
import sys

import pytest
import torch

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import TrainingError
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.callbacks import Callback

# one pass an epoch (train.min_epoch_steps=1): these tests count the steps of an epoch
SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "data.batch_size=16",
         "train.progress=none", "train.log_every=1",
         "train.min_epoch_steps=1"]


def _cfg(path, *extra):
    return C.resolve(None, [f"data.train={path}", *SMALL, *extra])


def _steps(run_dir):
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if r.get("kind") == "step"}


def test_early_stopping_restores_best_weights(tmp_path):
    # half the labels random + a big model, no regularisation: validation loss turns up, early stopping fires
    noisy = write_numeric_jsonl(tmp_path / "noisy.jsonl", label_noise=0.5)
    cfg = _cfg(noisy, "train.max_epochs=60", "train.patience=3", "optim.lr=0.01",
               "model.hidden_size=64", "model.dropout=0.0", "model.recurrent_dropout=0.0",
               "optim.weight_decay=0", "data.val_fraction=0.3", "train.monitor=loss")
    summary = api.train(cfg, tmp_path / "run")
    assert summary["stopped"] == "early_stopping"
    assert summary["epochs_run"] == summary["best_epoch"] + 3
    epochs = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
              if '"kind": "epoch"' in x]
    best = min(epochs, key=lambda r: r["val_loss"])
    assert best["epoch"] == summary["best_epoch"]
    assert summary["metrics"]["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert set(summary["metrics"]) == {"train", "val", "test"}


def test_nonfinite_loss_stops_with_context_and_keeps_checkpoint(tmp_path, numeric_jsonl):
    class Poison(Callback):
        def __init__(self, model_ref):
            self.model_ref = model_ref

        def on_step_end(self, state, record):
            if state.step == 20:  # after the first epoch's checkpoint (15 batches of 16)
                with torch.no_grad():
                    for p in self.model_ref[0].parameters():
                        p.fill_(float("nan"))

    model_ref = []
    import rnnkit.tasks as T
    from rnnkit.tasks.classify import TASK as CLASSIFY

    orig = CLASSIFY.build_model

    def build(cfg, prep):
        m = orig(cfg, prep)
        model_ref.append(m)
        return m

    task = T.Task(**{**CLASSIFY.__dict__, "build_model": build})
    cfg = _cfg(numeric_jsonl, "train.max_epochs=5", "data.val_fraction=0.2", "data.test_fraction=0.1")
    from rnnkit.data.pipeline import prepare_data
    from rnnkit.training.setup import fit_from_config as fit

    run = tmp_path / "run"
    run.mkdir()
    data = prepare_data(cfg, run)
    with pytest.raises(TrainingError) as exc:
        fit(cfg, data, task, run, callbacks=[Poison(model_ref)])
    msg = str(exc.value)
    assert "non-finite loss" in msg and "step 21" in msg and "series.jsonl:" in msg
    assert "learning rate" in msg and "last finite loss" in msg
    last = ckpt.read_pointer(run / "checkpoints", "last")
    loaded = ckpt.load_checkpoint(last)
    assert loaded.manifest["step"] < 21
    assert all(torch.isfinite(t).all() for t in loaded.model_state.values())
    assert json.loads((run / "summary.json").read_text())["stopped"] == "nonfinite_loss"


RESUME_SCRIPT = """
import os, signal, sys
from rnnkit import api, config as C
from rnnkit.training.callbacks import Callback
class Kill(Callback):
    def on_step_end(self, state, record):
        if state.step == {stop}:
            os.kill(os.getpid(), signal.SIGTERM)
cfg = C.resolve(None, {overrides!r})
try:
    api.train(cfg, {out!r}, callbacks=[Kill()] if {stop} else [])
except Exception as exc:
    print(exc)
    sys.exit(getattr(exc, "exit_code", 1))
"""


def test_resume_in_new_process_repeats_the_same_losses(tmp_path, numeric_jsonl):
    overrides = [f"data.train={numeric_jsonl}", *SMALL, "train.max_epochs=3", "data.batch_size=24"]
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    for out, stop in ((ref, 0), (cut, 13)):  # 8 batches per epoch: step 13 is mid-epoch 2
        code = RESUME_SCRIPT.format(stop=stop, overrides=overrides, out=str(out))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == (143 if stop else 0), proc.stdout + proc.stderr
    assert "interrupted by SIGTERM" in proc.stdout
    assert max(_steps(cut)) == 13
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", "--resume", str(cut)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    a, b = _steps(ref), _steps(cut)
    assert sorted(a) == sorted(b) and len(a) == 24
    assert [a[s] for s in sorted(a)] == [b[s] for s in sorted(b)]  # bit-for-bit on CPU
    sa = json.loads((ref / "summary.json").read_text())["metrics"]["test"]
    sb = json.loads((cut / "summary.json").read_text())["metrics"]["test"]
    assert sa == sb


def test_resume_refuses_architecture_change(tmp_path, numeric_jsonl):
    cfg = _cfg(numeric_jsonl, "train.max_epochs=1")
    api.train(cfg, tmp_path / "run")
    with pytest.raises(Exception, match=r"model.hidden_size: checkpoint 16 -> now 32"):
        api.train(resume=tmp_path / "run", overrides=["model.hidden_size=32"])


def test_gradient_accumulation_steps_once_per_window(tmp_path, numeric_jsonl):
    # 192 train rows / batch 16 = 12 batches per epoch; accumulate 5 -> windows of 5, 5, 2 = 3 steps
    cfg = _cfg(numeric_jsonl, "train.max_epochs=2", "optim.accumulate=5")
    summary = api.train(cfg, tmp_path / "run")
    assert summary["steps"] == 6
    steps = _steps(tmp_path / "run")
    assert sorted(steps) == [1, 2, 3, 4, 5, 6]


def test_accumulated_gradient_equals_the_big_batch_gradient():
    """Two windows of equal micro-batches give the same update direction as one batch of both."""
    from rnnkit.models.classifier import ClassifierNet

    torch.manual_seed(0)
    model = ClassifierNet(num_classes=3, num_features=2, hidden_size=8, embedding_dim=8, dropout=0.0,
                               recurrent_dropout=0.0)
    x = torch.randn(8, 5, 2)
    y = torch.randint(0, 3, (8,))
    lengths = torch.full((8,), 5)
    mask = torch.ones(8, 5, dtype=torch.bool)
    loss = torch.nn.functional.cross_entropy(model(x, lengths, mask), y)
    full = torch.autograd.grad(loss, list(model.parameters()))
    model.zero_grad()
    for part in (slice(0, 4), slice(4, 8)):
        part_loss = torch.nn.functional.cross_entropy(model(x[part], lengths[part], mask[part]), y[part])
        (part_loss / 2).backward()  # what the loop does: loss / window
    for g, p in zip(full, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)


def test_a_nan_in_an_accumulated_micro_batch_names_it_and_applies_no_update(monkeypatch):
    """The step's facts reach the host once per optimizer step (not per micro-batch); a NaN loss in the
    middle of an accumulation window still stops before the update and names that micro-batch's records."""
    import rnnkit
    from rnnkit import BucketBatchSampler, Example, SequenceDataset, Steps, collate
    from rnnkit.training.distributed import Dist

    g = torch.Generator().manual_seed(0)
    data = [Example(id=f"r{i}", inputs=torch.randn(5, 1, generator=g), target=torch.tensor(i % 2)) for i in range(48)]
    train, val = SequenceDataset(data[:40]), SequenceDataset(data[40:])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5, 2))
    calls, batches, after_step = [], [], {}

    def loss(out, batch):
        batches.append(list(batch.ids))
        value = torch.nn.functional.cross_entropy(out, batch.targets)
        return (value * float("nan") if len(batches) == 5 else value), len(batch)  # step 2, micro-batch 2 of 3

    real_facts = Dist.step_facts

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real_facts(self, *args, **kwargs)

    monkeypatch.setattr(Dist, "step_facts", counted)

    class Snapshot(Callback):
        def on_step_end(self, state, record):
            after_step[state.step] = {k: v.clone() for k, v in model.state_dict().items()}

    steps = Steps(collate=collate, forward=lambda m, b, s: m(b.inputs), loss=loss)
    with pytest.raises(TrainingError) as err:
        rnnkit.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, val, steps,
                   sampler=BucketBatchSampler(train.lengths, 4, shuffle=True, seed=0), accumulate=3,
                   max_epochs=2, run=None, callbacks=[Snapshot()])
    assert len(batches) == 6 and len(calls) == 2  # two windows of three micro-batches, one transfer each
    assert "non-finite loss" in str(err.value) and "at step 2" in str(err.value)
    assert ", ".join(batches[4]) in str(err.value) and batches[3][0] not in str(err.value)
    assert list(after_step) == [1]  # the second step never happened ...
    assert all(torch.equal(model.state_dict()[k], v) for k, v in after_step[1].items())  # ... nor its update
