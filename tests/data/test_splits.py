"""stratified_split / save_split: proportions, completeness, determinism."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rnnkit.data.records import Record
from rnnkit.data.splits import load_split, save_split, stratified_split
from rnnkit.errors import ConfigError


def records(counts: dict[str | None, int]) -> list[Record]:
    out = []
    for label, n in counts.items():
        out += [Record("", "f.csv", 0, tokens=["t"], label=label) for _ in range(n)]
    # interleave classes so file order differs from class order
    out.sort(key=lambda r: id(r) % 7)
    for i, r in enumerate(out):
        r.id, r.line = f"f.csv:{i + 2}", i + 2
    return out


def ids(recs):
    return [r.id for r in recs]


def test_proportions_per_class():
    recs = records({"a": 100, "b": 50, "c": 10})
    s = stratified_split(recs, fractions={"val": 0.1, "test": 0.2}, seed=0)
    assert list(s) == ["train", "val", "test"]
    count = {name: Counter(r.label for r in part) for name, part in s.items()}
    assert count["val"] == {"a": 10, "b": 5, "c": 1}
    assert count["test"] == {"a": 20, "b": 10, "c": 2}
    assert count["train"] == {"a": 70, "b": 35, "c": 7}


def test_disjoint_complete_and_in_file_order():
    recs = records({"a": 37, "b": 23, None: 9})
    s = stratified_split(recs, fractions={"val": 0.15, "test": 0.15}, seed=1)
    all_ids = [i for part in s.values() for i in ids(part)]
    assert sorted(all_ids) == sorted(ids(recs)) and len(set(all_ids)) == len(recs)
    position = {r.id: i for i, r in enumerate(recs)}
    for part in s.values():
        assert [position[i] for i in ids(part)] == sorted(position[i] for i in ids(part))
    assert any(r.label is None for r in s["val"])  # None labels are a class of their own


def test_small_classes():
    recs = records({"one": 1, "two": 2, "three": 3})
    s = stratified_split(recs, fractions={"val": 0.1, "test": 0.1}, seed=0)
    count = {name: Counter(r.label for r in part) for name, part in s.items()}
    assert count["train"] == {"one": 1, "two": 1, "three": 1}  # train always keeps one
    assert count["val"] == {"two": 1, "three": 1}  # at least one per split for n >= 2
    assert count["test"] == {"three": 1}  # n=2: the later split gives its record back


def test_deterministic_and_seed_dependent():
    recs = records({"a": 60, "b": 40})
    a = stratified_split(recs, fractions={"val": 0.2}, seed=7)
    b = stratified_split(recs, fractions={"val": 0.2}, seed=7)
    c = stratified_split(recs, fractions={"val": 0.2}, seed=8)
    assert ids(a["val"]) == ids(b["val"]) and ids(a["train"]) == ids(b["train"])
    assert ids(a["val"]) != ids(c["val"])
    assert len(c["val"]) == len(a["val"]) == 20


@pytest.mark.parametrize(
    "fractions", [{"val": 0}, {"val": 1.0}, {"val": 0.6, "test": 0.5}, {"train": 0.8}, {"val": "0.1"}]
)
def test_bad_fractions(fractions):
    with pytest.raises(ConfigError):
        stratified_split(records({"a": 10}), fractions=fractions, seed=0)


def test_save_and_load_split(tmp_path):
    recs = records({"a": 10, "b": 10})
    s = stratified_split(recs, fractions={"val": 0.2}, seed=5)
    save_split(s, tmp_path / "run" / "splits.json")
    data = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert data["seed"] == 5 and data["fractions"] == {"val": 0.2}
    assert data["splits"] == {"train": ids(s["train"]), "val": ids(s["val"])}
    assert load_split(tmp_path / "run" / "splits.json") == data
    save_split({"train": recs[:1]}, tmp_path / "plain.json", seed=3)
    assert json.loads((tmp_path / "plain.json").read_text())["seed"] == 3
    with pytest.raises(ConfigError):
        load_split(tmp_path / "missing.json")
