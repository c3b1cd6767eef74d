"""Issue 13: `rnnkit predict` at scale. A table file is read, predicted and written one chunk at a time
(`rnnkit.data.chunked`): the predictions equal a whole-file read (the same rows, ids, lines and labels; the
probabilities to the float32 rounding of batches formed otherwise: on some CPUs, e.g. MKL's AVX-512 kernels, a
row's figures change in the 8th digit with its batch-mates), memory holds one chunk, bad rows are judged over the
whole file, and OUTPUT appears only complete."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fakedata import write_reversal_tsv, write_text_csv
from rnnkit import api
from rnnkit import config as C
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks import get_task

TINY = ["model.hidden_size=16", "model.embedding_dim=16", "train.max_epochs=1", "train.progress=none",
        "train.threads=1", "train.min_epoch_steps=1"]
WHOLE = 10**9  # one chunk: the whole file


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_run")
    write_text_csv(root / "train.csv", n=200)
    out = root / "run"
    api.train(C.resolve(None, [*TINY, f"data.train={root / 'train.csv'}", "data.text_column=review",
                               "data.label_column=stars"]), out)
    return out


def _awkward_csv(path: Path, n: int = 120) -> Path:
    """Text rows, some with quoted commas, quotes and line breaks inside the text (so lines != rows)."""
    write_text_csv(path, n=n, seed=3)
    lines = path.read_text().splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        text, label = line.rsplit(",", 1)
        if i % 9 == 4:
            text = '"' + text.strip('"') + ', and ""so on""\nnext line"'
        out.append(f"{text},{label}")
    path.write_text("\n".join(out) + "\n")
    return path


def _rows(output: bytes, ext: str) -> list[dict]:
    if ext == ".jsonl":
        return [json.loads(line) for line in output.decode().splitlines()]
    return list(csv.DictReader(io.StringIO(output.decode(), newline="")))


def _same(x, y) -> bool:
    """Equal, numbers within 2e-6 (the 6 printed decimals, give or take the last): CSV text or JSON values."""
    if isinstance(x, dict) and isinstance(y, dict):
        return list(x) == list(y) and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, float | str) and isinstance(y, float | str) and "." in str(x) and "." in str(y):
        try:
            return abs(float(x) - float(y)) <= 2e-6
        except ValueError:
            pass
    return x == y


def _assert_same_predictions(got: bytes, whole: bytes, ext: str = ".csv") -> None:
    """The same rows, fields and text; probabilities to 2e-6 (see the module's docstring)."""
    a, b = _rows(got, ext), _rows(whole, ext)
    assert len(a) == len(b) == len(whole.splitlines()) - (ext == ".csv")
    for ra, rb in zip(a, b, strict=True):
        assert _same(ra, rb), (ra, rb)


def _predict(run, data, out, rows, **kw):
    n = api.predict(run, data, out, chunk_rows=rows, **kw)
    return n, Path(out).read_bytes()


@pytest.mark.parametrize("rows", [1, 7, 50])
def test_chunked_csv_equals_whole_file_with_quoted_line_breaks(text_run, tmp_path, rows):
    data = _awkward_csv(tmp_path / "new.csv")
    n_whole, whole = _predict(text_run, data, tmp_path / "whole.csv", WHOLE)
    n, got = _predict(text_run, data, tmp_path / "chunked.csv", rows)
    assert n == n_whole == 120
    _assert_same_predictions(got, whole)
    lines = [r.split(",")[2] for r in whole.decode().splitlines()[1:]]
    assert len(set(lines)) == 120 and lines[-1] == str(len(data.read_text().splitlines()))  # lines of the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.csv", "new.csv", "whole.csv"]  # no temp files


def test_chunked_jsonl_parquet_and_arrow_equal_whole_file(text_run, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather
    import pyarrow.ipc  # noqa: F401 - pa.ipc
    import pyarrow.parquet as pq

    csv_file = write_text_csv(tmp_path / "new.csv", n=90, seed=4)
    rows = [dict(zip(["review", "stars"], line.rsplit(",", 1), strict=True))
            for line in csv_file.read_text().splitlines()[1:]]
    jsonl = tmp_path / "new.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=16)
    feather, ipc_stream = tmp_path / "new.feather", tmp_path / "stream.arrow"  # Arrow IPC: file and stream format
    pyarrow.feather.write_feather(pa.Table.from_pylist(rows), feather, chunksize=16)
    with pa.ipc.new_stream(ipc_stream, pa.Table.from_pylist(rows).schema) as writer:
        writer.write_table(pa.Table.from_pylist(rows), max_chunksize=16)
    predicted = {}
    for data in (jsonl, parquet, feather, ipc_stream):
        for ext in (".csv", ".jsonl"):
            _, whole = _predict(text_run, data, tmp_path / f"whole{ext}", WHOLE)
            _, got = _predict(text_run, data, tmp_path / f"chunked{ext}", 11)
            _assert_same_predictions(got, whole, ext)
        predicted[data.suffix] = whole.decode().replace(data.name, "FILE")  # the .jsonl output; ids name the file
    assert predicted[".feather"] == predicted[".parquet"] == predicted[".arrow"]  # same rows, same predictions


def test_each_chunk_is_read_and_predicted_alone(text_run, tmp_path, monkeypatch):
    """Constant memory in the number of rows: the family's reader never holds more than one chunk."""
    data = write_text_csv(tmp_path / "new.csv", n=1000, seed=6)
    task = get_task("classify")
    sizes = []

    def counting(*args, **kwargs):
        dataset, records = task.load_inference(*args, **kwargs)
        sizes.append(len(records))
        return dataset, records

    monkeypatch.setattr(api, "get_task", lambda name: dataclasses.replace(task, load_inference=counting))
    n, _ = _predict(text_run, data, tmp_path / "p.csv", 64)
    assert n == 1000 and max(sizes) == 64 and len(sizes) == 16 and sum(sizes) == 1000


def test_a_bad_row_in_a_late_chunk_leaves_no_output(text_run, tmp_path):
    data = write_text_csv(tmp_path / "new.csv", n=100, seed=7)
    lines = data.read_text().splitlines()
    lines[90] = "only one field"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    out.write_text("an older file\n")
    with pytest.raises(DataError) as err:
        api.predict(text_run, data, out, chunk_rows=10)
    assert "line 91" in str(err.value) or ":91" in str(err.value)
    assert out.read_text() == "an older file\n"  # untouched: OUTPUT is replaced only when complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "p.csv"]


def test_skipped_bad_rows_are_counted_over_the_whole_file(text_run, tmp_path):
    """Under --bad-rows skip the limit is the whole file's: 3 bad rows of 300 (1%) in three chunks pass at 1%
    with one warning that counts all three; a 0.5% limit fails and names the three rows."""
    data = write_text_csv(tmp_path / "new.csv", n=300, seed=8)
    lines = data.read_text().splitlines()
    for line in (20, 150, 280):  # 0-based index in the file = line - 1
        lines[line - 1] = "broken row without its label field"
    data.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = api.predict(text_run, data, tmp_path / "p.csv", ["data.bad_rows=skip", "data.max_bad_fraction=0.01"],
                        chunk_rows=25)
    assert n == 297
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1 and "skipped 3 bad row(s)" in skipped[0]
    got = {int(r.split(",")[2]) for r in (tmp_path / "p.csv").read_text().splitlines()[1:]}
    assert len(got) == 297 and not got & {20, 150, 280}
    with pytest.raises(DataError) as err:
        api.predict(text_run, data, tmp_path / "q.csv", ["data.bad_rows=skip", "data.max_bad_fraction=0.005"],
                    chunk_rows=25)
    text = str(err.value)
    assert "3 of 300 rows (1.00%) are bad" in text and all(f":{k}" in text or f"line {k}" in text
                                                         for k in (20, 150, 280))
    assert not (tmp_path / "q.csv").exists()


def test_a_chunk_of_only_bad_rows_is_skipped(text_run, tmp_path):
    data = write_text_csv(tmp_path / "new.csv", n=40, seed=9)
    lines = data.read_text().splitlines()
    for i in range(11, 21):  # rows 11..20 = the second chunk of 10
        lines[i] = "bad"
    data.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = api.predict(text_run, data, tmp_path / "p.csv", ["data.bad_rows=skip", "data.max_bad_fraction=0.5"],
                        chunk_rows=10)
    assert n == 30


def test_duplicate_ids_in_different_chunks_are_found(tmp_path):
    write_text_csv(tmp_path / "train.csv", n=120)
    rows = (tmp_path / "train.csv").read_text().splitlines()
    (tmp_path / "train_ids.csv").write_text("\n".join([rows[0] + ",rid"] + [f"{r},r{i}" for i, r in
                                                                             enumerate(rows[1:])]) + "\n")
    run = tmp_path / "run"
    api.train(C.resolve(None, [*TINY, f"data.train={tmp_path / 'train_ids.csv'}", "data.text_column=review",
                               "data.label_column=stars", "data.id_column=rid"]), run)
    new = [f"{r},n{i}" for i, r in enumerate(rows[1:41])]
    new[33] = new[33].rsplit(",", 1)[0] + ",n2"  # line 35 repeats the id of line 4, three chunks later
    (tmp_path / "new.csv").write_text("\n".join([rows[0] + ",rid", *new]) + "\n")
    with pytest.raises(DataError) as err:
        api.predict(run, tmp_path / "new.csv", tmp_path / "p.csv", chunk_rows=10)
    assert "duplicate id (first used on line 4)" in str(err.value)


def test_long_format_is_read_whole(tmp_path):
    """One row per step: a sequence may span chunks, so the file is read whole; the result is the same."""
    rng = np.random.default_rng(0)
    lines = ["series,t,x,label"]
    for s in range(60):
        k = s % 2
        lines += [f"s{s},{t},{np.sin((k + 1) * 0.4 * t) + 0.1 * rng.standard_normal():.4f},c{k}"
                  for t in range(int(rng.integers(5, 15)))]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    api.train(C.resolve(None, [*TINY, f"data.train={tmp_path / 'train.csv'}", "data.id_column=series",
                               "data.time_column=t", "data.input=long"]), run)
    _, whole = _predict(run, tmp_path / "train.csv", tmp_path / "w.csv", WHOLE)
    n, got = _predict(run, tmp_path / "train.csv", tmp_path / "c.csv", 7)
    assert n == 60 and got == whole


@pytest.mark.parametrize("family", ["seq2seq", "regress", "tag"])
def test_other_families_stream_alike(tmp_path, family):
    if family == "seq2seq":
        data = write_reversal_tsv(tmp_path / "train.tsv", n=120)
        cfg = [f"data.train={data}", "--task", "seq2seq"]
    elif family == "regress":
        data = tmp_path / "train.jsonl"
        rng = np.random.default_rng(1)
        data.write_text("".join(json.dumps({"sequence": (x := rng.standard_normal(int(rng.integers(5, 30)))).round(3)
                                            .tolist(), "label": float(x.std())}) + "\n" for _ in range(150)))
        cfg = [f"data.train={data}", "--task", "regress"]
    else:  # CoNLL is not a table: read whole, the same predictions
        data = tmp_path / "train.conll"
        rng = np.random.default_rng(2)
        sents = []
        for _ in range(80):
            vocab = ["the", "a", "cat", "dog", "runs", "sees"]
            words = [str(rng.choice(vocab)) for _ in range(int(rng.integers(3, 8)))]
            sents.append("\n".join(f"{w}\t{'N' if w in ('cat', 'dog') else 'X'}" for w in words))
        data.write_text("\n\n".join(sents) + "\n\n")
        cfg = [f"data.train={data}", "--task", "tag"]
    task = cfg.pop(cfg.index("--task") + 1)
    cfg.remove("--task")
    run = tmp_path / "run"
    api.train(C.resolve(None, [*TINY, f"task={task}", *cfg]), run)
    ext = {"seq2seq": ".tsv", "regress": ".csv", "tag": ".conll"}[family]
    n_whole, whole = _predict(run, data, tmp_path / f"w{ext}", WHOLE)
    n, got = _predict(run, data, tmp_path / f"c{ext}", 9)
    assert n == n_whole > 0
    if family == "regress":  # values to 8 digits: batches of other sizes may round the last one differently
        a, b = (np.loadtxt(io.StringIO(x.decode()), delimiter=",", skiprows=1, usecols=3) for x in (whole, got))
        assert got.splitlines()[0] == whole.splitlines()[0] and np.allclose(a, b, rtol=1e-6, atol=1e-7)
    else:
        assert got == whole


def test_bad_chunk_rows_is_a_config_error(text_run, tmp_path):
    data = write_text_csv(tmp_path / "new.csv", n=10)
    with pytest.raises(ConfigError, match="chunk_rows=0 must be a whole number >= 1"):
        api.predict(text_run, data, tmp_path / "p.csv", chunk_rows=0)


def test_progress_bar_goes_to_stderr(text_run, tmp_path, capsys):
    data = write_text_csv(tmp_path / "new.csv", n=200, seed=2)
    api.predict(text_run, data, tmp_path / "p.csv", chunk_rows=20, progress=True)
    err = capsys.readouterr().err
    assert "predict" in err and "B/s" in err
    api.predict(text_run, data, tmp_path / "q.csv", chunk_rows=20, progress=False)
    assert capsys.readouterr().err == ""


def test_cli_chunk_rows(text_run, tmp_path):
    text = write_text_csv(tmp_path / "new.csv", n=50, seed=2)
    ok = subprocess.run([sys.executable, "-m", "rnnkit.cli", "predict", str(text_run), "--data", str(text), "--output",
                         str(tmp_path / "p.csv"), "--chunk-rows", "8"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "wrote 50 predictions" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "rnnkit.cli", "predict", str(text_run), "--data", str(text), "--output",
                          str(tmp_path / "q.csv"), "--chunk-rows", "0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "chunk_rows=0" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_rows_skip_is_an_option_of_predict_and_evaluate_as_the_error_says(text_run, tmp_path):
    """The bad-row error tells the user to pass `--bad-rows skip`: predict and evaluate take it."""
    data = write_text_csv(tmp_path / "new.csv", n=200, seed=11)
    lines = data.read_text().splitlines()
    lines[50] = "a row without its label field"
    data.write_text("\n".join(lines) + "\n")
    base = [sys.executable, "-m", "rnnkit.cli"]
    failed = subprocess.run([*base, "predict", str(text_run), "--data", str(data), "--output", str(tmp_path / "p.csv")],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "pass `--bad-rows skip`" in failed.stderr
    ok = subprocess.run([*base, "predict", str(text_run), "--data", str(data), "--output", str(tmp_path / "p.csv"),
                         "--bad-rows", "skip"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "wrote 199 predictions" in ok.stdout and "skipped 1 bad row(s)" in ok.stderr
    scored = subprocess.run([*base, "evaluate", str(text_run), "--data", str(data), "--bad-rows", "skip"],
                            capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["rows"] == 199
