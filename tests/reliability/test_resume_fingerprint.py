"""The data fingerprint for resume comes from the input files (`rnnkit.data.fingerprint`): touching a file with
the same bytes resumes, one changed byte is refused with the usual message and changes nothing; file hashes are
cached in the run directory by (path, size, mtime_ns)."""

from __future__ import annotations

import json
import os
import shutil

import torch
from relsupport import tree_digest

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data import fingerprint as F
from rnnkit.data.collate import Example, SequenceDataset

SHORT = ["model.hidden_size=8", "model.embedding_dim=8", "model.num_layers=1", "data.batch_size=32",
         "train.max_epochs=1", "train.progress=none", "train.threads=1", "train.device=cpu"]


def _sets(overrides):
    return [x for o in overrides for x in ("--set", o)]


def _flip_one_digit(path) -> None:
    """Change one byte of the file (a digit of the first number), keeping it valid and the same size."""
    data = bytearray(path.read_bytes())
    at = next(i for i, c in enumerate(data) if chr(c).isdigit())
    data[at] = ord(str((int(chr(data[at])) + 1) % 10))
    path.write_bytes(bytes(data))


def test_touched_file_resumes_and_one_changed_byte_is_refused(series, tmp_path, capsys):
    data = tmp_path / "series.jsonl"
    shutil.copy(series, data)
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), *_sets(SHORT)]) == 0
    cache = json.loads((run / F.CACHE_FILE).read_text())
    (entry,) = cache.values()
    assert entry["size"] == data.stat().st_size and entry["mtime_ns"] == data.stat().st_mtime_ns

    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched: same bytes, new mtime
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=2"]) == 0
    (entry,) = json.loads((run / F.CACHE_FILE).read_text()).values()
    assert entry["mtime_ns"] == data.stat().st_mtime_ns  # rehashed (the old entry no longer matched), same data

    _flip_one_digit(data)
    before = tree_digest(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "train.max_epochs=3"]) == 3
    err = capsys.readouterr().err
    assert "the training data differ from the data the run started with" in err and "Traceback" not in err
    assert tree_digest(run) == before  # the cache is not rewritten by a refused resume either


def test_the_cache_is_used_only_while_size_and_mtime_match(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("text,label\na b,x\n")
    cache = {}
    real = F.file_sha256(f, cache)
    (key,) = cache
    cache[key]["sha256"] = "from-the-cache"
    assert F.file_sha256(f, cache) == "from-the-cache"  # size and mtime_ns match: not read again
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert F.file_sha256(f, cache) == real  # touched: read again


def _tiny(ids=("f.csv:2", "f.csv:3")):
    return {"train": SequenceDataset([Example(i, torch.tensor([1, 2]), torch.tensor(0)) for i in ids])}


def test_settings_that_encode_the_data_change_it_and_batching_does_not(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("text,label\na b,x\nc d,y\n")
    files = {"train": str(f)}

    def fp(*overrides, datasets=None):
        return F.fingerprint(C.resolve(None, [f"data.train={f}", *overrides]), datasets or _tiny(), files, {})

    base = fp()
    assert base.startswith("files-v1:")
    assert fp("data.batch_size=7", "data.bucketing=false") == base
    assert fp("data.lowercase=true") != base
    assert fp("data.split_seed=3") != base
    assert fp(datasets=_tiny(("f.csv:3", "f.csv:2"))) != base  # the rows in another order
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(f, moved)
    assert F.fingerprint(C.resolve(None, [f"data.train={moved}"]), _tiny(), {"train": str(moved)}, {}) == base
    # no file for a split: the encoded columns themselves
    assert F.fingerprint(C.resolve(None, []), _tiny(), None, {}).startswith("content-v1:")


def test_a_checkpoint_of_the_old_per_example_fingerprint_still_resumes():
    datasets = _tiny()
    old = F.legacy_fingerprint(datasets)
    assert F.same_data(old, "files-v1:whatever", datasets)
    assert not F.same_data(old, "files-v1:whatever", _tiny(("f.csv:2", "f.csv:4")))
