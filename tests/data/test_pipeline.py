"""The data path from config to datasets: splits, train-only fitting, truncation, saved artefacts."""

import json

import numpy as np
import pytest

from fakedata import write_numeric_jsonl, write_text_csv
from rnnkit import config as C
from rnnkit.data.pipeline import Preprocessing, prepare_data
from rnnkit.data.readers import read_records
from rnnkit.errors import DataError


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
                           "data.label_column=stars", "data.max_length=8", "data.test_fraction=0"])
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
