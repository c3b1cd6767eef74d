"""`data.storage: disk` (issue 14, data larger than memory): a text training file's tokens, and the encoded token
ids and offsets, live in memory-mapped files instead of the heap. The data are the same bytes, training gives the
same model, nothing is left on disk, and what cannot work is said before training."""

import csv
import json
import os
import tracemalloc
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file

from fakedata import SMALL_CLI, write_numeric_jsonl, write_text_csv
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data import pipeline, recordstore
from rnnkit.data.fingerprint import data_settings
from rnnkit.data.spill import is_disk_backed

WORDS = [f"w{i}" for i in range(500)]


def _write_docs(path, rows, *, lo=5, hi=40, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for _ in range(rows):
            words = [WORDS[j] for j in rng.integers(0, len(WORDS), size=int(rng.integers(lo, hi)))]
            out.writerow([" ".join(words), "a" if words[0] < "w250" else "b"])
    return path


def _prepare(tmp_path, name, train, *sets):
    cfg = C.resolve(None, [f"data.train={train}", *sets])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = pipeline.prepare_data(cfg, tmp_path / name)
    return data, [str(w.message) for w in caught]


def _columns(data):
    out = {}
    for split, ds in data.datasets.items():
        out[split] = [b"".join(bytes(p) for p in col.digest_parts()) for col in (ds._inputs, ds._target)]
        out[split].append(ds._ids.take(np.arange(len(ds._ids))).digest() if hasattr(ds._ids, "digest")
                          else repr([ds._ids.get(i) for i in range(len(ds._ids))]).encode())
    return out


def test_disk_storage_prepares_the_same_bytes_and_leaves_no_file(tmp_path, monkeypatch):
    train = _write_docs(tmp_path / "train.csv", 300)
    monkeypatch.setattr(recordstore, "CHUNK_ROWS", 7)  # many chunks, each flushed to the files
    monkeypatch.setattr(recordstore, "ENCODE_TOKENS", 50)
    common = ["data.max_length=12", "data.truncate_keep=head_tail", "data.long_sequences=truncate"]
    memory, w_mem = _prepare(tmp_path, "mem", train, *common)
    spill = tmp_path / "spill"
    disk, w_disk = _prepare(tmp_path, "disk", train, *common, "data.storage=disk", f"data.spill_dir={spill}")
    assert w_mem == w_disk
    assert _columns(memory) == _columns(disk)
    assert memory.prep.vocab == disk.prep.vocab
    assert (tmp_path / "mem" / "splits.json").read_bytes() == (tmp_path / "disk" / "splits.json").read_bytes()
    for split, ds in disk.datasets.items():  # the token ids and offsets are mapped from files ...
        assert is_disk_backed(ds._inputs.values) and is_disk_backed(ds._inputs.offsets), split
        assert is_disk_backed(ds._ids.numbers) and is_disk_backed(ds._ids.which), split
        assert not is_disk_backed(memory.datasets[split]._inputs.values)
        with pytest.raises(ValueError):  # ... read-only
            ds._inputs.values[0] = 1
    assert disk.report["storage"]["mode"] == "disk" and disk.report["storage"]["bytes"] > 300 * 12 * 4
    assert "storage" not in memory.report
    assert os.listdir(spill) == []  # each file was unlinked once made: nothing to clean up, even after a crash
    assert sorted(os.listdir(tmp_path / "disk")) == sorted(os.listdir(tmp_path / "mem"))
    # the examples read back alike (the model's view)
    a, b = memory.datasets["train"].examples, disk.datasets["train"].examples
    assert [e.inputs.tolist() for e in a] == [e.inputs.tolist() for e in b]


def test_disk_storage_keeps_the_tokens_out_of_the_heap(tmp_path, monkeypatch):
    train = _write_docs(tmp_path / "train.csv", 3000, lo=200, hi=400)  # ~900k tokens: 3.6 MB per int32 copy
    monkeypatch.setattr(recordstore, "CHUNK_ROWS", 50)  # the transients of reading and encoding are bounded by
    monkeypatch.setattr(recordstore, "ENCODE_TOKENS", 20_000)  # these (at scale: the defaults), the kept data not
    peaks = {}
    for storage in ("memory", "disk"):
        tracemalloc.start()
        data, _ = _prepare(tmp_path, storage, train, f"data.storage={storage}", "data.long_sequences=truncate")
        peaks[storage] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(data.datasets["train"]) > 2300
    assert peaks["disk"] < 0.4 * peaks["memory"], peaks


def _weights(run):
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    folder = run / "checkpoints" / best["checkpoint"] if "checkpoint" in best else None
    files = sorted((folder or run / "checkpoints").rglob("*.safetensors"))
    assert files, list((run / "checkpoints").rglob("*"))
    return {f.name: load_file(f) for f in files}


def test_cli_training_on_disk_gives_the_model_of_training_in_memory(tmp_path, capsys):
    data = write_text_csv(tmp_path / "reviews.csv")
    sets = [*SMALL_CLI, "data.text_column=review", "data.label_column=stars"]
    args = [x for s in sets for x in ("--set", s)]
    assert main(["train", str(data), "--out", str(tmp_path / "mem"), *args]) == 0
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(tmp_path / "disk"), *args, "--set", "data.storage=disk"]) == 0
    err = capsys.readouterr().err
    assert "on disk (data.storage)" in err and "memory-mapped" in err
    mem, disk = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("mem", "disk"))
    assert mem["metrics"] == disk["metrics"] and mem["best_epoch"] == disk["best_epoch"]
    assert disk["data"]["storage"]["mode"] == "disk"
    wm, wd = _weights(tmp_path / "mem"), _weights(tmp_path / "disk")
    assert wm.keys() == wd.keys()
    for name in wm:
        for key in wm[name]:
            np.testing.assert_array_equal(wm[name][key], wd[name][key])
    # where the rows are kept is not part of the data a resume must find again
    cfg = C.resolve(None, [f"data.train={data}"])
    assert data_settings(cfg) == data_settings(C.resolve(None, [f"data.train={data}", "data.storage=disk",
                                                                  "data.spill_dir=/elsewhere"]))


def test_disk_storage_where_it_cannot_apply_is_said_before_training(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("source\ttarget\n" + "".join(f"a b {i}\t{i} b a\n" for i in range(40)))
    run = tmp_path / "s2s"
    assert main(["train", str(pairs), "--task", "seq2seq", "--out", str(run), "--set", "data.storage=disk",
                 "--set", "train.progress=none"]) == 2
    err = capsys.readouterr().err
    assert "data.storage" in err and "seq2seq" in err and "Traceback" not in err
    assert not (run / "checkpoints").exists()
    # numeric sequences are read whole: a warning says they stay in memory, and the data are prepared
    series = write_numeric_jsonl(tmp_path / "series.jsonl", n=60)
    data, caught = _prepare(tmp_path, "num", series, "data.storage=disk")
    assert any("held in memory" in w and "series.jsonl" in w for w in caught), caught
    assert len(data.datasets["train"]) > 0
    # a spill directory that cannot be made: the directory and the fix are named, nothing trains
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    text = write_text_csv(tmp_path / "reviews.csv")
    assert main(["train", str(text), "--out", str(tmp_path / "bad"), "--set", "data.text_column=review",
                 "--set", "data.label_column=stars", "--set", "data.storage=disk",
                 "--set", f"data.spill_dir={blocker / 'sub'}", "--set", "train.progress=none"]) == 2
    err = capsys.readouterr().err
    assert str(blocker / "sub") in err and "data.spill_dir" in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "checkpoints").exists()
