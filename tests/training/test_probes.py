"""Live probes (issue 10): records at the right steps with the right numbers, and no change to training."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.models.encoder import RNNEncoder
from rnnkit.training import probes as P
from rnnkit.training.callbacks import EVENTS, Callback, show_training_loop

SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=2", "data.batch_size=16",
         "train.progress=none", "train.log_every=1", "train.threads=1", "train.min_probes=0"]
KEYS = {"kind", "step", "epoch", "lr", "grad_norm", "update_ratio", "recurrent", "grad_norm_total", "clip_norm",
        "clipped_share", "steps_since_probe", "cell", "gate_saturation", "dead_output_share"}


def _train(path, run_dir, *extra, callbacks=()):
    cfg = C.resolve(None, [f"data.train={path}", *SMALL, *extra])
    summary = api.train(cfg, run_dir, callbacks=callbacks)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return summary, records


def _kind(records, kind):
    return [r for r in records if r.get("kind") == kind]


def test_the_event_is_listed_and_in_order():
    assert EVENTS.index("on_before_step") == EVENTS.index("on_step_end") - 1
    assert all(hasattr(Callback, e) for e in EVENTS)
    text = show_training_loop()
    assert text.index("on_before_step") < text.index("on_step_end")


def test_probes_every_n_steps_with_their_numbers(tmp_path, numeric_jsonl):
    summary, records = _train(numeric_jsonl, tmp_path / "run", "train.max_epochs=2", "train.probe_every=4")
    found = _kind(records, "probe")
    assert [r["step"] for r in found] == list(range(4, summary["steps"] + 1, 4))
    steps = {r["step"]: r for r in _kind(records, "step")}
    for r in found:
        assert set(r) == KEYS
        assert r["recurrent"] == ["encoder.layers.0", "encoder.layers.1"]
        assert set(r["grad_norm"]) == set(r["update_ratio"]) == {"embedding", "encoder.layers.0", "encoder.layers.1",
                                                                  "head"}
        # the groups partition the parameters: their pre-clip norms add up to the step's pre-clip norm
        total = math.sqrt(sum(v * v for v in r["grad_norm"].values()))
        assert total == pytest.approx(steps[r["step"]]["grad_norm"], rel=1e-4)
        assert r["grad_norm_total"] == pytest.approx(steps[r["step"]]["grad_norm"])
        assert all(0 < v < 1 for v in r["update_ratio"].values())
        assert 0 <= r["gate_saturation"] <= 1 and 0 <= r["dead_output_share"] <= 1
        assert r["cell"] == "lstm" and r["lr"] == steps[r["step"]]["lr"]
        window = [steps[s]["clipped"] for s in range(r["step"] - 3, r["step"] + 1)]
        assert r["steps_since_probe"] == 4 and r["clipped_share"] == sum(window) / 4


def test_probes_do_not_change_training(tmp_path, numeric_jsonl):
    # dropout, recurrent dropout (DropConnect) and accumulation on: any random draw or gradient touched by the
    # probe would show in the losses
    extra = ["train.max_epochs=2", "optim.accumulate=2", "model.dropout=0.3", "model.recurrent_dropout=0.2",
             "model.cell=gru"]
    _, off = _train(numeric_jsonl, tmp_path / "off", *extra, "train.probe_every=0")
    _, on = _train(numeric_jsonl, tmp_path / "on", *extra, "train.probe_every=1")
    assert _kind(off, "probe") == [] and len(_kind(on, "probe")) == len(_kind(on, "step"))
    assert [(r["step"], r["loss"], r["grad_norm"]) for r in _kind(on, "step")] == \
           [(r["step"], r["loss"], r["grad_norm"]) for r in _kind(off, "step")]
    assert [r["val_loss"] for r in _kind(on, "epoch")] == [r["val_loss"] for r in _kind(off, "epoch")]


def test_the_norms_are_before_clipping(tmp_path, numeric_jsonl):
    # step 1 sees the same weights and batch either way: its pre-clip norms agree whatever the clipping
    _, clipped = _train(numeric_jsonl, tmp_path / "a", "train.max_epochs=1", "train.probe_every=1",
                        "optim.clip_norm=0.01")
    _, free = _train(numeric_jsonl, tmp_path / "b", "train.max_epochs=1", "train.probe_every=1",
                     "optim.clip_norm=null")
    a, b = _kind(clipped, "probe")[0], _kind(free, "probe")[0]
    assert a["clipped_share"] == 1.0 and b["clipped_share"] == 0.0
    for name, value in b["grad_norm"].items():
        assert a["grad_norm"][name] == pytest.approx(value, rel=1e-4)


class WeightSpy(Callback):
    """The update/weight ratio of the head, computed independently around each optimizer step."""

    def __init__(self):
        self.model, self.ratios, self._before = None, {}, None

    def on_before_step(self, state, model, grad_norm):
        self.model = model
        self._before = [p.detach().clone() for p in model.head.parameters()]

    def on_step_end(self, state, record):
        after = list(self.model.head.parameters())
        delta = sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(after, self._before, strict=True))
        base = sum(float(b.pow(2).sum()) for b in self._before)
        self.ratios[state.step] = math.sqrt(delta / base)


def test_update_ratios_match_the_weights(tmp_path, numeric_jsonl):
    spy = WeightSpy()
    _, records = _train(numeric_jsonl, tmp_path / "run", "train.max_epochs=1", "train.probe_every=3",
                        callbacks=[spy])
    found = _kind(records, "probe")
    assert found
    for r in found:
        assert r["update_ratio"]["head"] == pytest.approx(spy.ratios[r["step"]], rel=1e-4)


def test_hooks_only_on_probed_steps(tmp_path, numeric_jsonl):
    """Between probes the encoder runs hook-free: no work and no host sync beyond counting clipped steps. Step 13
    follows an epoch end (12 steps an epoch): the hook armed after step 12 waits through the validation."""
    seen = []
    import dataclasses

    import rnnkit.tasks.classify as classify

    real = classify.TASK.build_model

    def build(cfg, prep):
        model = real(cfg, prep)
        enc = P.main_encoder(model)[1]
        enc.register_forward_pre_hook(lambda m, args: seen.append((m.training, len(m._forward_hooks))))
        return model

    task = dataclasses.replace(classify.TASK, build_model=build)
    cfg = C.resolve(None, [f"data.train={numeric_jsonl}", *SMALL, "train.max_epochs=2", "train.probe_every=13"])
    from rnnkit.data.pipeline import prepare_data
    from rnnkit.training.setup import fit_from_config

    run = tmp_path / "run"
    run.mkdir()
    summary = fit_from_config(cfg, prepare_data(cfg, run), task, run)
    assert summary["steps"] == 24
    train_calls = [hooks for training, hooks in seen if training]
    assert len(train_calls) == summary["steps"]
    assert [i + 1 for i, hooks in enumerate(train_calls) if hooks] == [13]
    (found,) = _kind([json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()], "probe")
    assert found["step"] == 13 and found["epoch"] == 1 and found["gate_saturation"] is not None
    assert sum(hooks for training, hooks in seen if not training) > 0  # armed through the validation, not taken


def test_gate_saturation_is_recomputed_from_the_first_layer():
    # huge input weights pin every gate: the share is 1; zero weights leave sigmoid(0) = 0.5: the share is 0
    enc = RNNEncoder(3, 4, num_layers=1, cell="lstm")
    model = torch.nn.ModuleDict({"encoder": enc})
    log = []
    probe = P.Probe(model, 1, type("L", (), {"write": lambda self, r: log.append(r)})())
    x, lengths = torch.randn(5, 7, 3), torch.tensor([7, 6, 5, 3, 1])
    mask = torch.arange(7)[None] < lengths[:, None]
    for scale, expected in ((1000.0, 1.0), (0.0, 0.0)):
        with torch.no_grad():
            for p in enc.parameters():
                p.copy_(torch.full_like(p, scale) if p.dim() == 2 else torch.zeros_like(p))
        probe._arm()
        enc(x.abs() + 0.1, lengths, mask)
        saturation, dead = probe._activity()
        assert float(saturation) == pytest.approx(expected)
    # with zero weights every output is 0 at every position: all units dead
    assert float(dead) == 1.0


def test_a_short_run_probes_often_enough_for_the_doctor(tmp_path, numeric_jsonl):
    """Issue 10: a small data set's run (12 steps an epoch, 2 epochs) got no probe at the default 100 steps, so
    the probe rules (which want several) could say nothing. It now probes often enough for train.min_probes."""
    summary, records = _train(numeric_jsonl, tmp_path / "run", "train.max_epochs=2", "train.min_probes=20")
    assert summary["steps"] == 24 and C.Config().train.probe_every == 100
    assert [r["step"] for r in _kind(records, "probe")] == list(range(1, 25))  # 24 // 20 = 1 step apart
    _, records = _train(numeric_jsonl, tmp_path / "six", "train.max_epochs=2", "train.min_probes=6")
    assert [r["step"] for r in _kind(records, "probe")] == [4, 8, 12, 16, 20, 24]
    _, records = _train(numeric_jsonl, tmp_path / "exact", "train.max_epochs=2", "train.min_probes=0")
    assert _kind(records, "probe") == []  # 0: exactly every probe_every (100) steps
    from rnnkit.training.setup import probe_interval
    assert probe_interval(100, 20, 10_000) == 100 and probe_interval(None, 20, 10) is None
    assert probe_interval(100, 20, 5) == 1


def test_probe_every_off_and_range(tmp_path, numeric_jsonl):
    _, records = _train(numeric_jsonl, tmp_path / "run", "train.max_epochs=1", "train.probe_every=null")
    assert _kind(records, "probe") == []
    with pytest.raises(ConfigError, match="probe_every"):
        C.resolve(None, ["train.probe_every=-1"])
    assert C.Config().train.probe_every == 100
