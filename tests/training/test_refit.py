"""Issue 11, item 3: the refit on train + validation (`train.refit`, rnnkit.training.refit).

After early stopping picks the best pass E, a second model trained from the same seed on the training and
validation rows for E passes becomes the run's final model: the test split is scored on it, `evaluate`, `predict`
and `load_run` use it, summary.json says so (rows, passes) and keeps the first model's validation figures. Off, the
run is what it was. A refit killed with SIGKILL continues on `--resume` to the same weights, bit for bit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fakedata import write_numeric_jsonl
from reliability.relsupport import FAMILIES, family_overrides
from rnnkit import api
from rnnkit import config as C
from rnnkit.data.collate import Example, SequenceDataset
from rnnkit.data.pipeline import PreparedData
from rnnkit.errors import ConfigError
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import refit

# 60 noisy rows (a fifth mislabelled, so that the run stops early): 54 train, 6 val; 2 batches of 32 a pass, so 4
# passes make one epoch (train.min_epoch_steps). A high rate with a short plateau patience: it decays several times.
# train.monitor=loss: the validation loss decides (with 6 validation rows the default follows the training rows' loss,
# which falls to the last pass here; the refit replays whichever figure the first run followed).
SMALL = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "train.progress=none",
         "train.threads=1", "train.max_epochs=15", "train.patience=5", "optim.lr=3e-2", "optim.plateau_patience=1",
         "train.log_every=1", "train.device=cpu", "train.monitor=loss"]


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _weights(run: Path, which: str) -> dict:
    path = ckpt.read_pointer(run / "checkpoints", which)
    assert path is not None, f"{run}: no {which}.json"
    return load_file(str(path / ckpt.WEIGHTS))


def _same(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit-data")
    return (write_numeric_jsonl(root / "train.jsonl", n=60, label_noise=0.2, seed=0),
            write_numeric_jsonl(root / "test.jsonl", n=30, label_noise=0.0, seed=1))


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """The same run with train.refit false and true (same seed), once for the module's tests."""
    train, test = files
    root = tmp_path_factory.mktemp("refit-runs")
    out = {}
    for mode in ("false", "true"):
        cfg = C.resolve(None, [f"data.train={train}", f"data.test={test}", *SMALL, f"train.refit={mode}"])
        out[mode] = (root / mode, api.train(cfg, root / mode))
    return out


def test_the_final_model_is_trained_on_train_and_validation_for_the_best_pass_count(runs):
    run, summary = runs["true"]
    block = summary["refit"]
    sizes = summary["data"]["sizes"]
    assert block["on"] and block["why"] == "train.refit=true"
    assert block["rows"] == sizes["train"] + sizes["val"] == 60 and block["val_rows"] == sizes["val"] == 6
    assert block["passes"] == summary["best_epoch"] < summary["epochs_run"]  # the best pass is not the last
    assert block["epoch_scale"] == summary["epoch_scale"] == 4 and block["epochs"] == block["passes"] / 4
    second = _records(run / "refit" / "metrics.jsonl")
    passes = [r for r in second if r.get("kind") == "epoch"]
    assert [r["epoch"] for r in passes] == list(range(1, block["passes"] + 1))
    # every pass reads every training and validation row once
    split = json.loads((run / "splits.json").read_text())["splits"]
    rows = sorted(split["train"] + split["val"])
    steps = [r for r in second if r.get("kind") == "step"]
    assert len(steps) == block["steps"] == 2 * block["passes"]
    for p in range(block["passes"]):
        assert sorted(i for r in steps if r["epoch"] == p for i in r["ids"]) == rows
    # the first run's schedule pass by pass: warm-up over its first 4 passes, the plateau decay after the same passes
    first = [r for r in _records(run / "metrics.jsonl") if r.get("kind") == "epoch"][: block["passes"]]
    assert [r["lr"] for r in passes] == [r["lr"] for r in first]
    assert len(block["lr_decayed_after"]) >= 2 and len({r["lr"] for r in passes}) > 4
    assert summary["data"]["notes"][-1].startswith("final model refit on train + validation (60 rows: 54 + 6) for "
                                                   f"{block['passes']} passes")


def test_test_evaluate_and_predict_use_the_refit_model(runs, files, tmp_path):
    run, summary = runs["true"]
    final, first = _weights(run, "best"), _weights(run, "first_best")
    assert ckpt.read_pointer(run / "checkpoints", "best").name.startswith("refit-")
    assert not _same(final, first)
    assert _same(first, _weights(runs["false"][0], "best"))  # the first model is the refit-off run's model
    _, _, _, model, _ = api.load_run(run, device="cpu")
    assert _same({k: v for k, v in model.state_dict().items()}, final)
    scored = api.evaluate(run, files[1])
    assert scored["loss"] == pytest.approx(summary["metrics"]["test"]["loss"], rel=1e-6)
    assert scored["accuracy"] == summary["metrics"]["test"]["accuracy"]
    assert summary["refit"]["first_model"]["test"]["loss"] == runs["false"][1]["metrics"]["test"]["loss"]
    assert summary["metrics"]["test"]["loss"] != summary["refit"]["first_model"]["test"]["loss"]
    api.predict(run, files[1], tmp_path / "p.jsonl")
    api.predict(runs["false"][0], files[1], tmp_path / "q.jsonl")
    mine = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    other = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert len(mine) == len(other) == 30
    assert mine != other  # the probabilities of another model


def test_the_validation_figures_stay_the_first_models(runs):
    (_, off), (run, on) = runs["false"], runs["true"]
    assert on["metrics"]["val"] == off["metrics"]["val"]
    assert on["metrics"]["train"] == off["metrics"]["train"]
    assert on["best_epoch"] == off["best_epoch"] and on["epochs_run"] == off["epochs_run"]
    saved = json.loads((run / "summary.json").read_text())
    assert saved["refit"]["passes"] == on["refit"]["passes"] and saved["metrics"]["test"] == on["metrics"]["test"]


def test_refit_off_changes_nothing(runs):
    run, summary = runs["false"]
    assert summary["refit"] == {"on": False, "why": "train.refit=false"}
    assert not (run / "refit").exists() and not (run / "checkpoints" / "first_best.json").exists()
    assert not list((run / "checkpoints").glob("refit-*"))
    assert all("refit" not in n for n in summary["data"].get("notes") or [])
    for which in ("best", "last"):  # the off run and the refit run's first training: one model, bit for bit
        assert _same(_weights(run, which), _weights(runs["true"][0], "first_best" if which == "best" else "last"))
    def steps(path):  # what was trained, in order (the timing figures left out)
        return [(r["step"], r["ids"], r["loss"], r["lr"], r["grad_norm"]) for r in _records(path)
                if r.get("kind") == "step"]
    assert steps(run / "metrics.jsonl") == steps(runs["true"][0] / "metrics.jsonl")


def test_a_finished_refit_is_not_redone_on_resume(runs):
    run, summary = runs["true"]
    before = (run / "refit" / "metrics.jsonl").read_text()
    again = api.train(resume=run)
    assert again.get("already_finished") and again["refit"]["passes"] == summary["refit"]["passes"]
    assert (run / "refit" / "metrics.jsonl").read_text() == before
    assert ckpt.read_pointer(run / "checkpoints", "best").name.startswith("refit-")
    assert again["metrics"]["test"] == summary["metrics"]["test"]


CHILD = textwrap.dedent("""
    import sys
    from rnnkit.cli import main
    from rnnkit.training import refit

    real = refit.Replay.on_epoch_end

    def pause(self, state, record):
        real(self, state, record)
        if state.epoch == int(sys.argv[1]):  # before this pass's checkpoint is written
            print("PAUSED", flush=True)
            sys.stdin.readline()

    refit.Replay.on_epoch_end = pause
    sys.exit(main(sys.argv[2:]))
""")


def test_a_refit_killed_mid_way_continues_on_resume_to_the_same_weights(runs, files, tmp_path):
    train, test = files
    reference, summary = runs["true"]
    run = tmp_path / "run"
    args = ["train", str(train), "--test", str(test), "--out", str(run),
            *[a for s in [*SMALL, "train.refit=true"] for a in ("--set", s)]]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "3", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("PAUSED"):
            break
    else:
        raise AssertionError(f"the child ended before its pause: {proc.communicate()[1]}")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # killed in pass 3 of the refit: the first model is still the final one, the refit's last checkpoint is pass 2's
    assert not ckpt.read_pointer(run / "checkpoints", "best").name.startswith("refit-")
    assert not json.loads((run / "summary.json").read_text()).get("refit")
    assert ckpt.load_latest_valid(run / "refit" / "checkpoints").manifest["epoch"] == 2
    done = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", "--resume", str(run)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "finished already" not in done.stderr  # the first model had; the refit had not
    assert "note: final model refit on train + validation (60 rows: 54 + 6)" in done.stdout
    resumed = [r for r in _records(run / "refit" / "metrics.jsonl") if r.get("event") == "resume"]
    assert [r["epoch"] for r in resumed] == [2]
    assert _same(_weights(run, "best"), _weights(reference, "best"))
    assert json.loads((run / "summary.json").read_text())["metrics"]["test"] == summary["metrics"]["test"]


def _prepared(val_rows: int, streams=None) -> PreparedData:
    ds = SequenceDataset([Example(id=f"v:{i}", inputs=torch.ones(1, dtype=torch.long)) for i in range(val_rows)])
    return PreparedData(datasets={"train": SequenceDataset([]), "val": ds}, prep=None, streams=streams)


def test_auto_refits_when_validation_is_small_and_true_fails_early_where_it_cannot():
    assert C.resolve(None, []).train.refit is False  # the default (BENCHMARKS.md: it did not help reliably)
    assert not refit.decide(C.resolve(None, []), _prepared(3)).on
    auto = C.resolve(None, ["train.refit=auto"])
    small = refit.decide(auto, _prepared(refit.AUTO_VAL_ROWS - 1))
    assert small.on and small.why == f"auto: validation holds {refit.AUTO_VAL_ROWS - 1} rows, fewer than " \
                                     f"{refit.AUTO_VAL_ROWS}"
    assert not refit.decide(auto, _prepared(refit.AUTO_VAL_ROWS)).on
    assert not refit.decide(auto, _prepared(3, streams=object())).on  # truncated BPTT: auto stays off
    with pytest.raises(ConfigError, match="'train.refit': true cannot refit with truncated BPTT"):
        refit.decide(C.resolve(None, ["train.refit=true"]), _prepared(3, streams=object()))
    with pytest.raises(ConfigError, match="'train.refit': 1 is not one of false, true, auto"):
        C.resolve(None, ["train.refit=1"])


def test_the_report_and_the_model_card_say_the_model_was_refit(runs):
    pytest.importorskip("matplotlib")
    from rnnkit.report import write_report
    from rnnkit.report.card import write_model_card

    run, summary = runs["true"]
    page = write_report(run).read_text()
    assert "final model refit on train + validation (60 rows: 54 + 6)" in page
    assert "test (refit model)" in page and "val (first model)" in page
    card = write_model_card(run).read_text()
    assert "This model was then refit: trained again from the same seed on train + validation (60 rows)" in card
    off = write_report(runs["false"][0]).read_text()
    assert "refit model" not in off and "final model refit" not in off


def test_train_refit_changed_on_resume_undoes_or_does_the_refit(runs, tmp_path):
    import shutil

    on, off = tmp_path / "on", tmp_path / "off"
    shutil.copytree(runs["true"][0], on)
    shutil.copytree(runs["false"][0], off)
    undone = api.train(resume=on, overrides=["train.refit=false"])
    assert undone["refit"] == {"on": False, "why": "train.refit=false"}
    assert _same(_weights(on, "best"), _weights(runs["false"][0], "best"))  # the first model is final again
    assert undone["metrics"]["test"] == runs["false"][1]["metrics"]["test"]
    assert json.loads((on / "summary.json").read_text())["metrics"]["test"] == runs["false"][1]["metrics"]["test"]
    done = api.train(resume=off, overrides=["train.refit=true"])
    assert done["refit"]["on"] and not done.get("already_finished")
    assert _same(_weights(off, "best"), _weights(runs["true"][0], "best"))
    assert done["metrics"]["test"] == runs["true"][1]["metrics"]["test"]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_refits_through_its_own_collate_and_scores_the_refit_model(family, tmp_path):
    """Each family's tiny reliability run (3 epochs of 8 steps) with train.refit=true: the refit trains on the
    training and validation examples (evaluation-only fields of validation examples left out) and is final."""
    data = FAMILIES[family].write(tmp_path)
    cfg = C.resolve(None, [*family_overrides(family, data), "train.refit=true"])
    summary = api.train(cfg, tmp_path / "run")
    block = summary["refit"]
    assert block["on"] and block["val_rows"] > 0 and block["rows"] == block["train_rows"] + block["val_rows"]
    assert block["passes"] == summary["best_epoch"]
    assert summary["metrics"]["test"] == block["metrics"]["test"] != block["first_model"]["test"]
    _, _, _, model, _ = api.load_run(tmp_path / "run", device="cpu")
    assert _same(dict(model.state_dict()), _weights(tmp_path / "run", "best"))
    assert ckpt.read_pointer(tmp_path / "run" / "checkpoints", "best").name.startswith("refit-")
