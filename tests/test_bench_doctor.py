"""The pure parts of bench/bench_doctor.py: .ts round trip, injections, scoring (no training)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_doctor.py"
_spec = importlib.util.spec_from_file_location("bench_doctor", _PATH)
bd = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_doctor", bd)  # dataclasses look their module up there
_spec.loader.exec_module(bd)


def _cases():
    return [bd.TsCase([[1.0, 2.0, 3.0], [0.5, -0.5, 0.25]], "a"), bd.TsCase([[4.0, 5.0], [1.5, 2.5]], "b"),
            bd.TsCase([[7.0, 8.0, 9.0, 10.0], [0.0, 0.0, 0.0, 1.0]], "a")]


def test_ts_round_trip(tmp_path):
    path = bd.write_ts(tmp_path / "x.ts", _cases())
    back = bd.read_ts(path)
    assert [(c.channels, c.label) for c in back] == [(c.channels, c.label) for c in _cases()]
    text = path.read_text()
    assert "@classLabel true a b" in text and "@equalLength false" in text and "@dimensions 2" in text


def test_ts_regression_header(tmp_path):
    cases = [bd.TsCase([[1.0, 2.0]], "0.5"), bd.TsCase([[3.0, 4.0]], "0.25")]
    text = bd.write_ts(tmp_path / "r.ts", cases, regression=True).read_text()
    assert "@targetLabel true" in text and "@classLabel" not in text and "@seriesLength 2" in text
    assert [c.label for c in bd.read_ts(tmp_path / "r.ts")] == ["0.5", "0.25"]


def test_ts_reads_like_rnnkit(tmp_path):
    """The written file is one rnnkit's own reader accepts, with the same values."""
    from rnnkit.data.readers import read_records

    result = read_records(bd.write_ts(tmp_path / "x.ts", _cases()))
    assert [r.label for r in result.records] == ["a", "b", "a"]
    assert result.records[0].values.shape == (3, 2)


def test_injections_keep_shape_and_change_what_they_say():
    rng = random.Random(0)
    cases = _cases() * 10
    shuffled = bd.shuffle_labels(cases, rng)
    assert sorted(c.label for c in shuffled) == sorted(c.label for c in cases)
    assert [c.channels for c in shuffled] == [c.channels for c in cases]
    leaked = bd.leak_label(cases, ["a", "b"])
    assert all(len(c.channels) == 3 and set(c.channels[-1]) == {float(c.label == "b")} for c in leaked)
    assert bd.scale_inputs(cases, 1000)[0].channels[0] == [1000.0, 2000.0, 3000.0]
    const = bd.constant_inputs(cases)
    assert all(v == 1.0 for c in const for ch in c.channels for v in ch)
    assert [bd.ts_length(c) for c in const] == [bd.ts_length(c) for c in cases]
    tiny = bd.per_class(cases, 2, rng)
    assert sorted(c.label for c in tiny) == ["a", "a", "b", "b"]
    skewed = bd.skew_lengths(cases, rng, share=0.1, repeat=5)
    longer = [i for i, (a, b) in enumerate(zip(cases, skewed, strict=True)) if bd.ts_length(b) != bd.ts_length(a)]
    assert len(longer) == 3 and all(bd.ts_length(skewed[i]) == 5 * bd.ts_length(cases[i]) for i in longer)


def test_imbalance_share():
    rng = random.Random(0)
    cases = [bd.TsCase([[float(i)]], str(i % 10)) for i in range(300)]
    out = bd.imbalance(cases, "1", 0.05, rng)
    labels = [c.label for c in out]
    assert set(labels) == {"rest", "minority"}
    assert labels.count("rest") == 270 and labels.count("minority") == 14  # 14 / 284 = 4.9%


def test_shuffle_tags_keeps_words_and_tag_counts():
    sents = [["# text = a b", "1\ta\ta\tNOUN\t_", "2\tb\tb\tVERB\t_"], ["1-2\tcd\t_\t_\t_", "1\tc\tc\tADJ\t_",
                                                                      "2\td\td\tNOUN\t_"]]
    out = bd.shuffle_tags(sents, random.Random(3))
    def words(ss):
        return [ln.split("\t")[1] for s in ss for ln in s if "\t" in ln]

    assert words(out) == words(sents)
    tags = sorted(ln.split("\t")[3] for s in out for ln in s if bd._token_line(ln))
    assert tags == ["ADJ", "NOUN", "NOUN", "VERB"]
    assert out[1][0] == sents[1][0] and out[0][0] == sents[0][0]  # ranges and comments untouched


def test_conllu_round_trip(tmp_path):
    sents = [["# x", "1\ta\ta\tNOUN"], ["1\tb\tb\tVERB"]]
    assert bd.conllu_sentences(bd.write_conllu(tmp_path / "t.conllu", sents)) == sents


def test_cmudict_subset_keeps_alternates(tmp_path):
    p = tmp_path / "d.dict"
    p.write_text("a AH\na(2) EY\nab AE B\nabc AE B K\n")
    out = bd.cmudict_subset(p, 1, random.Random(0))
    heads = {ln.split(" ")[0].split("(")[0] for ln in out}
    assert len(heads) == 1 and (heads != {"a"} or len(out) == 2)


@pytest.mark.parametrize(("metric", "value", "healthy", "ok"), [
    ("accuracy", 0.955, 0.973, True), ("accuracy", 0.95, 0.973, False), ("accuracy", 0.99, 0.973, True),
    ("wer", 0.61, 0.597, True), ("wer", 0.62, 0.597, False),
    ("mse", 237.0, 233.1, True), ("mse", 240.0, 233.1, False), ("accuracy", None, 0.9, None)])
def test_within_points(metric, value, healthy, ok):
    assert bd.within_points(metric, value, healthy) is ok


def test_judge_and_headline():
    warn = [{"code": "divergence", "severity": "warning"}, {"code": "overfitting", "severity": "info"}]
    assert bd.judge("divergence", warn) and not bd.judge("overfitting", warn)
    assert not bd.judge(None, warn) and bd.judge(None, [{"code": "overfitting", "severity": "info"}])
    assert bd.counted_codes(warn + warn) == ["divergence"]
    rows = [{"expected": None, "right": True, "codes_counted": []},
            {"expected": None, "right": False, "codes_counted": ["slow.padding"]},
            {"expected": "nonfinite", "right": True, "codes_counted": ["nonfinite"], "repair_planned": True,
             "repaired_within_2_points": True},
            {"expected": "labels.leak", "right": False, "codes_counted": []}]
    h = bd.headline(rows)
    assert (h["detected"], h["injected"], h["detection_rate"]) == (1, 2, 0.5)
    assert (h["healthy_with_warnings"], h["healthy"], h["false_warnings"]) == (1, 2, ["slow.padding"])
    assert (h["repaired_within_2_points"], h["repaired"]) == (1, 1)
    assert "1/2 (50%)" in bd.headline_text(h)


def test_cases_are_unique_and_known():
    cases = bd.build_cases()
    assert len({c.name for c in cases}) == len(cases)
    assert {c.family for c in cases} == set(bd.FAMILIES)
    assert all(any(c.expected is None for c in cases if c.family == f) for f in bd.FAMILIES)
    assert any(c.quick for c in cases) and all(c.expected or c.quick or c.family != "classify"
                                               for c in cases if not c.heldout)


def test_heldout_rows_are_a_separate_group():
    """Held-out rows: never quick, on data sets other than the tuned rows' ones, a healthy row per data set."""
    held = [c for c in bd.build_cases() if c.heldout]
    assert held and not any(c.quick for c in held)
    tuned = {ds for _, ds in bd.FAMILIES.values()}
    sets = {c.dataset_name for c in held}
    assert None not in sets and not sets & tuned
    assert all(any(c.expected is None and c.dataset_name == ds for c in held) for ds in sets)


def test_ucr_files_read(tmp_path):
    if importlib.util.find_spec("sktime") is None:
        pytest.skip("sktime (its .ts files) not installed")
    for name in bd.HELDOUT_CLASSIFY.values():
        f = bd.ucr_files(name)
        assert f["train"].is_file() and f["test"].is_file()
        cases = bd.read_ts(f["train"])
        assert cases and len({len(c.channels) for c in cases}) == 1
        args = bd._ucr(name, lambda tr, te, rng: (bd.constant_inputs(tr), te))(tmp_path, random.Random(0))
        assert args[0] == str(tmp_path / "train.ts") and args[-2:] == ["--task", "classify"]
        assert [c.label for c in bd.read_ts(tmp_path / "train.ts")] == [c.label for c in cases]
