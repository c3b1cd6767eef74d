"""A training file of text rows read in chunks into a `RecordStore` (issue 14: peak memory) prepares exactly
what a whole-file read prepares: the same datasets, vocabulary, labels, splits.json, rejects, warnings and errors,
with a fraction of the memory."""

import csv
import json
import tracemalloc
import warnings

import numpy as np
import pytest

from rnnkit import config as C
from rnnkit.data import pipeline, recordstore
from rnnkit.data.readers import read_records
from rnnkit.data.recordstore import Records, read_file
from rnnkit.errors import DataError

WORDS = [f"w{i}" for i in range(300)]


def _write(path, rows, *, seed=0, header=("text", "label"), extra=None):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(rows):
            n = int(rng.integers(2, 14))
            words = [WORDS[j] for j in rng.zipf(1.5, size=n) % len(WORDS)]
            label = "pos" if words[0] < "w150" else "neg"
            row = [" ".join(words) + (", quoted" if i % 17 == 0 else ""), label]
            out.writerow(extra(i, row) if extra else row)
    return path


def _whole(path, *, spill=None, **options):
    """The whole-file read, in `read_file`'s place (data.storage=memory: no spill)."""
    assert spill is None
    return read_records(path, **options)


def _prepare(cfg, run_dir, monkeypatch, *, chunked: bool):
    with monkeypatch.context() as m:
        if chunked:
            m.setattr(recordstore, "CHUNK_ROWS", 7)
            m.setattr(recordstore, "ENCODE_TOKENS", 20)  # several encoding blocks too
        else:
            m.setattr(pipeline, "read_file", _whole)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = pipeline.prepare_data(cfg, run_dir)
    return data, [str(w.message) for w in caught]


def _same(a, b):
    assert a.prep.vocab == b.prep.vocab and a.prep.labels.to_dict() == b.prep.labels.to_dict()
    assert a.datasets.keys() == b.datasets.keys()
    for split in a.datasets:
        xa, xb = a.datasets[split].examples, b.datasets[split].examples
        assert [e.id for e in xa] == [e.id for e in xb], split
        for ea, eb in zip(xa, xb, strict=True):
            assert ea.inputs.tolist() == eb.inputs.tolist() and int(ea.target) == int(eb.target)
    def text(report):  # the rejects file lies in each run's own directory
        return json.dumps(report, sort_keys=True, default=str).replace("/whole/", "/run/").replace("/chunked/", "/run/")

    assert text(a.report) == text(b.report)


def test_chunked_read_prepares_what_a_whole_read_prepares(tmp_path, monkeypatch):
    train = _write(tmp_path / "train.csv", 200)
    test = _write(tmp_path / "test.csv", 30, seed=1)
    cfg = C.resolve(None, [f"data.train={train}", f"data.test={test}", "data.max_length=8",
                           "data.long_sequences=truncate", "data.min_freq=2"])
    whole, w1 = _prepare(cfg, tmp_path / "whole", monkeypatch, chunked=False)
    chunked, w2 = _prepare(cfg, tmp_path / "chunked", monkeypatch, chunked=True)
    _same(whole, chunked)
    assert w1 == w2
    assert whole.report["truncation"]["splits"]["train"]["cut_rows"] > 0  # the cut rows were counted alike
    assert (tmp_path / "whole" / "splits.json").read_bytes() == (tmp_path / "chunked" / "splits.json").read_bytes()
    assert (tmp_path / "whole" / "vocab.json").read_bytes() == (tmp_path / "chunked" / "vocab.json").read_bytes()


def test_records_are_held_as_columns_for_text_and_numeric_rows_and_read_whole_otherwise(tmp_path):
    train = _write(tmp_path / "train.csv", 50)
    result = read_file(train, chunk_rows=7)
    assert isinstance(result.records, Records) and len(result.records) == 50 == result.rows
    assert [r.tokens for r in result.records] == [r.tokens for r in read_records(train).records]
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("sequence,label\n" + '"[1, 2, 3]",a\n"[4, 5]",b\n' * 10)
    got = read_file(numeric, chunk_rows=7)
    assert isinstance(got.records, Records) and got.records.store.kind == "numeric"  # numeric rows: columns too
    assert [r.values.tolist() for r in got.records] == [r.values.tolist() for r in read_records(numeric).records]
    long = tmp_path / "long.csv"
    long.write_text("series,t,x,label\n" + "".join(f"s{i // 3},{i % 3},{i},a\n" for i in range(30)))
    got = read_file(long, chunk_rows=7, id_column="series", time_column="t")
    assert isinstance(got.records, list) and len(got.records) == 10  # a sequence spans chunks: read whole


def test_bad_rows_labels_and_ids_hold_across_chunks(tmp_path, monkeypatch):
    """Bad rows in several chunks are skipped into the same rejects file; "1" and "1.0" merge across chunks and
    files, spaces around a label are named; a duplicate id five chunks after its first use is found."""

    def mangle(i, row):
        label = ["1", "0"][i % 2]
        if i == 3:
            label = "1.0"
        if i == 40:
            label = " 0 "
        if i in (12, 55, 90):
            label = ""
        return [f"id{i if i != 47 else 2}", *row[:1], label]

    train = _write(tmp_path / "train.csv", 120, header=("id", "text", "label"), extra=mangle)
    val = tmp_path / "val.csv"
    val.write_text("id,text,label\nv1,w1 w2,1.0\nv2,w3,0\nv3,w4 w5,7\nv4,w2,1\n")
    cfg = C.resolve(None, [f"data.train={train}", f"data.val={val}", "data.id_column=id", "data.bad_rows=skip",
                           "data.max_bad_fraction=0.1", "data.test_fraction=0"])
    whole, w1 = _prepare(cfg, tmp_path / "whole", monkeypatch, chunked=False)
    chunked, w2 = _prepare(cfg, tmp_path / "chunked", monkeypatch, chunked=True)
    _same(whole, chunked)
    assert w1 == w2
    assert any("same number" in w for w in w2) and any("surrounding spaces" in w for w in w2)
    rejects = (tmp_path / "chunked" / "rejects.jsonl").read_text()
    assert rejects == (tmp_path / "whole" / "rejects.jsonl").read_text()
    lines = [json.loads(x) for x in rejects.splitlines()]
    assert len(lines) == 5  # 3 missing labels, the duplicate id, val's unseen label 7
    assert any("duplicate id" in p["rule"] for x in lines for p in x["problems"])
    assert sorted(chunked.prep.labels.to_dict()["labels"]) == ["0", "1"]

    cfg = C.resolve(None, [f"data.train={train}", "data.id_column=id"])  # the default policy: error
    with monkeypatch.context() as m:
        m.setattr(recordstore, "CHUNK_ROWS", 7)
        with pytest.raises(DataError) as err:
            pipeline.prepare_data(cfg, None)
    assert "4 bad row(s)" in str(err.value) and ":49" in str(err.value)  # the duplicate id on line 49


def _prepare_peaks(cfg, monkeypatch, chunk_rows: int) -> dict[bool, int]:
    """tracemalloc's peak during `prepare_data`, read in chunks of `chunk_rows` rows (True) and whole (False)."""
    peaks = {}
    for chunked in (False, True):
        with monkeypatch.context() as m:
            m.setattr(recordstore, "CHUNK_ROWS", chunk_rows)
            if not chunked:
                m.setattr(pipeline, "read_file", _whole)
            tracemalloc.start()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pipeline.prepare_data(cfg, None)
                peaks[chunked] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    return peaks


def test_chunked_read_needs_a_fraction_of_the_memory(tmp_path, monkeypatch):
    """tracemalloc's peak (the Python allocator: deterministic for a given input) during `prepare_data` on 12,000
    rows in chunks of 800: the chunked read holds one chunk of Python objects, the whole read every row's."""
    train = _write(tmp_path / "train.csv", 12_000)
    cfg = C.resolve(None, [f"data.train={train}"])
    peaks = _prepare_peaks(cfg, monkeypatch, 800)
    assert peaks[True] < 0.3 * peaks[False], peaks


def test_columns_built_at_once_equal_the_row_by_row_builder(tmp_path, monkeypatch):
    """The store's encoding builds each column at once: its storage (what the resume fingerprint hashes) is the
    row-by-row builder's, with cut rows (head + tail kept) and without targets."""
    train = _write(tmp_path / "train.csv", 150)
    cfg = C.resolve(None, [f"data.train={train}", "data.max_length=6", "data.long_sequences=truncate",
                           "data.truncate_keep=head_tail"])
    whole, _ = _prepare(cfg, None, monkeypatch, chunked=False)
    chunked, _ = _prepare(cfg, None, monkeypatch, chunked=True)
    for split in whole.datasets:
        a, b = whole.datasets[split].digest_parts(values=True), chunked.datasets[split].digest_parts(values=True)
        assert [bytes(x) for x in a] == [bytes(x) for x in b], split
    records = read_file(train, chunk_rows=7).records
    truncation = pipeline.truncation_for(cfg)
    rows_a, _ = pipeline.encode_dataset(list(records), whole.prep, truncation=truncation, with_targets=False)
    rows_b, cut = pipeline.encode_dataset(records, whole.prep, truncation=truncation, with_targets=False)
    assert [bytes(x) for x in rows_a.digest_parts(values=True)] == [bytes(x) for x in rows_b.digest_parts(values=True)]
    assert cut > 0 and rows_b[0].target is None


def test_label_sightings_match_a_loop_over_the_records(tmp_path):
    """`reconcile_labels`' first rows and spellings from the store equal a loop over the records, also when a
    label's first row is spelled with spaces and its plain spelling comes later."""
    from rnnkit.data.recordstore import label_sightings

    path = tmp_path / "t.csv"
    path.write_text("text,label\na b, 0 \nc,1\nd,0\ne, 1\nf,0 \ng,2\nh,0\n")
    store = read_file(path, chunk_rows=3).records
    assert isinstance(store, Records)
    as_list = read_records(path).records

    def plain(sightings):
        first, raw, raw_first = sightings
        return ({k: r.line for k, r in first.items()}, {k: dict(v) for k, v in raw.items()},
                {k: r.line for k, r in raw_first.items()})

    assert plain(label_sightings(store)) == plain(label_sightings(as_list))
    assert plain(label_sightings(store))[2]["0"] == 4  # "0" as written first on line 4, after " 0 " on line 2


def test_long_rows_end_a_chunk_by_characters(tmp_path, monkeypatch):
    """Long documents: a chunk ends once its raw text reaches CHUNK_CHARS, so 10,000 rows of e-mails are not one
    chunk of the whole file; the records are the whole read's."""
    path = tmp_path / "docs.jsonl"
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for i in range(40):
            fh.write(json.dumps({"text": " ".join(rng.choice(WORDS, size=200)), "label": "ab"[i % 2]}) + "\n")
    sizes = []
    real = recordstore.read_records

    def spy(p, **options):
        from rnnkit.data.chunkscope import served_table
        table = served_table(p)
        sizes.append(len(table.rows) if table is not None else None)
        return real(p, **options)

    monkeypatch.setattr(recordstore, "read_records", spy)
    monkeypatch.setattr(recordstore, "CHUNK_CHARS", 5_000)  # a row is about 870 characters
    got = read_file(path)
    expected, rows, chars = [], 0, 0  # a chunk ends with the row that brings it to 5,000 characters
    for line in path.read_text().splitlines():
        rows, chars = rows + 1, chars + len(line)
        if chars >= 5_000:
            expected, rows, chars = [*expected, rows], 0, 0
    expected += [rows] if rows else []
    assert isinstance(got.records, Records) and sizes == expected and len(expected) > 4
    assert [r.tokens for r in got.records] == [r.tokens for r in real(path).records]


def _write_numeric(path, rows, *, seed=0, channels=2, odd=(), header=("sequence", "label"), extra=None):
    """Numeric rows (a JSON list of steps, `channels` values a step) of 1-12 steps; the rows in `odd` get one
    channel fewer (a row the reader rejects against the file's most common count)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(rows):
            steps = np.round(rng.normal(size=(int(rng.integers(1, 13)), channels - (i in odd))), 3)
            row = [json.dumps(steps.tolist()), "up" if steps[:, 0].sum() > 0 else "down"]
            out.writerow(extra(i, row) if extra else row)
    return path


def _same_numeric(a, b):
    """`_same` for numeric data: the standardizer and every dataset column byte for byte."""
    assert a.prep.kind == b.prep.kind == "numeric" and a.prep.num_features == b.prep.num_features
    assert a.prep.standardizer.mean.tobytes() == b.prep.standardizer.mean.tobytes()
    assert a.prep.standardizer.std.tobytes() == b.prep.standardizer.std.tobytes()
    assert a.prep.labels.to_dict() == b.prep.labels.to_dict() and a.datasets.keys() == b.datasets.keys()
    for split in a.datasets:
        da, db = a.datasets[split].digest_parts(values=True), b.datasets[split].digest_parts(values=True)
        assert [bytes(x) for x in da] == [bytes(x) for x in db], split
        assert [e.id for e in a.datasets[split].examples] == [e.id for e in b.datasets[split].examples]

    def text(report):
        return json.dumps(report, sort_keys=True, default=str).replace("/whole/", "/run/").replace("/chunked/", "/run/")

    assert text(a.report) == text(b.report)


def test_numeric_rows_read_in_chunks_prepare_what_a_whole_read_prepares(tmp_path, monkeypatch):
    """Numeric rows in chunks of 7: the odd-channel rows (one in several chunks, never a chunk's majority) are
    rejected as the whole read rejects them (the same rejects file), and the standardizer, the cut rows, every
    dataset's bytes, splits.json and the report are the whole read's."""
    train = _write_numeric(tmp_path / "train.csv", 200, odd={3, 30, 31, 100, 199}, header=("id", "sequence", "label"),
                           extra=lambda i, row: [f"s{i}", *row])
    test = _write_numeric(tmp_path / "test.csv", 30, seed=1, odd={5}, header=("id", "sequence", "label"),
                          extra=lambda i, row: [f"t{i}", *row])
    cfg = C.resolve(None, [f"data.train={train}", f"data.test={test}", "data.id_column=id", "data.max_length=8",
                           "data.long_sequences=truncate", "data.bad_rows=skip", "data.max_bad_fraction=0.1"])
    whole, w1 = _prepare(cfg, tmp_path / "whole", monkeypatch, chunked=False)
    chunked, w2 = _prepare(cfg, tmp_path / "chunked", monkeypatch, chunked=True)
    assert isinstance(read_file(train, chunk_rows=7).records, Records)
    _same_numeric(whole, chunked)
    assert w1 == w2
    assert whole.report["truncation"]["splits"]["train"]["cut_rows"] > 0
    for name in ("splits.json", "rejects.jsonl"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes(), name
    rejects = [json.loads(x) for x in (tmp_path / "chunked" / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rejects if r["file"] == str(train)) == [5, 32, 33, 102, 201]
    assert all("expected 2 channel(s)" in r["problems"][0]["rule"] for r in rejects)


def test_a_chunk_whose_most_common_channel_count_differs_reads_the_file_whole(tmp_path):
    """The first 7 rows (a chunk) have 1 channel, the other 13 have 2: the chunk's own majority would keep the
    1-channel rows, the file's rejects them. The file is read whole, and its problems are the whole read's."""
    path = _write_numeric(tmp_path / "t.csv", 20, odd=set(range(7)))
    got, whole = read_file(path, chunk_rows=7), read_records(path)
    assert isinstance(got.records, list)
    assert [r.id for r in got.records] == [r.id for r in whole.records] and len(got.records) == 13
    assert [(p.line, p.rule) for p in got.problems] == [(p.line, p.rule) for p in whole.problems]
    assert len(got.problems) == 7 and "expected 2 channel(s)" in got.problems[0].rule


def test_numeric_rows_in_chunks_need_a_fraction_of_the_memory(tmp_path, monkeypatch):
    """tracemalloc's peak during `prepare_data` on 8,000 numeric rows in chunks of 800: the chunked read holds one
    chunk of table rows and `Record`s, the whole read every row's."""
    train = _write_numeric(tmp_path / "train.csv", 8_000)
    cfg = C.resolve(None, [f"data.train={train}"])
    peaks = _prepare_peaks(cfg, monkeypatch, 800)
    assert peaks[True] < 0.5 * peaks[False], peaks


def test_a_regression_file_read_in_chunks_prepares_what_a_whole_read_prepares(tmp_path, monkeypatch):
    """The regress family's training file (numeric rows, one target) in chunks of 7: its targets are held as one
    column of the store; a row whose target is not a number is rejected as the whole read rejects it; the random
    split, the target scaling, every dataset's bytes (the z-scored target and the target in its units) and the
    rejects file are the whole read's."""
    from rnnkit.tasks import regress

    def target(i, row):
        values = json.loads(row[0])
        return [json.dumps(values), "n/a" if i in (4, 60) else f"{sum(v[0] for v in values):.3f}"]

    train = _write_numeric(tmp_path / "train.csv", 150, extra=target)
    cfg = C.resolve(None, [f"data.train={train}", "task=regress", "data.bad_rows=skip", "data.max_bad_fraction=0.1"])
    got = {}
    for name in ("whole", "chunked"):
        with monkeypatch.context() as m:
            m.setattr(recordstore, "CHUNK_ROWS", 7)
            if name == "whole":
                m.setattr(regress, "read_file", _whole)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got[name] = regress.prepare(cfg, tmp_path / name)
    whole, chunked = got["whole"], got["chunked"]
    assert (whole.prep.target_mean, whole.prep.target_std) == (chunked.prep.target_mean, chunked.prep.target_std)
    assert whole.prep.standardizer.mean.tobytes() == chunked.prep.standardizer.mean.tobytes()
    for split in whole.datasets:
        da, db = whole.datasets[split].digest_parts(values=True), chunked.datasets[split].digest_parts(values=True)
        assert [bytes(x) for x in da] == [bytes(x) for x in db], split
    for name in ("splits.json", "rejects.jsonl"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes(), name
    rejects = [json.loads(x) for x in (tmp_path / "chunked" / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [6, 62]
    held = regress._read(train, pipeline.reader_options(cfg), ["label"], require=True, chunked=True).records
    assert isinstance(held, Records) and held.store.columns["targets"].shape == (150, 1)
    assert [float(r.extra["targets"][0]) for r in held][:2] == [float(x) for x in
                                                               [r.label for r in read_records(train).records][:2]]
