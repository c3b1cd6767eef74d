"""Item 7: sequence length edges. Length 0 never gets past the reader (training or prediction), length 1
trains and predicts, over-long rows are cut as configured (head, tail or both ends, counted and reported), and the
packed and padded encoder paths give the same outputs on real positions of a trained model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from relsupport import sets

from fakedata import write_text_csv
from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.collate import Example
from rnnkit.data.pipeline import load_file_for_inference

TINY = ["model.hidden_size=8", "model.embedding_dim=8", "data.batch_size=16", "train.threads=1",
        "train.progress=plain"]


def _predictions(path):
    with open(path) as fh:
        return [[float(v) for k, v in row.items() if k.startswith("p_")] for row in csv.DictReader(fh)]


def test_length_zero_is_rejected_in_training_and_in_prediction(tmp_path, capsys):
    data = write_text_csv(tmp_path / "reviews.csv", n=120)
    lines = data.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:5], '"",pos', '"   ",neg', *lines[5:10]]) + "\n")
    text = ["--text-column", "review", "--label-column", "stars"]
    assert main(["train", str(bad), *text, "--out", str(tmp_path / "x"), *sets(TINY)]) == 2
    err = capsys.readouterr().err
    for line, value in ((6, ""), (7, "   ")):
        assert f"{bad}:{line} column 'review': value {value!r}: empty sequence: the text has zero tokens" in err

    run = tmp_path / "run"
    assert main(["train", str(data), *text, "--out", str(run), *sets([*TINY, "train.max_epochs=1"])]) == 0
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6 column 'review'" in err and f"{bad}:7 column 'review'" in err and "empty sequence" in err
    assert not out.exists()  # no partial predictions with rows silently missing


def test_length_one_sequences_train_and_predict(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "points.jsonl"
    with open(data, "w") as fh:
        for _ in range(240):
            x = float(rng.normal())
            fh.write(json.dumps({"sequence": [[x, 1.0]], "label": "pos" if x > 0 else "neg"}) + "\n")
    cfg = C.resolve(None, [f"data.train={data}", *TINY, "train.progress=none", "train.max_epochs=15",
                           "optim.lr=0.02", "model.dropout=0", "model.recurrent_dropout=0"])
    summary = api.train(cfg, tmp_path / "run")
    losses = [json.loads(x)["loss"] for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
              if '"kind": "step"' in x]
    assert losses and all(np.isfinite(losses))
    assert summary["metrics"]["test"]["accuracy"] >= 0.9  # one step is enough to learn the sign
    out = tmp_path / "pred.csv"
    assert api.predict(tmp_path / "run", data, out) == 240


def _kept(sequence: list, keep: str, limit: int) -> list:
    """The steps truncation keeps, written out by hand (head_tail: the default head of 0.25 of the limit)."""
    if keep == "head":
        return sequence[:limit]
    if keep == "tail":
        return sequence[-limit:]
    return sequence[:limit // 4] + sequence[-(limit - limit // 4):]


@pytest.mark.parametrize("keep", ["head", "tail", "head_tail"])
def test_over_long_rows_are_truncated_as_configured(series, tmp_path, capsys, keep):
    run = tmp_path / "run"
    limit = 8
    assert main(["train", str(series), "--out", str(run),
                 *sets([*TINY, "train.max_epochs=1", f"data.max_length={limit}", f"data.truncate_keep={keep}",
                        "data.long_sequences=truncate"])]) == 0  # most rows are longer: auto would read windows
    err = capsys.readouterr().err
    rows = [json.loads(x) for x in series.read_text().splitlines()]
    splits = json.loads((run / "splits.json").read_text())["splits"]
    long_ids = {f"series.jsonl:{i}" for i, r in enumerate(rows, start=1) if len(r["sequence"]) > limit}
    expected = {name: len(long_ids & set(ids)) for name, ids in splits.items()}
    assert expected["train"] > 0
    assert json.loads((run / "summary.json").read_text())["data"]["truncated"] == expected
    kept = "head 2 + tail 6 kept" if keep == "head_tail" else f"{keep} kept"
    assert f"truncated to data.max_length={limit} ({kept}): {expected['train']} train rows" in err

    # the model sees exactly the kept end: predictions for the long rows equal those for the rows cut by hand
    long_rows = [r for r in rows if len(r["sequence"]) > limit][:20]
    cut = [{**r, "sequence": _kept(r["sequence"], keep, limit)} for r in long_rows]
    for name, rs in (("long", long_rows), ("cut", cut)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
        assert main(["predict", str(run), "--data", str(tmp_path / f"{name}.jsonl"),
                     "--output", str(tmp_path / f"{name}.csv")]) == 0
    assert _predictions(tmp_path / "long.csv") == _predictions(tmp_path / "cut.csv")
    other = [{**r, "sequence": _kept(r["sequence"], "tail" if keep == "head" else "head", limit)} for r in long_rows]
    (tmp_path / "other.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    assert main(["predict", str(run), "--data", str(tmp_path / "other.jsonl"), "--output",
                 str(tmp_path / "other.csv")]) == 0
    assert _predictions(tmp_path / "other.csv") != _predictions(tmp_path / "cut.csv")  # the end kept matters


def test_packed_and_padded_agree_on_a_trained_model(reference):
    cfg, prep, task, model, _ = api.load_run(reference)
    dataset, _, _ = load_file_for_inference(cfg, prep, Path(cfg.data.train), with_targets=False)
    order = sorted(range(len(dataset)), key=lambda i: len(dataset[i]))
    mixed = task.collate([dataset[i] for i in (order[0], order[len(order) // 2], order[-1], *order[1:60:7])])
    one_step = task.collate([Example(id="one-step", inputs=dataset[order[0]].inputs[:1]), dataset[order[-1]]])
    assert mixed.lengths.min() < mixed.lengths.max() and one_step.lengths.tolist()[0] == 1
    for batch in (mixed, one_step):
        model.encoder.packing = "never"
        padded = task.forward(model, batch)
        model.encoder.packing = "always"
        packed = task.forward(model, batch)
        torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-6)
