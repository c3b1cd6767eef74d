"""Built-in data sets: registry, lookup, files, install hints (no network)."""

from __future__ import annotations

import importlib.util

import pytest

from rnnkit.data import datasets
from rnnkit.data.datasets import BUILTIN, BuiltinDataset, get_builtin, list_builtins, register
from rnnkit.errors import ConfigError, RnnkitError

HAS_SKTIME = importlib.util.find_spec("sktime") is not None


@pytest.mark.skipif(not HAS_SKTIME, reason="sktime (ships JapaneseVowels) is not installed")
def test_japanese_vowels_installed_and_files_exist():
    (row,) = [r for r in list_builtins() if r["name"] == "japanese_vowels"]
    assert row["installed"] is True
    assert (row["task"], row["package"], row["install"]) == (
        "classify",
        "sktime",
        "pip install --no-deps sktime",
    )
    files = get_builtin("japanese_vowels").files()
    assert set(files) == {"train", "test"}
    assert files["train"].name == "JapaneseVowels_TRAIN.ts" and files["train"].is_file()
    assert files["test"].name == "JapaneseVowels_TEST.ts" and files["test"].is_file()
    assert get_builtin("japanese_vowels").reader_options == {"format": "ts"}


def test_missing_package_gives_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        datasets.importlib.util, "find_spec", lambda name, *a: None if name == "sktime" else real(name, *a)
    )
    ds = get_builtin("japanese_vowels")
    assert ds.installed() is False
    assert [r["installed"] for r in list_builtins() if r["name"] == "japanese_vowels"] == [False]
    with pytest.raises(RnnkitError) as e:
        ds.files()
    assert "pip install --no-deps sktime" in str(e.value) and "'sktime'" in str(e.value)


def test_package_without_the_files(tmp_path, monkeypatch):
    (tmp_path / "fakepkg_rnnkit").mkdir()
    (tmp_path / "fakepkg_rnnkit" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))  # also clears the import caches
    ds = BuiltinDataset(
        name="fake",
        task="classify",
        package="fakepkg_rnnkit",
        install="pip install fakepkg_rnnkit",
        description="d",
        reference="r",
        data_files={"train": "data/train.csv"},
    )
    assert not ds.installed()
    with pytest.raises(RnnkitError, match="lacks .*train.csv.*pip install fakepkg_rnnkit"):
        ds.files()
    (tmp_path / "fakepkg_rnnkit" / "data").mkdir()
    (tmp_path / "fakepkg_rnnkit" / "data" / "train.csv").write_text("text,label\n")
    assert ds.installed()
    assert ds.files() == {"train": tmp_path / "fakepkg_rnnkit" / "data" / "train.csv"}


def test_unknown_name_lists_known_and_nearest():
    with pytest.raises(ConfigError) as e:
        get_builtin("japanese_vowel")
    msg = str(e.value)
    assert "did you mean 'japanese_vowels'" in msg
    for name in ("japanese_vowels", "turkish_treebanks", "cmudict", "sunspots", "air_passengers"):
        assert name in msg.split("known data sets:")[1]


def test_registry_is_extensible_and_rejects_duplicates(monkeypatch):
    monkeypatch.setattr(datasets, "BUILTIN", dict(BUILTIN))
    extra = BuiltinDataset("zz_test", "forecast", "nopkg_xyz", "pip install nopkg_xyz", "d", "r", {"train": "a.csv"})
    register(extra)
    assert datasets.get_builtin("zz_test") is extra
    assert [r["name"] for r in datasets.list_builtins()][-1] == "zz_test"
    with pytest.raises(ValueError, match="twice"):
        register(extra)
    assert "zz_test" not in BUILTIN  # the real registry was not touched


def test_entries_are_hashable_value_objects():
    ds = get_builtin("japanese_vowels")
    assert hash(ds) == hash(ds)
    with pytest.raises(AttributeError):
        ds.name = "x"  # type: ignore[misc]
