"""Items 2, 3 and 4: torn checkpoint writes, corrupt checkpoints and hostile checkpoints.

Promises checked here: a checkpoint directory with its final name is always complete; a crash or a kill
mid-write leaves the previous checkpoint loadable and only a `.tmp-*` leftover, removed at the next start;
a corrupt file is named with both digests; `--resume` falls back to the newest checkpoint that verifies
(with a warning) and never starts over; `state.pt` is only ever read with `weights_only=True`.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from relsupport import BASE, assert_same_run, cli, records, start_paused, train_args, tree_digest

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.callbacks import Callback


def _steps_on_disk(run):
    return [p.name for p in ckpt.step_checkpoints(run / "checkpoints")]


def _leftovers(run):
    return sorted(p.name for p in (run / "checkpoints").glob(".tmp-*"))


def _interrupted_run(series, run, at):
    """Train BASE in this process and stop it with SIGTERM after step `at` (a checkpoint is written)."""

    class Term(Callback):
        def on_step_end(self, state, record):
            if state.step == at:
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Exception, match="interrupted by SIGTERM"):
        api.train(C.resolve(None, [f"data.train={series}", *BASE]), run, callbacks=[Term()])


# --------------------------------------------------------------------------- item 2: torn writes


def test_exception_halfway_through_a_checkpoint_write(series, reference, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_save = torch.save
    calls = []

    def half_then_fail(obj, f, *args, **kwargs):
        calls.append(f)
        real_save(obj, f, *args, **kwargs)
        if len(calls) == 4:  # checkpoints at steps 3, 6, 8, 9: the fourth is step 9's
            data = Path(f).read_bytes()
            Path(f).write_bytes(data[: len(data) // 2])
            raise RuntimeError("simulated failure halfway through state.pt")

    monkeypatch.setattr(ckpt.torch, "save", half_then_fail)
    assert main(train_args(series, run)) == 3
    err = capsys.readouterr().err
    assert "cannot write checkpoint step-00000009" in err and "simulated failure halfway" in err
    assert "--resume" in err
    monkeypatch.undo()
    assert "step-00000009" not in _steps_on_disk(run)  # no partial checkpoint under a final name
    assert _leftovers(run) == [f".tmp-step-00000009-{os.getpid()}"]
    assert ckpt.read_pointer(run / "checkpoints", "last").name == "step-00000008"
    assert ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 8  # loads and verifies

    assert main(["train", "--resume", str(run)]) == 0
    assert _leftovers(run) == []  # cleaned at the next start
    assert_same_run(run, reference)


def test_kill_during_a_checkpoint_write_then_resume(series, reference, tmp_path):
    run = tmp_path / "run"
    proc = start_paused("save", 4, train_args(series, run))  # half of step 9's state.pt is on disk
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (leftover,) = _leftovers(run)
    assert leftover.startswith(".tmp-step-00000009-")
    assert (run / "checkpoints" / leftover / "state.pt").exists()  # the torn file is there...
    assert "step-00000009" not in _steps_on_disk(run)  # ...but never under the final name
    assert ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 8

    assert main(["train", "--resume", str(run)]) == 0
    assert _leftovers(run) == []
    assert_same_run(run, reference)


KILL_LOOP = """
import sys, torch
from rnnkit.training import checkpoint as ckpt
big = {"w": torch.randn(8 * 1024 * 1024)}  # 32 MiB of weights, a few hundred ms per checkpoint
for step in range(1, 40):
    big["w"][0] = step
    path = ckpt.save_checkpoint(sys.argv[1], f"step-{step:08d}", big, {"step": step, "m": torch.ones(1 << 20)},
                                step=step, epoch=0)
    ckpt.write_pointer(sys.argv[1], "last", path, step=step)
    ckpt.prune(sys.argv[1], 2)
    print("saved", step, flush=True)
"""


def test_kill_at_a_random_moment_of_large_saves(tmp_path):
    root = tmp_path / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-c", KILL_LOOP, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("saved 1")
    delay = random.uniform(0.0, 0.8)  # anywhere in the next saves: mid-file, mid-manifest, mid-rename, mid-prune
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.communicate()
    where = f"(killed {delay:.3f} s after the first save)"
    for path in ckpt.step_checkpoints(root):  # every directory with a final name is complete and verifies
        loaded = ckpt.load_checkpoint(path)
        assert float(loaded.model_state["w"][0]) == loaded.state["step"] == int(path.name[5:]), where
    last = ckpt.load_latest_valid(root)
    assert ckpt.read_pointer(root, "last") in ckpt.step_checkpoints(root), where
    assert last.state["step"] >= 1, where
    ckpt.clean_leftovers(root)
    assert not list(root.glob(".tmp-*")), where


# --------------------------------------------------------------------------- item 3: corrupt checkpoints


def test_corrupt_checkpoints_fall_back_to_the_previous_valid_one(series, reference, tmp_path):
    run = tmp_path / "run"
    _interrupted_run(series, run, 11)
    assert _steps_on_disk(run) == ["step-00000011", "step-00000009", "step-00000008", "step-00000006"]
    newest = run / "checkpoints/step-00000011/state.pt"
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated
    flipped = run / "checkpoints/step-00000009/model.safetensors"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of a weight
    flipped.write_bytes(bytes(data))

    done = cli("train", "--resume", run)  # a user's command line, warnings as the user sees them
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert f"{newest}: checksum mismatch" in err and f"{flipped}: checksum mismatch" in err
    assert "resuming from the previous valid checkpoint" in err and "step-00000008" in err
    assert [(r["step"], r["from"]) for r in records(run) if r.get("event") == "resume"] == [(8, "step-00000008")]
    assert_same_run(run, reference)  # falling back two checkpoints still lands on the same weights


def test_no_valid_checkpoint_refuses_and_changes_nothing(finished_run, capsys):
    for path in ckpt.step_checkpoints(finished_run / "checkpoints"):
        weights = path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: 64])
    before = tree_digest(finished_run)
    assert main(["train", "--resume", str(finished_run)]) == 3
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err
    for path in ckpt.step_checkpoints(finished_run / "checkpoints"):
        assert f"{path / 'model.safetensors'}: checksum mismatch" in err
    assert tree_digest(finished_run) == before  # never silently started over: not one file changed


def test_loading_names_the_file_and_both_digests(finished_run, series, capsys):
    best = ckpt.read_pointer(finished_run / "checkpoints", "best")
    weights = best / "model.safetensors"
    expected = json.loads((best / "manifest.json").read_text())["files"]["model.safetensors"]["sha256"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x80
    weights.write_bytes(bytes(data))
    assert main(["evaluate", str(finished_run), "--data", str(series)]) == 3
    err = capsys.readouterr().err
    assert f"checkpoint file {weights}: checksum mismatch (manifest sha256 {expected}, file sha256 " \
           f"{ckpt.sha256(weights)})" in err


# --------------------------------------------------------------------------- item 4: hostile pickles


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _poison(path, marker, how):
    """Replace state.pt by a pickle that would run `touch marker`, and fix the manifest to match."""
    state = path / "state.pt"
    if how == "torch.save":  # what a tampered torch.save file looks like (zip container)
        torch.save({"loop": _Evil(marker)}, state)
    else:  # a bare pickle stream
        state.write_bytes(pickle.dumps({"loop": _Evil(marker)}, protocol=2))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["state.pt"] = {"sha256": ckpt.sha256(state), "bytes": state.stat().st_size}
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def load_calls(monkeypatch):
    """Every torch.load call's keyword arguments (to prove there is no unsafe retry)."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_everywhere(finished_run, series, tmp_path, capsys, load_calls, how):
    marker = tmp_path / "pwned"
    paths = ckpt.step_checkpoints(finished_run / "checkpoints")
    for path in paths:
        _poison(path, marker, how)
    commands = [["train", "--resume", str(finished_run)], ["evaluate", str(finished_run), "--data", str(series)],
                ["predict", str(finished_run), "--data", str(series), "--output", str(tmp_path / "p.csv")]]
    for command, tried in zip(commands, (len(paths), 1, 1), strict=True):
        assert main(command) == 3
        err = capsys.readouterr().err
        error = err[err.index("rnnkit: error:"):]
        assert error.count("refused by the safe loader (weights_only=True)") == tried
        # the message names what the file asks to run, and does not suggest loading it unsafely
        assert error.count("unsupported GLOBAL posix.system") == tried
        assert "weights_only` set to `False`" not in err
    assert not marker.exists()
    # one load per checkpoint tried (resume: each once; evaluate, predict: the best one once), all of them safe
    assert len(load_calls) == len(paths) + 2
    assert all(call.get("weights_only") is True for call in load_calls)
    assert not (tmp_path / "p.csv").exists()


def test_malicious_newest_checkpoint_is_skipped_with_a_warning(finished_run, reference, tmp_path, load_calls):
    marker = tmp_path / "pwned"
    newest, previous = ckpt.step_checkpoints(finished_run / "checkpoints")[:2]
    _poison(newest, marker, "torch.save")
    with pytest.warns(UserWarning, match="refused by the safe loader") as caught:
        assert main(["train", "--resume", str(finished_run)]) == 0
    assert any(f"previous valid checkpoint {previous}" in str(w.message) for w in caught)
    assert not marker.exists()
    assert all(call.get("weights_only") is True for call in load_calls)
    assert_same_run(finished_run, reference)  # resumed from step 21 and redid 22-24 identically
