"""Items 1 and 9: a run killed with SIGKILL, or stopped by SIGINT/SIGTERM, then `rnnkit train --resume`,
ends exactly where the uninterrupted run ends (CPU: bit for bit), having seen the same samples in the
same order, each training sample once per epoch."""

from __future__ import annotations

import json
import signal

import pytest
from relsupport import (
    BASE,
    STEPS_PER_EPOCH,
    TOTAL_STEPS,
    assert_same_run,
    assert_same_weights,
    cli,
    records,
    start_paused,
    step_records,
    train_args,
    weights,
)

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.train import checkpoint as ckpt
from rnnkit.train.callbacks import Callback


def _train_ids(run):
    return sorted(json.loads((run / "splits.json").read_text())["splits"]["train"])


def test_kill_9_mid_epoch_then_resume_is_bit_identical(series, reference, tmp_path):
    run = tmp_path / "run"
    kill_at = 11  # epoch 2; the last checkpoint is the mid-epoch one of step 9, so steps 10-11 are lost
    proc = start_paused("step", kill_at, train_args(series, run))
    proc.kill()  # SIGKILL: no handler, no cleanup, no last checkpoint
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert max(step_records(run)) == kill_at  # the lost steps were logged before the kill...
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == 9 and last.state["loop"]["batch_in_epoch"] == 1  # ...but not saved

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
    by_step = step_records(run)
    for epoch in range(TOTAL_STEPS // STEPS_PER_EPOCH):
        seen = [i for s in range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1)
                for i in by_step[s]["ids"]]
        assert sorted(seen) == _train_ids(run), f"epoch {epoch + 1}"
        assert {by_step[s]["epoch"] for s in range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1)} \
            == {epoch}


@pytest.mark.parametrize(("signum", "status", "name"), [(signal.SIGINT, 130, "SIGINT"),
                                                          (signal.SIGTERM, 143, "SIGTERM")])
def test_signal_writes_a_checkpoint_exits_cleanly_and_resume_continues(series, reference, tmp_path, capsys,
                                                                        signum, status, name):
    run = tmp_path / "run"
    proc = start_paused("step", 13, train_args(series, run))  # mid-epoch 2, not a checkpoint step
    proc.send_signal(signum)
    out, err = proc.communicate("go\n", timeout=60)  # the handler ran during the pause; now let it go on
    assert proc.returncode == status, err
    assert f"training interrupted by {name}" in err and "--resume" in err
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
    overrides = [f"data.train={series}", *BASE, "optim.accumulate=2"]

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
