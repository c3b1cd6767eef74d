import json
import os
import pickle

import pytest
import torch

from rnnkit.errors import CheckpointError
from rnnkit.training import checkpoint as ckpt


def _save(root, step, value=1.0):
    model = {"w": torch.full((3, 4), value), "b": torch.arange(4.0)}
    state = {"step": step, "opt": {"lr": 0.1, "m": torch.ones(2)}, "rng": torch.get_rng_state(), "t": (1, 2)}
    path = ckpt.save_checkpoint(root, f"step-{step:08d}", model, state, step=step, epoch=0)
    ckpt.write_pointer(root, "last", path, step=step)
    return path, model, state


def test_round_trip(tmp_path):
    path, model, state = _save(tmp_path, 5)
    got = ckpt.load_checkpoint(path)
    assert torch.equal(got.model_state["w"], model["w"]) and torch.equal(got.state["rng"], state["rng"])
    assert got.state["opt"]["lr"] == 0.1 and got.manifest["step"] == 5
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.safetensors", "state.pt"]


def test_bit_flip_is_named_and_previous_is_used(tmp_path):
    _save(tmp_path, 1, value=1.0)
    bad, _, _ = _save(tmp_path, 2, value=2.0)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: checksum mismatch"):
        ckpt.load_checkpoint(bad)
    with pytest.warns(UserWarning, match="previous valid checkpoint"):
        got = ckpt.load_latest_valid(tmp_path)
    assert got.manifest["step"] == 1 and float(got.model_state["w"][0, 0]) == 1.0


def test_no_valid_checkpoint_never_starts_over(tmp_path):
    path, _, _ = _save(tmp_path, 1)
    (path / "state.pt").write_bytes((path / "state.pt").read_bytes()[:10])
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="no valid checkpoint"):
        ckpt.load_latest_valid(tmp_path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_even_with_matching_checksum(tmp_path):
    path, _, _ = _save(tmp_path, 1)
    marker = tmp_path / "marker"
    with open(path / "state.pt", "wb") as fh:
        pickle.dump({"x": _Evil(marker)}, fh)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["state.pt"]["sha256"] = ckpt.sha256(path / "state.pt")  # attacker fixed the manifest
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="refused by the safe loader"):
        ckpt.load_checkpoint(path)
    assert not marker.exists()


def test_crash_mid_write_leaves_previous_and_leftovers_are_cleaned(tmp_path, monkeypatch):
    good, _, _ = _save(tmp_path, 1)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ckpt.torch, "save", boom)
    with pytest.raises(RuntimeError):
        _save(tmp_path, 2)
    monkeypatch.undo()
    assert not (tmp_path / "step-00000002").exists()
    assert ckpt.read_pointer(tmp_path, "last") == good
    assert ckpt.load_latest_valid(tmp_path).manifest["step"] == 1
    leftovers = ckpt.clean_leftovers(tmp_path)
    assert leftovers and not list(tmp_path.glob(".tmp-*"))


def test_prune_keeps_newest_and_best(tmp_path):
    for s in range(1, 6):
        path, _, _ = _save(tmp_path, s)
        if s == 2:
            ckpt.write_pointer(tmp_path, "best", path)
    ckpt.prune(tmp_path, keep=2)
    assert sorted(p.name for p in ckpt.step_checkpoints(tmp_path)) == [
        "step-00000002", "step-00000004", "step-00000005"]


def test_kill_between_the_renames_of_a_same_step_rewrite_loses_nothing(tmp_path, monkeypatch):
    """A rewrite of step N moves the old directory aside, then renames the new one in; a kill between
    the two renames leaves no `step-N`. The next start puts the old complete checkpoint back."""
    first, model, _ = _save(tmp_path, 7)
    renames = []
    real_rename = os.rename

    def rename_then_die(src, dst):
        renames.append((src, dst))
        real_rename(src, dst)
        if len(renames) == 1:  # the old checkpoint is aside; the new one not yet in place
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ckpt.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 7, value=2.0)
    monkeypatch.undo()
    assert not first.exists() and list(tmp_path.glob(".tmp-old-step-00000007-*"))
    with pytest.warns(UserWarning, match="restored checkpoint"):
        ckpt.clean_leftovers(tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))
    restored = ckpt.load_latest_valid(tmp_path)
    assert restored.manifest["step"] == 7 and restored.path == first
    torch.testing.assert_close(restored.model_state["w"], model["w"])
