"""Issue 12, truncated backprop through time for forecasting on one long series (`forecast.tbptt`).

The family is reached through the Task registry (`get_task`) and rnnkit's public API and CLI only: its
prepared data carries the stream plan (`PreparedData.streams`), whose batches the training loop reads in
order with the state carried between them (`rnnkit.training.tbptt.CarriedState`).
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
import signal

import numpy as np
import pytest
import torch

from reliability.relsupport import assert_same_weights, cli, start_paused, step_records, weights
from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.datasets import get_builtin
from rnnkit.errors import ConfigError
from rnnkit.tasks import get_task
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.tbptt import CarriedState

TINY = ["model.hidden_size=8", "model.embedding_dim=4", "train.threads=1", "train.progress=none",
        "forecast.auto=false", "forecast.input_length=12", "forecast.horizon=3", "forecast.seasonality=12",
        "forecast.test_size=24", "forecast.val_size=24"]


def write_series(path, n=200, seed=0):
    """A noisy sine of period 12 plus a slow wave of period 60: the slow part is only seen over long spans."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 2 * np.sin(2 * np.pi * t / 60) + 0.05 * rng.standard_normal(n)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "y"])
        w.writerows([i, f"{v:.5f}"] for i, v in enumerate(y))
    return path


def _prepared(tmp_path, *sets):
    path = write_series(tmp_path / "long.csv")
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=t", *TINY, *sets])
    task = get_task("forecast")
    data = task.prepare(cfg)
    torch.manual_seed(0)
    return cfg, task, data, task.build_model(cfg, data.prep)


def _batches(data):
    """Every chunk batch of one pass, in the sampler's order."""
    plan = data.streams
    return [plan.collate([plan.dataset[i] for i in idx]) for idx in plan.sampler()]


def _full_backprop_loss(model, data):
    """The loss of every position of every stream, each forecast by the ordinary window forward over the
    stream's whole prefix up to that position (no truncation anywhere): what full backprop through each stream
    optimises. The stream batches give the inputs and targets of each position."""
    plan = data.streams
    lay = plan.layout
    rows = [torch.cat([plan.dataset[j * lay.streams + b].inputs for j in range(lay.chunks)])
            for b in range(lay.streams)]
    wanted = [torch.cat([plan.dataset[j * lay.streams + b].target for j in range(lay.chunks)])
              for b in range(lay.streams)]
    inputs, targets, lengths = [], [], []
    for row, target in zip(rows, wanted, strict=True):
        for t in range(len(row)):
            inputs.append(torch.nn.functional.pad(row[: t + 1], (0, 0, 0, len(row) - t - 1)))  # pads at the end
            targets.append(target[t])
            lengths.append(t + 1)
    x, lengths = torch.stack(inputs), torch.tensor(lengths)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    pred = model(x, lengths, mask).prediction  # (N, H, K)
    return (pred - torch.stack(targets)).pow(2).mean()


def _tbptt_step_loss(model, data):
    """One pass of chunks through the carrier the training loop uses, the gradients summed over its chunks."""
    task = get_task("forecast")
    carried = CarriedState(data.streams.forward, data.streams.layout.describe())
    total = 0.0
    for batch in _batches(data):
        loss, count = task.loss(carried.forward(model, batch), batch)
        (loss * count).backward()
        total += float(loss) * count
    return total


def test_one_chunk_over_the_whole_stream_is_full_backprop(tmp_path):
    cfg, task, data, model = _prepared(tmp_path, "forecast.tbptt=1000", "data.batch_size=4", "model.dropout=0")
    lay = data.streams.layout
    assert lay.chunks == 1 and lay.chunk_steps == lay.stream_length == 149 // 4  # 152 - 3 positions, 4 streams
    full, truncated = model, copy.deepcopy(model)
    ref = _full_backprop_loss(full, data)
    ref.backward()
    n = lay.streams * lay.stream_length * 3
    got = _tbptt_step_loss(truncated, data) / n
    (batch,) = _batches(data)
    for p in truncated.parameters():  # the loop's loss is the chunk's mean: one chunk, so divide the sum back
        if p.grad is not None:
            p.grad /= batch.targets.numel()
    assert got == pytest.approx(float(ref), rel=1e-6)
    for (name, a), b in zip(full.named_parameters(), truncated.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7, msg=name)
    # ... and so the same weights after an optimizer step
    for m in (full, truncated):
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        opt.step()
    for (name, a), b in zip(full.state_dict().items(), truncated.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_chunks_truncate_the_gradient_but_not_the_forward(tmp_path):
    """Chunks of 7 steps: the same loss as one chunk over the stream (the state is carried) but other gradients
    (the backward pass stops at each chunk's first step)."""
    _, _, one, model = _prepared(tmp_path, "forecast.tbptt=1000", "data.batch_size=4", "model.dropout=0")
    _, _, cut, _ = _prepared(tmp_path, "forecast.tbptt=7", "data.batch_size=4", "model.dropout=0")
    assert cut.streams.layout.chunks == 6  # 37 steps per stream: 5 chunks of 7, then 2
    a, b = model, copy.deepcopy(model)
    loss_one, loss_cut = _tbptt_step_loss(a, one), _tbptt_step_loss(b, cut)
    assert loss_cut == pytest.approx(loss_one, rel=1e-6)
    w = a.encoder.layers[0][0].module.weight_hh_l0
    assert not torch.allclose(b.encoder.layers[0][0].module.weight_hh_l0.grad, w.grad, rtol=1e-3)


def test_state_carried_across_chunks_gives_the_unchunked_forward(tmp_path):
    _, _, data, model = _prepared(tmp_path, "forecast.tbptt=7", "data.batch_size=4")
    model.eval()
    lay = data.streams.layout
    carried = CarriedState(data.streams.forward, lay.describe())
    with torch.no_grad():
        chunked = torch.cat([carried.forward(model, b).prediction for b in _batches(data)], dim=1)  # (B, T, H, K)
        whole = torch.cat([b.inputs for b in _batches(data)], dim=1)  # (B, T, C): each stream in one piece
        unchunked, state = data.streams.forward(model, type("B", (), {"inputs": whole, "extra": {}})(), None)
        torch.testing.assert_close(chunked, unchunked.prediction, rtol=0, atol=1e-6)
        for key in state:  # the carried state after the last chunk is the unchunked run's final state
            torch.testing.assert_close(carried.state[key], state[key], rtol=0, atol=1e-6)
        # the window forward the evaluation uses: the forecast after step t of a stream is the stream prefix's
        lengths = torch.full((lay.streams,), 20)
        window = model(whole[:, :20], lengths, torch.ones(lay.streams, 20, dtype=torch.bool)).prediction
        torch.testing.assert_close(chunked[:, 19], window, rtol=0, atol=1e-6)
        # without carrying (each chunk from zeros) the forecasts after the first chunk differ
        fresh = torch.cat([data.streams.forward(model, b, None)[0].prediction for b in _batches(data)], dim=1)
        assert torch.equal(fresh[:, :7], chunked[:, :7]) and (fresh[:, 7:] - chunked[:, 7:]).abs().max() > 1e-3


def test_batches_are_the_streams_in_order(tmp_path):
    cfg, _, data, _ = _prepared(tmp_path, "forecast.tbptt=10", "data.batch_size=5")
    lay = data.streams.layout
    batches = _batches(data)
    assert len(batches) == lay.chunks == 3 and lay.stream_length == 29 and lay.left_out == 149 - 5 * 29
    assert [b.extra["chunk"] for b in batches] == [0, 1, 2]
    assert [b.inputs.shape[1] for b in batches] == [10, 10, 9]
    # row b of every batch continues stream b: its steps follow the previous batch's last step
    spans = [[tuple(int(x) for x in i.split(":steps ")[1].split("-")) for i in b.ids] for b in batches]
    for before, after in zip(spans, spans[1:], strict=False):
        assert [a[1] for a in before] == [a[0] for a in after]
    assert sorted(s for b in spans for s in b) == sorted({s for b in spans for s in b})  # no position twice


RESUME = ["data.batch_size=4", "forecast.tbptt=5", "train.max_epochs=3", "train.min_epoch_steps=1",
          "train.log_every=1", "train.checkpoint_every=3", "train.keep_checkpoints=2", "train.device=cpu",
          "model.dropout=0.3"]  # dropout: every step draws from the torch RNG


def _resume_args(path, run):
    sets = ["forecast.time_column=t", *TINY, *RESUME]
    return ["train", str(path), "--task", "forecast", "--out", str(run), *[x for s in sets for x in ("--set", s)]]


def test_kill_9_mid_sequence_then_resume_is_bit_identical(tmp_path, monkeypatch):
    """SIGKILL mid-epoch (mid-sequence: the last checkpoint's next chunk continues from its carried state),
    then `rnnkit train --resume`: the weights and every step's loss are the uninterrupted run's, bit for bit."""
    path = write_series(tmp_path / "long.csv")
    reference = tmp_path / "reference"
    assert main(_resume_args(path, reference)) == 0
    chunks = json.loads((reference / "summary.json").read_text())["tbptt"]["chunks_per_pass"]
    assert chunks == 8  # 37 steps per stream in chunks of 5: 8 steps an epoch, 24 in all
    run = tmp_path / "run"
    proc = start_paused("step", 14, _resume_args(path, run))  # epoch 2; the last checkpoint is step 12 (after chunk 4)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == 12 and last.state["loop"]["batch_in_epoch"] == 4
    assert (last.path / ckpt.CARRIED).is_file() and ckpt.CARRIED in last.manifest["files"]
    assert set(last.carried) == {"h", "c"} and last.carried["h"].shape == (1, 4, 8)  # (layers, streams, hidden)
    assert last.state["streams"]["chunk_steps"] == 5
    zeroed = tmp_path / "zeroed"
    shutil.copytree(run, zeroed)

    done = cli("train", "--resume", run)
    assert done.returncode == 0, done.stderr
    for which in ("last", "best"):
        assert_same_weights(weights(run, which), weights(reference, which))
    got, want = step_records(run), step_records(reference)
    assert sorted(got) == list(range(1, 25))
    assert [got[s]["ids"] for s in got] == [want[s]["ids"] for s in got]
    assert [got[s]["loss"] for s in got] == [want[s]["loss"] for s in got]

    # the carried state matters: the same resume starting chunk 5 from zeros ends elsewhere
    monkeypatch.setattr(CarriedState, "load", lambda self, tensors, **kw: None)
    assert main(["train", "--resume", str(zeroed)]) == 0
    redone, wanted = step_records(zeroed), step_records(reference)
    assert redone[13]["loss"] != wanted[13]["loss"]
    final, ref = weights(zeroed), weights(reference)
    assert any(not torch.equal(final[k], ref[k]) for k in final)


def test_resume_refuses_another_chunk_layout_mid_epoch(tmp_path):
    path = write_series(tmp_path / "long.csv")
    run = tmp_path / "run"
    proc = start_paused("step", 4, _resume_args(path, run))  # the checkpoint of step 3: mid-epoch 1
    proc.kill()
    proc.communicate(timeout=60)
    before = (run / "metrics.jsonl").read_text()
    done = cli("train", "--resume", run, "--set", "data.batch_size=5")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "4 streams of 37 steps in chunks of 5" in done.stderr and "5 streams of 29 steps" in done.stderr
    assert (run / "metrics.jsonl").read_text() == before  # a refused resume changes nothing


@pytest.mark.parametrize(("sets", "words"), [
    (["forecast.tbptt=0"], "'forecast.tbptt': 0 is out of range"),
    (["forecast.tbptt=abc"], "forecast.tbptt"),
    (["forecast.tbptt=8", "forecast.head=autoregressive"], "Set forecast.head=direct, or forecast.tbptt=null"),
    (["forecast.tbptt=8", "forecast.window_norm=true"], "Set forecast.window_norm=false"),
    (["forecast.tbptt=8", "model.bidirectional=true"], "Set model.bidirectional=false"),
    (["forecast.tbptt=8", "model.pooling=mean"], "Set model.pooling=last"),
    (["forecast.tbptt=8", "data.batch_size=200"], "fewer than the 200 streams data.batch_size asks for"),
])
def test_bad_settings_are_config_errors_naming_the_fix(tmp_path, capsys, sets, words):
    path = write_series(tmp_path / "long.csv")
    args = ["train", str(path), "--task", "forecast", "--out", str(tmp_path / "run"),
            *[x for s in ["forecast.time_column=t", *TINY, *sets] for x in ("--set", s)]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_many_series_are_refused(tmp_path):
    path = tmp_path / "two.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "id", "y"])
        w.writerows([i, sid, float(np.sin(i / 3) + k)] for k, sid in enumerate("ab") for i in range(150))
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "forecast.time_column=t", "forecast.series_column=id",
                           "forecast.tbptt=8", *TINY])
    with pytest.raises(ConfigError, match="trains on one long series; this file has 2 series"):
        get_task("forecast").prepare(cfg)


@pytest.mark.skipif(not get_builtin("taylor").installed(), reason="pmdarima (the taylor data) is not installed")
def test_taylor_builtin_has_the_benchmark_protocol(tmp_path):
    """The built-in reads pmdarima's literal offline (half-hours from 5 June 2000) and splits it as
    BENCHMARKS.md's defaults table did: 356 test windows, seasonal naive RMSE 3087.16 on them."""
    cfg = C.resolve(None, ["data.dataset=taylor", "forecast.auto=false", "train.progress=none"])
    task = get_task("forecast")
    data = task.prepare(cfg, tmp_path)
    assert data.report["spans"]["train"][0] == "2000-06-05T00:00" and data.report["spans"]["test"][1] == \
        "2000-08-27T23:30"
    assert data.report["sizes"]["test"] == 356 and data.streams is None  # TBPTT is opt-in
    base = task.baselines(data, cfg)
    assert base["seasonal_naive"]["rmse"] == pytest.approx(3087.16, abs=0.01)
    assert base["naive"]["mase"] == pytest.approx(2.967, abs=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(not get_builtin("taylor").installed(), reason="pmdarima (the taylor data) is not installed")
def test_taylor_by_tbptt_beats_the_naive_baselines(tmp_path, capsys):
    """pmdarima's half-hourly electricity demand (4,032 steps): trained by TBPTT on 32 streams (100 steps each)
    in chunks of one day, evaluated on the built-in's 356 rolling test windows, it beats naive and seasonal naive
    by 20% or more on MASE and RMSE (bench: MASE 0.54 against 2.97 and 1.04);
    the start line and summary.json say TBPTT was on; predict forecasts the day after the series."""
    run = tmp_path / "run"
    sets = ["forecast.tbptt=48", "data.batch_size=32", "forecast.auto=false", "forecast.input_length=48",
            "train.max_epochs=40", "train.threads=1", "train.progress=plain", "optim.lr=1e-2"]
    assert main(["train", "--dataset", "taylor", "--task", "forecast", "--out", str(run),
                 *[x for s in sets for x in ("--set", s)]]) == 0
    err = capsys.readouterr().err
    assert "forecast.tbptt=48: truncated backprop through time on 32 contiguous streams" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["tbptt"]["on"] and summary["tbptt"]["streams"] == 32 and summary["tbptt"]["chunk_steps"] == 48
    assert summary["data"]["sizes"]["test"] == 356
    test = summary["metrics"]["test"]
    for baseline in ("naive", "seasonal_naive"):
        for metric in ("mase", "rmse"):
            assert test[metric] < 0.8 * test["baselines"][baseline][metric], (baseline, metric, test)
    out = tmp_path / "forecast.csv"
    assert api.predict(run, get_builtin("taylor").files()["train"], out) == 48
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert (rows[0]["time"], rows[-1]["time"]) == ("2000-08-28T00:00", "2000-08-28T23:30")  # the day after the data
    assert all(15000 < float(r["forecast"]) < 50000 for r in rows)  # megawatts, the series' range
