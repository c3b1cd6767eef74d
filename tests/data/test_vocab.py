"""Vocab and LabelMap: ordering, limits, unknowns, JSON round trips."""

from __future__ import annotations

import json
import random

import pytest

from rnnkit.data.vocab import LabelMap, Vocab, natural_key
from rnnkit.errors import CheckpointError, ConfigError, RnnkitError

DOCS = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["e"]]  # a:3 b:2 c,d,e:1


def test_order_is_frequency_then_token():
    v = Vocab.build(DOCS)
    assert v.tokens == ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    assert (Vocab.PAD, Vocab.UNK) == (0, 1)
    assert len(v) == 7 and "a" in v and "z" not in v


def test_deterministic_whatever_the_data_order():
    shuffled = [list(reversed(d)) for d in DOCS]
    random.Random(3).shuffle(shuffled)
    assert Vocab.build(shuffled) == Vocab.build(DOCS)


def test_min_freq_and_max_size():
    assert Vocab.build(DOCS, min_freq=2).tokens == ["<pad>", "<unk>", "a", "b"]
    assert Vocab.build(DOCS, max_size=4).tokens == ["<pad>", "<unk>", "a", "b"]
    assert Vocab.build(DOCS, max_size=2).tokens == ["<pad>", "<unk>"]
    with pytest.raises(ConfigError):
        Vocab.build(DOCS, min_freq=0)
    with pytest.raises(ConfigError):
        Vocab.build(DOCS, max_size=1)


def test_encode_decode_and_unknowns():
    v = Vocab.build(DOCS)
    ids = v.encode(["a", "zzz", "e"])
    assert ids == [2, Vocab.UNK, 6]
    assert v.decode(ids) == ["a", "<unk>", "e"]
    with pytest.raises(RnnkitError, match="outside"):
        v.decode([7])


def test_special_tokens_in_data_are_not_duplicated():
    v = Vocab.build([["<unk>", "<pad>", "x"]])
    assert v.tokens == ["<pad>", "<unk>", "x"]
    assert v.encode(["<pad>"]) == [Vocab.PAD]


def test_vocab_save_load_round_trip(tmp_path):
    v = Vocab.build(DOCS + [["é", "日本"]])
    v.save(tmp_path / "sub" / "vocab.json")
    w = Vocab.load(tmp_path / "sub" / "vocab.json")
    assert w == v and w.encode(["日本"]) == v.encode(["日本"])
    assert Vocab.from_dict(v.to_dict()) == v


def test_vocab_load_rejects_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        Vocab.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text(json.dumps({"kind": "vocab", "tokens": ["a", "<unk>"]}))
    with pytest.raises(CheckpointError, match="must start with"):
        Vocab.load(tmp_path / "wrong.json")
    (tmp_path / "labels.json").write_text(json.dumps({"kind": "labels", "labels": ["a"]}))
    with pytest.raises(CheckpointError, match="not a vocabulary"):
        Vocab.load(tmp_path / "labels.json")


def test_labelmap_natural_sort():
    m = LabelMap.build(["10", "2", "1", "2", "b", "class10", "class2", "a"])
    assert m.labels == ["1", "2", "10", "a", "b", "class2", "class10"]
    assert LabelMap.build(["-1", "0.5", "1e3"]).labels == ["-1", "0.5", "1e3"]
    assert sorted(["1.0", "1"], key=natural_key) == ["1", "1.0"]  # equal values: the text breaks ties


def test_labelmap_encode_decode_and_unknown():
    m = LabelMap.build(["neg", "pos"])
    assert [m.encode("neg"), m.encode("pos")] == [0, 1]
    assert m.decode(1) == "pos" and len(m) == 2
    with pytest.raises(RnnkitError) as e:
        m.encode("neutral")
    assert not isinstance(e.value, KeyError)
    assert "'neutral'" in str(e.value) and "neg, pos" in str(e.value)
    with pytest.raises(RnnkitError):
        m.decode(2)
    with pytest.raises(RnnkitError, match="None"):
        LabelMap.build(["a", None])


def test_labelmap_save_load_keeps_order(tmp_path):
    m = LabelMap.build(["9", "10", "x"])
    m.save(tmp_path / "labels.json")
    assert json.loads((tmp_path / "labels.json").read_text())["labels"] == ["9", "10", "x"]
    assert LabelMap.load(tmp_path / "labels.json") == m
    assert LabelMap.from_dict(m.to_dict()).labels == m.labels
    with pytest.raises(CheckpointError):
        LabelMap.from_dict({"kind": "labels", "labels": ["a", "a"]})


def test_item12_unknown_label_error_says_how_to_fix_it():
    with pytest.raises(RnnkitError) as e:
        LabelMap.build(["neg", "pos"]).encode("meh")
    assert str(e.value) == ("unknown label 'meh'; known labels: neg, pos. Fix: use one of these labels, or train a "
                            "model on data that has this label")
