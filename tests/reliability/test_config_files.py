"""Item 11: config files are parsed safely (YAML tags that would construct Python objects are refused,
nothing runs), and unknown keys are rejected with the nearest valid key, wherever config comes from:
--config FILE, --set, or the config.yaml of a run directory that --resume reads."""

from __future__ import annotations

import pytest
from relsupport import BASE, sets, tree_digest

from rnnkit.cli import main

PAYLOADS = [
    "model: !!python/object/apply:os.system ['touch {marker}']",
    "model: !!python/object/new:os.system ['touch {marker}']",
    "optim:\n  lr: !!python/object/apply:subprocess.call [['touch', '{marker}']]",
    "train: !!python/name:os.system",
    "data: !!python/module:os",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_yaml_tags_never_construct_objects(series, tmp_path, capsys, payload):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text("# looks like a config\n" + payload.format(marker=marker) + "\n")
    assert main(["train", str(series), "--config", str(evil), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"config file {evil}:" in err and "not valid YAML" in err and "no !!python tags" in err
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_tampered_run_config_is_refused_on_resume(finished_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = finished_run / "config.yaml"
    config.write_text(config.read_text() + f"extra: !!python/object/apply:os.system ['touch {marker}']\n")
    before = tree_digest(finished_run)
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert f"config file {config}:" in capsys.readouterr().err
    assert not marker.exists()
    assert tree_digest(finished_run) == before


@pytest.mark.parametrize(("where", "text", "message"), [
    ("file", "optimizer:\n  lr: 0.01\n", "unknown section 'optimizer'. Did you mean 'optim'?"),
    ("file", "model:\n  hiden_size: 8\n", "unknown key 'model.hiden_size'. Did you mean 'model.hidden_size'?"),
    ("file", "train:\n  max_epoch: 3\n", "unknown key 'train.max_epoch'. Did you mean 'train.max_epochs'?"),
    ("set", "data.batchsize=8", "--set: unknown key 'data.batchsize'. Did you mean 'data.batch_size'?"),
    ("set", "optim.learnig_rate=3", "--set: unknown key 'optim.learnig_rate'. Did you mean 'optim.lr'?"),
])
def test_unknown_keys_are_rejected_with_the_nearest_key(series, tmp_path, capsys, where, text, message):
    run = tmp_path / "run"
    if where == "file":
        path = tmp_path / "my.yaml"
        path.write_text(text)
        args, message = ["--config", str(path)], f"{path}: {message}"
    else:
        args = ["--set", text]
    assert main(["train", str(series), *sets(BASE), *args, "--out", str(run)]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()  # rejected before anything was written


def test_unknown_keys_are_rejected_on_resume(finished_run, capsys):
    before = tree_digest(finished_run)
    assert main(["train", "--resume", str(finished_run), "--set", "optim.weight_decy=0.1"]) == 2
    assert "unknown key 'optim.weight_decy'. Did you mean 'optim.weight_decay'?" in capsys.readouterr().err
    config = finished_run / "config.yaml"
    config.write_text(config.read_text().replace("  hidden_size:", "  hiden_size:"))
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert "unknown key 'model.hiden_size'. Did you mean 'model.hidden_size'?" in capsys.readouterr().err
    assert {k: v for k, v in tree_digest(finished_run).items() if k != "config.yaml"} == \
        {k: v for k, v in before.items() if k != "config.yaml"}


ALIAS_BOMB = "data:\n  tokenize: [" + ", ".join(
    [f"&l0 [{', '.join(['x'] * 9)}]"] + [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 7)]) + "]\n"


def test_yaml_alias_bomb_gives_a_short_error(series, tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)  # 7 levels: 4.8M strings when expanded (kept small so the test stays fast)
    assert main(["train", str(series), "--config", str(bomb), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "config key 'data.tokenize'" in err
    assert len(err) < 10_000
