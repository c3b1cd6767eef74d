"""Item 10: an output directory that cannot be written, or a disk that is (nearly) full, is a clear error
before training (exit 2, nothing written); a disk that fills up during training is a clear error (exit 3)
that keeps every earlier checkpoint, and the run resumes once there is room again.

The tests run as root in CI, where file modes do not stop writes: a path below a regular file, an
immutable directory (chattr +i) and a real 1 MiB tmpfs in a private mount namespace are used instead.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys

import pytest
from relsupport import BASE, assert_same_run, sets, train_args
from safetensors import SafetensorError

from rnnkit.cli import main
from rnnkit.training import checkpoint as ckpt


def test_out_below_a_regular_file_fails_before_reading_data(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the user expected a directory\n")
    missing_data = tmp_path / "not-there.csv"  # reading data first would report this file instead
    assert main(["train", str(missing_data), "--out", str(blocker / "run"), *sets(BASE)]) == 2
    err = capsys.readouterr().err
    assert f"output directory {blocker / 'run'} is not writable (Not a directory)" in err
    assert "not-there.csv" not in err


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write, root included: chattr +i as root, mode 0o555 otherwise."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root on a file system without chattr +i: no way to make a directory read-only")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_output_directory_fails_before_training(series, read_only_dir, capsys):
    assert main(["train", str(series), "--out", str(read_only_dir), *sets(BASE)]) == 2
    err = capsys.readouterr().err
    assert f"output directory {read_only_dir} is not writable (" in err and "choose another --out" in err
    assert list(read_only_dir.iterdir()) == []


def test_nearly_full_disk_fails_before_training(series, tmp_path, monkeypatch, capsys):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30 - 50 * 2**20, 50 * 2**20))
    run = tmp_path / "run"
    assert main(["train", str(series), "--out", str(run), *sets(BASE)]) == 2
    err = capsys.readouterr().err
    assert f"output directory {run} has only 50 MiB free; checkpoints need at least 200 MiB" in err
    assert not (run / "metrics.jsonl").exists() and not (run / "checkpoints").exists()


@pytest.fixture
def small_disk(tmp_path):
    """Run a shell command with a real tmpfs of a given size mounted at tmp_path/disk (private mount
    namespace: nothing outside the command sees it)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {disk}"],
                           capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here (needs unshare and CAP_SYS_ADMIN)")

    def run(size: str, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs {disk} && {command}"],
                              capture_output=True, text=True, timeout=300)

    run.disk = disk
    return run


def test_really_small_disk_fails_before_training(series, small_disk):
    run = small_disk.disk / "run"
    done = small_disk("1m", " ".join([sys.executable, "-m", "rnnkit.cli", *train_args(series, run)]))
    assert done.returncode == 2, done.stderr
    assert f"output directory {run} has only 1 MiB free" in done.stderr


FILL_UP = """
import sys
import rnnkit.api as api
api.MIN_FREE_BYTES = 0  # let the run start on this tiny disk: the point is a disk that fills up later
from rnnkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_that_really_fills_up_during_training(series, small_disk, tmp_path):
    # hidden 64: each checkpoint is about a megabyte, so a few fit on 3 MiB and then the disk is full
    child = tmp_path / "fill_up.py"
    child.write_text(FILL_UP)
    run, kept = small_disk.disk / "run", tmp_path / "kept"
    args = " ".join(map(str, train_args(series, run, "--set", "model.hidden_size=64")))
    done = small_disk("3m", f"{sys.executable} {child} {args}; echo $? > {tmp_path}/rc; cp -a {run} {kept}")
    assert (tmp_path / "rc").read_text().strip() == "3", done.stderr
    failed = re.search(rf"cannot write checkpoint step-(\d+) in {re.escape(str(run / 'checkpoints'))}: ", done.stderr)
    assert failed, done.stderr
    assert "MiB free there). Earlier checkpoints are untouched" in done.stderr and "Traceback" not in done.stderr
    earlier = ckpt.step_checkpoints(kept / "checkpoints")
    assert earlier and all(int(p.name[5:]) < int(failed.group(1)) for p in earlier)
    for path in earlier:
        ckpt.load_checkpoint(path)  # complete and verified
    assert main(["train", "--resume", str(kept)]) == 0  # on a disk with room, the run goes on
    assert ckpt.load_latest_valid(kept / "checkpoints").manifest["step"] == 24


def test_disk_full_during_training_keeps_earlier_checkpoints(series, reference, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_save_file = ckpt.save_file
    calls = []

    def full_disk(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 4:  # the checkpoint of step 9: what safetensors raises on ENOSPC
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    assert main(train_args(series, run)) == 3
    err = capsys.readouterr().err
    assert f"cannot write checkpoint step-00000009 in {run / 'checkpoints'}: Error while serializing: I/O error: " \
           "No space left on device" in err
    assert "Earlier checkpoints are untouched" in err and "--resume" in err
    monkeypatch.undo()
    assert ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 8
    assert main(["train", "--resume", str(run)]) == 0  # room again: the run goes on as if nothing happened
    assert_same_run(run, reference)
