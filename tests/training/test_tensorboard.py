"""Issue 13, item 4: `train.tensorboard=true` mirrors metrics.jsonl into TensorBoard event files (losses, LR,
gradient norm, padding share, the doctor's probes); metrics.jsonl stays the source of truth."""

from __future__ import annotations

import builtins
import json

import pytest

from fakedata import write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import MissingExtra

accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "train.progress=none",
         "train.threads=1", "data.batch_size=16", "train.log_every=2", "train.probe_every=3"]


def _scalars(log_dir):
    acc = accumulator.EventAccumulator(str(log_dir), size_guidance={accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_every_logged_number_reaches_tensorboard_at_its_step(tmp_path):
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=200)
    run = tmp_path / "run"
    api.train(C.resolve(None, [f"data.train={data}", *SMALL, "train.max_epochs=3", "train.tensorboard=true"]), run)
    scalars = _scalars(run / "tensorboard")
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    assert len(epochs) == 3
    for name in ("train_loss", "val_loss", "val_accuracy", "lr", "padding_share", "grad_norm"):
        got = scalars[f"epoch/{name}"]
        assert [s for s, _ in got] == [r["step"] for r in epochs]
        assert [v for _, v in got] == pytest.approx([r[name] for r in epochs], rel=1e-6)
    steps = [r for r in records if r.get("kind") == "step"]
    assert len(scalars["step/loss"]) == len(steps) > 3
    probes = [t for t in scalars if t.startswith("probe/")]
    assert probes and any("grad" in t for t in probes), sorted(scalars)[:40]


def test_a_resume_purges_the_events_after_its_checkpoint(tmp_path):
    import shutil

    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=200)
    run = tmp_path / "run"
    cfg = C.resolve(None, [f"data.train={data}", *SMALL, "train.max_epochs=3", "train.tensorboard=true",
                           "train.keep_checkpoints=100", "optim.lr=3e-3"])
    first = api.train(cfg, run)
    first_losses = _scalars(run / "tensorboard")["epoch/val_loss"]
    # as if killed after epoch 1: only its checkpoint is left, then the run is resumed (with another rate, so
    # that epochs 2 and 3 log other numbers than the first time)
    epoch1 = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in x][0]
    ckpts = run / "checkpoints"
    for p in ckpts.glob("step-*"):
        if int(p.name.split("-")[1]) > epoch1["step"]:
            shutil.rmtree(p)
    for f in ("last.json", "best.json", "../summary.json"):
        (ckpts / f).unlink()
    api.train(resume=run, overrides=["optim.lr=1e-3"])
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in x]
    got = _scalars(run / "tensorboard")["epoch/val_loss"]
    assert [s for s, _ in got] == [r["step"] for r in epochs] and len(epochs) == 3 == first["epochs_run"]
    assert [v for _, v in got] == pytest.approx([r["val_loss"] for r in epochs], rel=1e-6)
    assert got[1:] != first_losses[1:]  # the first attempt's epochs 2 and 3 are gone from TensorBoard too


def test_without_tensorboard_installed_the_run_stops_before_training_with_the_extra(tmp_path, monkeypatch):
    data = write_numeric_jsonl(tmp_path / "d.jsonl", n=60)
    real_import = builtins.__import__

    def no_tb(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'", name="tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tb)
    with pytest.raises(MissingExtra, match=r"pip install 'rnnkit\[tensorboard\]'"):
        api.train(C.resolve(None, [f"data.train={data}", *SMALL, "train.tensorboard=true"]), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())
