"""Items 1 and 9: a run killed with SIGKILL, or stopped by SIGINT/SIGTERM, then `rnnkit train --resume`,
ends exactly where the uninterrupted run ends (CPU: bit for bit), having seen the same samples in the
same order, each training sample once per epoch. The kill -9 case runs for every task family."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
import torch
from relsupport import (
    BASE,
    FAMILIES,
    STEPS_PER_EPOCH,
    TOTAL_STEPS,
    assert_same_run,
    assert_same_weights,
    cli,
    family_train_args,
    records,
    start_paused,
    step_records,
    train_args,
    training_ids,
    weights,
)

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.models.seq2seq import teacher_forcing_ratio
from rnnkit.tasks import get_task
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.callbacks import Callback


def _train_ids(run):
    return sorted(json.loads((run / "splits.json").read_text())["splits"]["train"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_kill_9_mid_epoch_then_resume_is_bit_identical(family_run, tmp_path, monkeypatch, family):
    """Every task family. Each run draws from the torch RNG at every step (dropout; for tag word dropout and
    for seq2seq scheduled sampling, their only random draws), so the check at the end proves the RNG state
    matters: the same resume without restoring it ends elsewhere."""
    data, reference = family_run(family)
    run = tmp_path / "run"
    kill_at = 11  # epoch 2; the last checkpoint is the mid-epoch one of step 9, so steps 10-11 are lost
    proc = start_paused("step", kill_at, family_train_args(family, data, run))
    proc.kill()  # SIGKILL: no handler, no cleanup, no last checkpoint
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert max(step_records(run)) == kill_at  # the lost steps were logged before the kill...
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == 9 and last.state["loop"]["batch_in_epoch"] == 1  # ...but not saved
    if family == "seq2seq":  # every redone step draws its teacher-forcing coin flips from the torch RNG
        cfg, prep = C.from_dict(last.state["config"]), get_task(family).load_prep(run)
        schedule = get_task(family).build_model(cfg, prep).teacher_forcing
        assert all(0 < teacher_forcing_ratio(s, *schedule) < 1 for s in range(9, TOTAL_STEPS))
    lost_rng = tmp_path / "lost-rng"
    shutil.copytree(run, lost_rng)

    done = cli("train", "--resume", run)
    assert done.returncode == 0, done.stderr
    assert "done:" in done.stdout
    resumed = [r for r in records(run) if r.get("event") == "resume"]
    assert [(r["step"], r["from"]) for r in resumed] == [(9, "step-00000009")]
    # the steps logged by the killed process after its last checkpoint were dropped, then redone once
    steps = [r["step"] for r in records(run) if r.get("kind") == "step"]
    assert steps == list(range(1, TOTAL_STEPS + 1))
    assert_same_run(run, reference)
    # within every epoch each training sample is seen exactly once: none skipped, none repeated
    by_step, train_ids = step_records(run), training_ids(family, data)
    for epoch in range(TOTAL_STEPS // STEPS_PER_EPOCH):
        seen = [i for s in range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1)
                for i in by_step[s]["ids"]]
        assert sorted(seen) == train_ids, f"epoch {epoch + 1}"
        assert {by_step[s]["epoch"] for s in range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1)} \
            == {epoch}

    # the same resume without restoring the RNG state: same samples in the same order, other weights
    monkeypatch.setattr(torch, "set_rng_state", lambda state: None)
    assert main(["train", "--resume", str(lost_rng)]) == 0
    got, want = step_records(lost_rng), step_records(reference)
    assert [got[s]["ids"] for s in got] == [want[s]["ids"] for s in got]
    assert [got[s]["loss"] for s in range(1, 10)] == [want[s]["loss"] for s in range(1, 10)]
    assert got[10]["loss"] != want[10]["loss"]  # the first redone step already draws differently
    final, wanted = weights(lost_rng), weights(reference)
    assert any(not torch.equal(final[k], wanted[k]) for k in final)


@pytest.mark.parametrize(("signum", "status", "name"), [(signal.SIGINT, 130, "SIGINT"),
                                                          (signal.SIGTERM, 143, "SIGTERM")])
def test_signal_writes_a_checkpoint_exits_cleanly_and_resume_continues(series, reference, tmp_path, capsys,
                                                                        signum, status, name):
    run = tmp_path / "run"
    proc = start_paused("step", 13, train_args(series, run))  # mid-epoch 2, not a checkpoint step
    proc.send_signal(signum)
    out, err = proc.communicate("go\n", timeout=60)  # the handler ran during the pause; now let it go on
    assert proc.returncode == status, err
    assert f"training interrupted by {name}" in err
    assert f"continue with `rnnkit train --resume {run}`" in err  # issue 8 item 17: the real path, not DIR
    assert "Traceback" not in err
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == 13 and last.state["reason"] == f"signal {int(signum)}"
    assert [r for r in records(run) if r.get("event") == "interrupted"] == [
        {"event": "interrupted", "step": 13, "signal": int(signum)}]
    assert not (run / "summary.json").exists()  # an interrupted run is not reported as finished

    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(run, reference)


def test_crash_and_resume_with_gradient_accumulation(series, tmp_path):
    """Two batches per optimizer step: the logged ids of a step are both batches, and a resume after a
    crash between checkpoints repeats the uninterrupted run (4 steps per epoch, checkpoint every 3)."""
    overrides = [f"data.train={series}", *BASE, "optim.accumulate=2", "train.min_epoch_steps=1"]  # one pass an epoch

    class Crash(Callback):
        def on_step_end(self, state, record):
            if state.step == 7:  # epoch 2; last checkpoint: step 6 (mid-epoch)
                raise RuntimeError("simulated crash")

    ref, run = tmp_path / "ref", tmp_path / "run"
    api.train(C.resolve(None, overrides), ref)
    with pytest.raises(RuntimeError, match="simulated crash"):
        api.train(C.resolve(None, overrides), run, callbacks=[Crash()])
    assert ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 6
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_weights(weights(run), weights(ref))
    got, want = step_records(run), step_records(ref)
    assert sorted(got) == sorted(want) == list(range(1, 13))
    assert [got[s]["ids"] for s in got] == [want[s]["ids"] for s in got]
    for epoch in range(3):
        seen = [i for s in range(4 * epoch + 1, 4 * epoch + 5) for i in got[s]["ids"]]
        assert sorted(seen) == _train_ids(run)
    assert all(len(got[s]["ids"]) == 48 for s in got)  # 192 rows: 8 batches of 24, two per step
