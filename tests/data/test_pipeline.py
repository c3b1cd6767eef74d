"""The data path from config to datasets: splits, train-only fitting, truncation, saved artefacts."""

import csv
import json

import numpy as np
import pytest

from fakedata import write_numeric_jsonl, write_text_csv
from rnnkit import config as C
from rnnkit.data.pipeline import Preprocessing, prepare_data
from rnnkit.data.readers import read_records
from rnnkit.errors import DataError, Problem


def _shifted(path, shift, seed):
    write_numeric_jsonl(path, n=90, seed=seed)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    with open(path, "w") as fh:
        for r in rows:
            r["sequence"] = (np.asarray(r["sequence"]) * 3 + shift).tolist()
            fh.write(json.dumps(r) + "\n")
    return path


def test_standardizer_is_fitted_on_train_only(tmp_path):
    train = write_numeric_jsonl(tmp_path / "train.jsonl", n=120)
    val = _shifted(tmp_path / "val.jsonl", 50.0, 1)
    test = _shifted(tmp_path / "test.jsonl", -50.0, 2)
    cfg = C.resolve(None, [f"data.train={train}", f"data.val={val}", f"data.test={test}"])
    data = prepare_data(cfg, tmp_path)
    steps = np.concatenate([r.values for r in read_records(train).records])  # (sum T, C) real steps only
    saved = Preprocessing.load(tmp_path).standardizer
    np.testing.assert_allclose(saved.mean, steps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved.std, steps.std(0), rtol=1e-5)
    train_x = np.concatenate([ex.inputs.numpy() for ex in data.datasets["train"].examples])
    assert abs(train_x.mean()) < 1e-4 and abs(train_x.std() - 1) < 1e-3
    val_x = np.concatenate([ex.inputs.numpy() for ex in data.datasets["val"].examples])
    assert val_x.mean() > 10  # val is NOT re-centred with its own statistics


def test_seeded_split_is_recorded_and_reproducible(tmp_path, text_csv):
    cfg = C.resolve(None, [f"data.train={text_csv}", "data.text_column=review", "data.label_column=stars"])
    a = prepare_data(cfg, tmp_path / "a")
    b = prepare_data(cfg, tmp_path / "b")
    ids = {k: [ex.id for ex in v.examples] for k, v in a.datasets.items()}
    assert ids == {k: [ex.id for ex in v.examples] for k, v in b.datasets.items()}
    assert set(ids["train"]).isdisjoint(ids["val"]) and set(ids["val"]).isdisjoint(ids["test"])
    recorded = json.loads((tmp_path / "a" / "splits.json").read_text())
    assert sorted(recorded["splits"]["val"]) == sorted(ids["val"])


def test_vocab_from_train_only_and_truncation_counted(tmp_path):
    train = write_text_csv(tmp_path / "train.csv", n=100)
    val = tmp_path / "val.csv"
    val.write_text("review,stars\nzebra " * 1 + "great " * 30 + ",pos\nawful movie,neg\n")
    cfg = C.resolve(None, [f"data.train={train}", f"data.val={val}", "data.text_column=review",
                           "data.label_column=stars", "data.max_length=8", "data.test_fraction=0",
                           "data.long_sequences=truncate"])  # most rows are longer than 8: auto would read windows
    data = prepare_data(cfg, tmp_path / "run")
    assert "zebra" not in data.prep.vocab
    assert data.report["truncated"]["val"] == 1
    assert max(data.datasets["val"].lengths) == 8
    long_rows = sum(1 for line in train.read_text().splitlines()[1:] if len(line.split(",")[0].split()) > 8)
    assert data.report["truncated"]["train"] == long_rows > 0


def test_unseen_val_label_fails_before_training(tmp_path):
    train = write_text_csv(tmp_path / "train.csv", n=50)
    val = tmp_path / "val.csv"
    val.write_text("review,stars\ngreat film,pos\nmeh,neutral\n")
    cfg = C.resolve(None, [f"data.train={train}", f"data.val={val}", "data.text_column=review",
                           "data.label_column=stars"])
    with pytest.raises(DataError, match=r"val.csv:3.*neutral"):
        prepare_data(cfg, tmp_path / "run")


def _review_file(path, rows, delimiter=","):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(["review", "stars"])
        w.writerows(rows)
    return path


def _cfg(train, *extra):
    return C.resolve(None, [f"data.train={train}", "data.text_column=review", "data.label_column=stars", *extra])


def test_item19_vocabulary_counts_only_the_tokens_the_model_sees(tmp_path):
    rows = [(f"good film number{i}", "pos" if i % 2 else "neg") for i in range(40)]
    long = " ".join(["intro"] * 3 + [f"late{j}" for j in range(1000)] + ["ending"] * 2)  # 1,005 tokens
    train = _review_file(tmp_path / "reviews.csv", [*rows, (long, "pos")])
    val = _review_file(tmp_path / "val.csv", rows[:12])
    split = [f"data.val={val}", "data.test_fraction=0"]
    head = prepare_data(_cfg(train, "data.max_length=5", *split))
    assert head.report["truncated"]["train"] == 1
    assert "intro" in head.prep.vocab and "late1" in head.prep.vocab  # the first 5: intro x3, late0, late1
    assert "late2" not in head.prep.vocab and "ending" not in head.prep.vocab
    assert len(head.prep.vocab) == 2 + 2 + 40 + 3  # <pad> <unk>, good film, number0..39, intro late0 late1
    tail = prepare_data(_cfg(train, "data.max_length=5", "data.truncate_keep=tail", *split))
    assert "ending" in tail.prep.vocab and "late997" in tail.prep.vocab  # the last 5: late997..late999, ending x2
    assert "intro" not in tail.prep.vocab and "late996" not in tail.prep.vocab
    full = prepare_data(_cfg(train, *split))  # max_length 512: intro x3 and late0..late508
    assert "late508" in full.prep.vocab and "late509" not in full.prep.vocab and "ending" not in full.prep.vocab


def test_item5_case_and_space_variants_are_warned_and_kept_apart(tmp_path):
    rows = [(f"good film number{i}", "pos" if i % 2 else "neg") for i in range(40)]
    rows[3] = ("Good film", "Pos")
    rows[5] = ("good film", " pos")
    train = _review_file(tmp_path / "reviews.csv", rows)
    with pytest.warns(UserWarning) as caught:
        data = prepare_data(_cfg(train, "data.val_fraction=0.2", "data.test_fraction=0"))
    warned = [str(w.message) for w in caught]
    assert (f"labels 'pos' (19 rows, first {train}:3) and 'Pos' (1 row, first {train}:5) in column 'stars' differ "
            "only by case and stay 2 classes; write them alike if they mean one class") in warned
    assert (f"labels 'pos' (18 rows, first {train}:3) and ' pos' (1 row, first {train}:7) in column 'stars' differ "
            "only by surrounding spaces, which are ignored: read as one class 'pos'") in warned
    assert data.prep.labels.labels == ["Pos", "neg", "pos"]  # not merged: "Pos" may be a class of its own


def test_item5_numbers_among_text_labels_stay_apart(tmp_path):
    rows = [(f"good film number{i}", ["1", "2", "other"][i % 3]) for i in range(45)]
    rows[4] = ("good film", "1.0")
    train = _review_file(tmp_path / "reviews.csv", rows)
    with pytest.warns(UserWarning, match=r"labels '1' \(15 rows.*and '1.0' \(1 row.*are the same number but stay 2 "
                      r"classes, because the column also holds labels that are not numbers \(e.g. 'other'\)"):
        data = prepare_data(_cfg(train, "data.val_fraction=0.2", "data.test_fraction=0"))
    assert "1.0" in data.prep.labels and "1" in data.prep.labels


def test_item5_float_labels_across_train_and_val_files(tmp_path):
    train = _review_file(tmp_path / "train.csv", [(f"film {i}", str(i % 3)) for i in range(30)])
    val = _review_file(tmp_path / "val.csv", [(f"film {i}", f"{i % 3}.0") for i in range(12)])
    with pytest.warns(UserWarning, match="are the same number: read as one class '2'"):
        data = prepare_data(_cfg(train, f"data.val={val}", "data.test_fraction=0"))  # no unseen-label error
    assert data.prep.labels.labels == ["0", "1", "2"]
    assert sorted(int(ex.target) for ex in data.datasets["val"].examples) == [0] * 4 + [1] * 4 + [2] * 4


def test_item4_nothing_is_written_when_the_data_check_fails(tmp_path):
    train = _review_file(tmp_path / "reviews.csv", [(f"film {i}", "pos") for i in range(20)])
    with pytest.raises(DataError, match=r"only one class in the training data \(20 rows, all class 'pos'\)"):
        prepare_data(_cfg(train), tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_item12_a_data_error_without_listed_problems_ends_without_a_colon():
    assert str(DataError([], header="no usable series left")) == "no usable series left"
    assert str(DataError([Problem("a.csv", 2, "label", "x", "bad", "fix it")])).endswith(":\n  - a.csv:2 column "
                                                                                          "'label': value 'x': bad. "
                                                                                          "Fix: fix it")


def test_an_arrow_file_prepares_the_same_data_as_the_same_rows_in_parquet(tmp_path):
    """data.storage=memory (and data.format=arrow given explicitly): an Arrow IPC file is read as the same rows as
    Parquet: the same seeded split, vocabulary, labels and encoded examples."""
    pytest.importorskip("pyarrow")
    import pyarrow.csv
    import pyarrow.feather
    import pyarrow.parquet as pq

    table = pyarrow.csv.read_csv(write_text_csv(tmp_path / "rows.csv", n=300))
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=64)
    pyarrow.feather.write_feather(table, tmp_path / "d.feather", chunksize=64)
    pyarrow.feather.write_feather(table, tmp_path / "d.data", chunksize=50)  # no known extension
    sets = ["data.text_column=review", "data.label_column=stars"]
    data = {name: prepare_data(C.resolve(None, [f"data.train={tmp_path / name}", *sets, *extra]), tmp_path / name[2:])
            for name, extra in (("d.parquet", []), ("d.feather", []), ("d.data", ["data.format=arrow"]))}
    base = data["d.parquet"]
    for name in ("d.feather", "d.data"):
        got = data[name]
        assert got.report["sizes"] == base.report["sizes"] == {"train": 240, "val": 30, "test": 30}
        assert got.prep.vocab.tokens == base.prep.vocab.tokens and got.prep.labels.labels == base.prep.labels.labels
        for split in ("train", "val", "test"):
            a, b = got.datasets[split], base.datasets[split]
            assert [x.id.split(":")[1] for x in a.examples] == [x.id.split(":")[1] for x in b.examples]
            assert all(np.array_equal(x.inputs.numpy(), y.inputs.numpy()) and x.target == y.target
                       for x, y in zip(a.examples, b.examples, strict=True))
