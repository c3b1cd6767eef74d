"""Issue 8, item 2: one process trains into a run directory at a time.

Two `rnnkit train` processes with the same --out both printed `done:` and one run was silently lost.
Now the directory is claimed (an exclusive flock on DIR/.rnnkit.lock) before any data are read: a second
`train`, or a `--resume` of a run still being trained, stops with exit 2 naming the holder; the lock dies
with its process, kill -9 included, so the run can then be resumed.
"""

from __future__ import annotations

import json

from relsupport import cli, start_paused, train_args

from rnnkit.cli import main
from rnnkit.rundir import LOCK_FILE, Claims


def test_item2_a_second_train_into_a_directory_in_use_stops_before_reading_data(series, tmp_path):
    run = tmp_path / "run"
    first = start_paused("step", 4, train_args(series, run))  # paused mid-training, after checkpoint 3
    try:
        missing = tmp_path / "not-there.csv"  # reading data first would report this file instead
        second = cli(*train_args(missing, run))
        assert second.returncode == 2, second.stderr
        assert f"{run} is in use by another rnnkit process (pid {first.pid}" in second.stderr
        assert "not-there.csv" not in second.stderr and "done:" not in second.stdout
        again = cli("train", "--resume", run)  # resuming a run that is still being trained: refused too
        assert again.returncode == 2 and f"(pid {first.pid}" in again.stderr
    finally:
        first.kill()
        first.wait()
    # the lock died with the killed process: the run continues and ends normally
    resumed = cli("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["stopped"]


def test_item2_two_concurrent_trains_one_wins_the_other_is_told(series, tmp_path, capsys):
    run = tmp_path / "run"
    with Claims() as holder:  # another holder (a separate open file: flock excludes it even in-process)
        run.mkdir()
        holder.claim(run)
        assert main(train_args(series, run)) == 2
        err = capsys.readouterr().err
        assert "is in use by another rnnkit process" in err and "choose another --out" in err
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # nothing else written
    assert main(train_args(series, run)) == 0  # released: the directory is free again
    assert (run / "summary.json").exists()
    assert main(train_args(series, run)) == 2  # finished run: still protected
    assert "already holds a run; continue it with `rnnkit train --resume" in capsys.readouterr().err


def test_item2_a_failed_start_leaves_no_directory_behind(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n")  # a header and no rows
    run = tmp_path / "run"
    assert main(["train", str(bad), "--out", str(run), "--set", "train.progress=none"]) == 2
    assert not run.exists(), list(run.iterdir())
