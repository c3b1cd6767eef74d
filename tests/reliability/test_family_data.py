"""Item 6 for the task families: the bad inputs of tagging, forecasting and seq2seq files, under both bad-row
policies, through `rnnkit train` / `evaluate` / `predict` as a user runs them.

Policy `error`: exit 2 before training, every bad row named once with file:line, column, value, rule and
fix. Policy `skip`: exactly those units (a sentence, a whole series, a pair) land in rejects.jsonl with
their raw text, and the run trains on the rest. Reader-level cases already proven in tests/data/ are not
repeated here (see docs/reliability.md).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from relsupport import (
    FAMILIES,
    sentence_lines,
    sets,
    tagged_sentences,
    write_blocks,
    write_stores_csv,
)

from fakedata import write_reversal_tsv
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.errors import DataError
from rnnkit.tasks import get_task

SMALL = ["model.hidden_size=8", "model.embedding_dim=8", "model.num_layers=1", "data.batch_size=16",
         "train.max_epochs=1", "train.threads=1", "train.progress=plain"]
TAG = ["tag.char_dim=8", *SMALL]


def _listed(err: str) -> list[str]:
    return [x for x in err.splitlines() if x.startswith("  - ")]


def _rejects(run) -> list[dict]:
    return [json.loads(x) for x in (run / "rejects.jsonl").read_text().splitlines()]


def _assert_listed_once(err: str, expected: list[tuple[str, int, str | None, str, str]]) -> None:
    """Exactly the expected problems (file, line, column, value, rule) are listed, each once, with a fix."""
    listed = _listed(err)
    assert len(listed) == len(expected), "\n".join(listed)
    for file, line, column, value, rule in expected:
        where = f"  - {file}:{line}" + (f" column {column!r}" if column else "") + f": value {value!r}: {rule}"
        hits = [x for x in listed if x.startswith(where)]
        assert len(hits) == 1 and ". Fix: " in hits[0], (where, listed)


# --------------------------------------------------------------------------- tag

# Per format, two bad sentences: (sentence lines, offset of the bad line in it, column, value, rule).
TAG_BAD = {
    "conll": [(["N1\tB-PER", "w3", "w1\tO"], 1, None, "w3", "expected 2 columns like the rest of the file, found 1"),
              (["w3\tO\textra", "w1\tO"], 0, None, "w3\tO\textra",
               "expected 2 columns like the rest of the file, found 3")],
    "conllu": [(["1\tw3\t_\tO\t_\t_\t0\troot\t_\t_", "2\tN1\t_\t_\t_\t_\t1\tdep\t_\t_"], 1, "upos", "_",
                "missing tag in column upos"),
               (["1\tw3\t_\tO\t_\t_\t0\troot\t_", "2\tw1\t_\tO\t_\t_\t1\tdep\t_\t_"], 0, None,
                "1\tw3\t_\tO\t_\t_\t0\troot\t_", "expected 10 tab-separated CoNLL-U fields, found 9")],
    "jsonl": [([json.dumps({"tokens": ["N1", "w3", "w1"], "tags": ["B-PER", "O"]})], 0, "tags", "3 tokens, 2 tags",
               "the sentence has different numbers of tokens and tags"),
              ([json.dumps({"tokens": ["w3", "w1"], "tags": ["O", "O", "O"]})], 0, "tags", "2 tokens, 3 tags",
               "the sentence has different numbers of tokens and tags")],
}


@pytest.mark.parametrize("fmt", list(TAG_BAD))
def test_tag_count_mismatch_under_both_policies(tmp_path, capsys, fmt):
    """A sentence whose token lines do not each carry one tag: named at its bad line (not only at the
    sentence's start) under `error`; under `skip` the whole sentence is rejected, named by its first line."""
    blocks = [sentence_lines(*s, fmt) for s in tagged_sentences(60)]
    bad = TAG_BAD[fmt]
    blocks[10:10] = [bad[0][0]]
    blocks[40:40] = [bad[1][0]]
    train = tmp_path / f"train.{fmt}"
    starts = write_blocks(train, blocks)
    bad_starts = [starts[10], starts[40]]
    expected = [(str(train), start + offset, column, value, rule)
                for start, (_, offset, column, value, rule) in zip(bad_starts, bad, strict=True)]
    args = ["train", str(train), "--task", "tag", *sets(TAG)]

    assert main([*args, "--out", str(tmp_path / "error")]) == 2
    err = capsys.readouterr().err
    assert f"2 bad row(s) (2 in {train}), 2 problem(s)" in err and "--bad-rows skip" in err
    _assert_listed_once(err, expected)
    assert not (tmp_path / "error" / "checkpoints").exists()

    run = tmp_path / "skip"
    assert main([*args, "--out", str(run), "--bad-rows", "skip", "--set", "data.max_bad_fraction=0.05"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 bad rows (--bad-rows skip)" in err and str(run / "rejects.jsonl") in err
    rejects = _rejects(run)
    assert [(r["split"], r["file"], r["line"], r["record_id"]) for r in rejects] == [
        ("train", str(train), s, f"{train.name}:{s}") for s in bad_starts]
    for r, (lines, *_), (_, line, column, value, rule) in zip(rejects, bad, expected, strict=True):
        assert [(p["line"], p["column"], p["value"], p["rule"]) for p in r["problems"]] == [(line, column, value, rule)]
        assert r["raw"] == "\n".join(lines)  # the whole sentence, as written
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["train"] == {"rows": 62, "rejected": 2} and summary["data"]["rejected"] == 2
    assert sum(summary["data"]["sizes"].values()) == 60  # every good sentence, none of the bad ones
    used = [i for ids in json.loads((run / "splits.json").read_text())["splits"].values() for i in ids]
    assert len(set(used)) == 60 and not {r["record_id"] for r in rejects} & set(used)


@pytest.mark.parametrize("split", ["val", "test"])
def test_tag_unseen_in_val_or_test_under_both_policies(tmp_path, capsys, split):
    """A val/test sentence with a tag training never shows: every such token named under `error`; the
    sentence rejected (and so not scored) under `skip`. (tests/data/test_conll.py covers a val file under
    `error`; tests/tasks/test_tag.py covers `evaluate`.)"""
    train = tmp_path / "train.conll"
    write_blocks(train, [sentence_lines(*s, "conll") for s in tagged_sentences(60)])
    held = tmp_path / f"{split}.conll"
    good = [sentence_lines(*s, "conll") for s in tagged_sentences(6, seed=1)]
    starts = write_blocks(held, [*good[:3], ["N1\tB-LOC", "w1\tO", "N2\tB-ORG"], *good[3:]])
    args = ["train", str(train), f"--{split}", str(held), "--task", "tag", *sets(TAG)]

    assert main([*args, "--out", str(tmp_path / "error")]) == 2
    err = capsys.readouterr().err
    rule = "tag not seen in the training data"
    _assert_listed_once(err, [(str(held), starts[3], "tag", "B-LOC", rule),
                              (str(held), starts[3] + 2, "tag", "B-ORG", rule)])

    run = tmp_path / "skip"
    assert main([*args, "--out", str(run), "--bad-rows", "skip", "--set", "data.max_bad_fraction=0.05"]) == 0
    (reject,) = _rejects(run)
    assert (reject["split"], reject["line"], reject["record_id"]) == (split, starts[3], f"{held.name}:{starts[3]}")
    assert [(p["line"], p["value"]) for p in reject["problems"]] == [(starts[3], "B-LOC"), (starts[3] + 2, "B-ORG")]
    assert reject["raw"] == "N1\tB-LOC\nw1\tO\nN2\tB-ORG"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"][split] == {"rows": 7, "rejected": 1} and summary["data"]["sizes"][split] == 6
    # scored on the tokens of the 6 good sentences only
    assert summary["data"]["tokens"][split] == sum(len(t) for t, _ in tagged_sentences(6, seed=1))


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_tag_seen_once_and_split_off_by_the_seeded_split_is_an_error(tmp_path, policy):
    """A tag whose only sentence the seeded split sends to val/test: an error under both policies (the
    sentence is not bad, the split is), naming each token and a fix that works (not --bad-rows skip)."""
    blocks = [sentence_lines(*s, "conll") for s in tagged_sentences(60)]
    blocks.append(["N1\tB-LOC", "w1\tO"])
    train = tmp_path / "train.conll"
    starts = write_blocks(train, blocks)
    cfg = C.resolve(None, ["task=tag", f"data.train={train}", f"data.bad_rows={policy}", "data.max_bad_fraction=0.5"])
    task = get_task("tag")
    seeds = []
    for seed in range(20):  # the seeds whose split puts the B-LOC sentence outside train
        try:
            task.prepare(C.resolve(None, [f"data.split_seed={seed}"], base=cfg), None)
        except DataError as exc:
            seeds.append((seed, exc))
    assert seeds, "no seed put the sentence outside train"
    for _, exc in seeds:
        assert "after the seeded split" in str(exc) and "separate --val/--test files" in str(exc)
        (p,) = exc.problems
        assert (p.file, p.line, p.column, p.value) == (str(train), starts[-1], "tag", "B-LOC")
        assert "--bad-rows skip" not in p.fix and "--val/--test" in p.fix


def test_tag_blank_line_runs_and_comment_only_blocks_make_no_empty_sentence(tmp_path, capsys):
    """Runs of blank (or whitespace-only) lines are one sentence break, never an empty sentence; a block
    holding only comments is a bad row (named, or rejected under `skip`); no length-0 sentence reaches
    the model."""
    sentences = tagged_sentences(40)
    text = "\n \n\t\n"  # leading blank and whitespace-only lines
    firsts = []
    for i, s in enumerate(sentences):
        firsts.append(text.count("\n") + 1)
        text += "\n".join(sentence_lines(*s, "conll")) + "\n" + ("\n\n\n" if i % 3 else "\n")
        if i == 20:
            comment_line = text.count("\n") + 1
            text += "# only a comment\n# and another\n\n"
    train = tmp_path / "train.conll"
    train.write_text(text + "\n\n")
    args = ["train", str(train), "--task", "tag", *sets(TAG)]
    assert main([*args, "--out", str(tmp_path / "error")]) == 2
    _assert_listed_once(capsys.readouterr().err, [(str(train), comment_line, None,
                                                   "# only a comment | # and another",
                                                   "empty sentence (only comments)")])

    cfg = C.resolve(None, ["task=tag", f"data.train={train}", "data.bad_rows=skip", "data.max_bad_fraction=0.05"])
    data = get_task("tag").prepare(cfg, tmp_path)
    examples = [e for ds in data.datasets.values() for e in ds.examples]
    assert sorted(e.id for e in examples) == sorted(f"{train.name}:{n}" for n in firsts)  # each sentence once
    assert all(len(e) >= 1 for e in examples)
    (reject,) = _rejects(tmp_path)
    assert reject["line"] == comment_line and reject["raw"] == "# only a comment\n# and another"


# --------------------------------------------------------------------------- forecast

FORECAST = ["forecast.time_column=t", "forecast.series_column=store", "forecast.input_length=6",
            "forecast.horizon=2", "forecast.val_size=6", "forecast.test_size=6", "forecast.auto=false"]


def test_forecast_bad_series_under_both_policies(tmp_path, capsys):
    """Duplicate and out-of-order timestamps and +/-Inf values in two of three series (long format):
    every bad row named under `error`; under `skip` the two series are rejected whole (a skipped row would
    leave a gap) and the run trains on the third. (tests/data/test_timeseries.py covers the single-series
    reader cases, NaN and non-numeric values included.)"""
    path = write_stores_csv(tmp_path / "stores.csv", steps=60, stores=("a", "b", "c"))
    lines = path.read_text().splitlines()

    def line_of(t, store):  # header, then one row per (time, store)
        return 2 + 3 * t + "abc".index(store)

    def edit(t, store, time=None, value=None):
        row = lines[line_of(t, store) - 1].split(",")
        lines[line_of(t, store) - 1] = ",".join([str(time if time is not None else row[0]), store,
                                                 value if value is not None else row[2]])

    edit(20, "b", value="inf")
    edit(30, "b", value="-Infinity")
    edit(10, "c", time=9)  # the same time as the row before it in series c
    edit(40, "c", time=38)  # earlier than the row before it
    path.write_text("\n".join(lines) + "\n")
    args = ["train", str(path), "--task", "forecast", *sets([*SMALL, *FORECAST])]

    assert main([*args, "--out", str(tmp_path / "error")]) == 2
    err = capsys.readouterr().err
    assert f"2 bad series (2 in {path})" in err
    _assert_listed_once(err, [
        (str(path), line_of(20, "b"), "y", "inf", "NaN/Inf value"),
        (str(path), line_of(30, "b"), "y", "-Infinity", "NaN/Inf value"),
        (str(path), line_of(10, "c"), "t", "9", f"duplicate timestamp (series 'c', the same time as line "
                                                f"{line_of(9, 'c')})"),
        (str(path), line_of(11, "c"), "t", "11", "gap: 1 missing step(s) (10)"),  # 10 is missing now
        (str(path), line_of(40, "c"), "t", "38", f"timestamps out of order (series 'c', earlier than '39' on line "
                                                 f"{line_of(39, 'c')})"),
        (str(path), line_of(41, "c"), "t", "41", "gap: 1 missing step(s) (40)")])  # 40 is missing now
    assert not (tmp_path / "error" / "checkpoints").exists()

    run = tmp_path / "skip"
    assert main([*args, "--out", str(run), "--bad-rows", "skip", "--set", "data.max_bad_fraction=0.7"]) == 0
    rejects = _rejects(run)
    assert [(r["record_id"], r["line"]) for r in rejects] == [("stores.csv:b", line_of(0, "b")),
                                                              ("stores.csv:c", line_of(0, "c"))]
    assert [[p["line"] for p in r["problems"]] for r in rejects] == [
        [line_of(20, "b"), line_of(30, "b")], [line_of(t, "c") for t in (10, 11, 40, 41)]]
    for r, store in zip(rejects, "bc", strict=True):  # every row of the series, as written
        assert r["raw"].splitlines() == [lines[line_of(t, store) - 1] for t in range(60)]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["series"] == 1 and summary["data"]["rejected_series"] == 2
    assert summary["data"]["sizes"]["train"] == len(range(6, 48 - 2 + 1))  # series a only


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_forecast_too_short_series_is_named_under_both_policies(tmp_path, capsys, policy):
    """forecast.short_series=error: a series shorter than its spans need stops the run under both bad-row
    policies (no row of it is bad, so skip does not apply), naming its first row, its id, its length and each
    shortfall, with the fix."""
    path = write_stores_csv(tmp_path / "stores.csv", steps=40, stores=("a", "b"))
    path.write_text(path.read_text() + "".join(f"{t},short,1.5\n" for t in range(15)))
    first = 2 + 2 * 40
    assert main(["train", str(path), "--task", "forecast", "--out", str(tmp_path / "run"), "--bad-rows", policy,
                 *sets([*SMALL, *FORECAST, "forecast.short_series=error"])]) == 2
    err = capsys.readouterr().err
    assert "some series cannot be split chronologically" in err
    _assert_listed_once(err, [(str(path), first, "t", "0", "series 'short' (15 steps) is too short for the split: "
                                                          "3 training steps, fewer than input_length + horizon = 8")])
    assert "lower forecast.input_length / horizon / val_size / test_size" in err
    assert "forecast.short_series=set_aside" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_forecast_short_series_by_default_train_on_a_shorter_window_or_are_set_aside(tmp_path, capsys):
    """The default (forecast.short_series=set_aside): a series whose training span holds fewer than
    input_length + horizon steps trains on the longest window it holds; one that holds no window, or not a
    horizon each of validation and test, is set aside and named with its length; the others train as before."""
    path = write_stores_csv(tmp_path / "stores.csv", steps=40, stores=("a", "b"))
    path.write_text(path.read_text() + "".join(f"{t},short,{1.5 + t % 3}\n" for t in range(15))
                    + "".join(f"{t},tiny,2.5\n" for t in range(10)))
    run = tmp_path / "run"
    assert main(["train", str(path), "--task", "forecast", "--out", str(run), *sets([*SMALL, *FORECAST])]) == 0
    err = capsys.readouterr().err
    assert "1 series set aside" in err and "'tiny' (10 steps)" in err
    short = json.loads((run / "summary.json").read_text())["data"]["short_series"]
    assert short["set_aside"] == [{"series": "tiny", "file": str(path), "line": 2 + 2 * 40 + 15, "length": 10,
                                   "why": "too short: 0 training steps, fewer than the shortest window (1) + "
                                          "horizon = 3"}]
    assert short["shorter_window"] == [{"series": "short", "length": 15, "input_length": 1}]
    data = get_task("forecast").prepare(C.resolve(None, ["task=forecast", f"data.train={path}", *FORECAST]), None)
    got = [e for e in data.datasets["train"].examples if e.extra["series"] == "short"]
    assert [e.extra["origin"] for e in got] == [1] and all(e.inputs.shape[0] == 1 for e in got)
    assert {e.extra["series"] for e in data.datasets["test"].examples} == {"a", "b", "short"}
    assert all(e.inputs.shape[0] == 6 for e in data.datasets["train"].examples if e.extra["series"] != "short")


def test_forecast_long_series_are_windowed_by_stride_and_horizon_never_across_splits(tmp_path):
    """Series far longer than data.max_length are not truncated: every split gets the windows its stride
    and horizon give, up to the end of the series; a window's targets never leave its split, and a
    training window never reads a later split."""
    steps, length, horizon, stride, hold = 200, 6, 3, 4, 20
    path = write_stores_csv(tmp_path / "stores.csv", steps=steps, stores=("a", "b"))
    cfg = C.resolve(None, ["task=forecast", f"data.train={path}", "data.max_length=16", *FORECAST,
                           f"forecast.input_length={length}", f"forecast.horizon={horizon}",
                           f"forecast.stride={stride}", f"forecast.val_size={hold}", f"forecast.test_size={hold}"])
    data = get_task("forecast").prepare(cfg, tmp_path)
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    values = {s: np.array([float(r["y"]) for r in rows if r["store"] == s]) for s in "ab"}
    spans = {"train": (0, steps - 2 * hold), "val": (steps - 2 * hold, steps - hold), "test": (steps - hold, steps)}
    for split, (start, stop) in spans.items():
        for s in "ab":
            got = [e for e in data.datasets[split].examples if e.extra["series"] == s]
            origins = [e.extra["origin"] for e in got]
            assert origins == list(range(max(start, length), stop - horizon + 1, stride)), (split, s)
            assert origins[-1] + horizon > stop - stride  # windows reach the end of the split
            for e in got:
                o = e.extra["origin"]
                assert start <= o and o + horizon <= stop  # targets inside the split
                assert e.inputs.shape[0] == length and (split != "train" or o - length >= 0)
                np.testing.assert_array_equal(e.extra["raw_target"][:, 0], values[s][o:o + horizon])
                scaler = data.prep.scalers[s]
                np.testing.assert_allclose(e.inputs[:, 0].numpy(),
                                           scaler.transform(values[s][o - length:o, None])[:, 0], rtol=1e-5)


# --------------------------------------------------------------------------- seq2seq


def test_seq2seq_empty_source_or_target_under_both_policies(tmp_path, capsys, family_run):
    """Empty and whitespace-only sources and targets: named under `error`, rejected under `skip`; in a
    predict file an empty source stops predict with no output. (tests/data/test_pairs.py covers the JSONL
    reader; tests/tasks/test_seq2seq.py a CSV under `error`.)"""
    train = write_reversal_tsv(tmp_path / "pairs.tsv", n=60)
    lines = train.read_text().splitlines()
    lines[5:5] = ["\tx y"]  # line 6: empty source
    lines[10:10] = ["abc\t   "]  # line 11: whitespace-only target
    lines[20:20] = ["   \tz"]  # line 21: whitespace-only source
    train.write_text("\n".join(lines) + "\n")
    expected = [(str(train), 6, "source", "", "empty source: the text has no tokens"),
                (str(train), 11, "target", "   ", "empty target: the text has no tokens"),
                (str(train), 21, "source", "   ", "empty source: the text has no tokens")]
    args = ["train", str(train), "--task", "seq2seq", *sets([*SMALL, "seq2seq.beam=1"])]
    assert main([*args, "--out", str(tmp_path / "error")]) == 2
    _assert_listed_once(capsys.readouterr().err, expected)

    run = tmp_path / "skip"
    assert main([*args, "--out", str(run), "--bad-rows", "skip", "--set", "data.max_bad_fraction=0.1"]) == 0
    rejects = _rejects(run)
    assert [(r["line"], r["raw"]) for r in rejects] == [(n, lines[n - 1] + "\n") for n in (6, 11, 21)]
    assert [[(p["line"], p["column"], p["value"]) for p in r["problems"]] for r in rejects] == [
        [e[1:4]] for e in expected]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["rejected"] == 3 and sum(summary["data"]["pairs"].values()) == 60

    _, reference = family_run("seq2seq")  # trained with the default policy, error
    query = tmp_path / "query.tsv"
    query.write_text('source\nabc\n""\ncab\n')
    out = tmp_path / "pred.tsv"
    assert main(["predict", str(reference), "--data", str(query), "--output", str(out)]) == 2
    _assert_listed_once(capsys.readouterr().err, [(str(query), 3, "source", "", "empty source: the text has no "
                                                                                "tokens")])
    assert not out.exists()  # no partial predictions with a row silently missing


def test_seq2seq_target_longer_than_max_decode_length_is_reported(tmp_path, family_run):
    """Decoding stops at seq2seq.max_decode_length tokens, so a longer target can never be predicted in
    full: training warns (counts per split, file:line, the value to set) and counts them in summary.json,
    evaluate warns about its file, and predict warns about predictions that reached the limit."""
    data, reference = family_run("seq2seq")  # targets of 3-7 tokens
    targets = {n: len(x.split("\t")[1].split()) for n, x in enumerate(data.read_text().splitlines(), start=1)
               if n > 1}
    run = tmp_path / "run"
    limit = 5
    with pytest.warns(UserWarning, match="targets longer than") as caught:
        assert main(["train", str(data), "--task", "seq2seq", "--out", str(run),
                     *sets([*SMALL, *FAMILIES["seq2seq"].sets[1:], f"seq2seq.max_decode_length={limit}"])]) == 0
    counts = json.loads((run / "summary.json").read_text())["data"]["longer_than_max_decode_length"]
    cfg = C.resolve(None, ["task=seq2seq", f"data.train={data}"])
    ids = {split: {e.id for e in ds.examples} for split, ds in get_task("seq2seq").prepare(cfg, None).datasets.items()}
    long = {f"{data.name}:{n}" for n, k in targets.items() if k > limit}
    assert counts == {split: len(long & ids[split]) for split in ("train", "val", "test")}
    assert counts["val"] and counts["test"]
    first = min(n for n, k in targets.items() if k > limit and f"{data.name}:{n}" in ids["train"])
    assert (f"targets longer than seq2seq.max_decode_length={limit} tokens ({counts['train']} train, "
            f"{counts['val']} val, {counts['test']} test; e.g. {data}:{first} ({targets[first]} tokens)"
            in _warned(caught, "targets longer than"))
    assert "--set seq2seq.max_decode_length=7" in _warned(caught, "targets longer than")

    pairs = tmp_path / "eval.tsv"
    pairs.write_text("source\ttarget\nabc\tc b a\nabcdef\tf e d c b a\n")
    with pytest.warns(UserWarning, match="targets longer than") as caught:
        assert main(["evaluate", str(run), "--data", str(pairs)]) == 0
    assert f"(1 in eval.tsv; e.g. {pairs}:3 (6 tokens))" in _warned(caught, "targets longer than")

    words = tmp_path / "words.txt"
    words.write_text("ab\nabcdefabcdef\n")
    out = tmp_path / "pred.tsv"
    with pytest.warns(UserWarning, match="predictions reached") as caught:
        assert main(["predict", str(reference), "--data", str(words), "--output", str(out),
                     "--set", "seq2seq.max_decode_length=3"]) == 0
    rows = list(csv.reader(out.read_text().splitlines(), delimiter="\t"))[1:]
    assert len(rows) == 2  # every prediction is written...
    cut = [f"{words}:{n}" for n, (_, pred, _) in enumerate(rows, start=1) if len(pred.split()) == 3]
    assert f"{words}:2" in cut  # (an untrained model does not stop after 3 of 12 letters)
    assert (f"{len(cut)} of 2 predictions reached seq2seq.max_decode_length=3 tokens without an end token and may be "
            f"cut (e.g. {', '.join(cut)})") in _warned(caught, "predictions reached")  # ...and the cut ones named


def _warned(caught, text: str) -> str:
    (message,) = [str(w.message) for w in caught if text in str(w.message)]
    return message
