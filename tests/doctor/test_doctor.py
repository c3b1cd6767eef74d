"""The training doctor end to end: runs with a known problem (and a healthy one) through rnnkit's API
and CLI, checking the finding, the checklist verdicts, findings.json and the repairs."""

from __future__ import annotations

import json

import pytest

from fakedata import nan_once_at, write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.doctor import diagnose

# one pass an epoch (train.min_epoch_steps=1): these tests count the steps of an epoch
SMALL = ["train.progress=none", "train.threads=1", "model.hidden_size=16", "model.embedding_dim=8",
         "train.min_epoch_steps=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    return {"clean": write_numeric_jsonl(root / "clean.jsonl", n=240),
            "noisy": write_numeric_jsonl(root / "noisy.jsonl", n=120, label_noise=0.6, seed=1)}


def run(path, out, *sets):
    return api.train(C.resolve(None, [f"data.train={path}", *SMALL, *sets]), out)


def verdicts(run_dir):
    return {c["item"]: c["verdict"] for c in json.loads((run_dir / "checklist.json").read_text())}


def test_healthy_run_has_no_findings_and_passes_the_checklist(data, tmp_path):
    summary = run(data["clean"], tmp_path / "run", "train.max_epochs=15", "optim.lr=1e-2")
    found = json.loads((tmp_path / "run" / "findings.json").read_text())
    # nothing wrong; at most the note that max_epochs ended a run that was still improving
    assert [f["code"] for f in found] == summary["findings"] and {f["severity"] for f in found} <= {"info"}
    assert set(summary["findings"]) <= {"training.unfinished"}
    v = verdicts(tmp_path / "run")
    assert list(v) == ["Data loading correctly?", "Shapes match expectations?", "Gradients flowing backwards?",
                       "Loss reasonable magnitude?", "Validation loss improving?", "Training time reasonable?",
                       "Predictions sensible?", "Hyperparameters tuned?"]
    assert all(v[item] == "pass" for item in list(v)[:7]), v
    # hidden 16 / embedding 8 are below the guide's ranges: the last item says so
    assert v["Hyperparameters tuned?"] == "fail"
    test = summary["metrics"]["test"]
    assert test["baselines"]["majority_class"]["accuracy"] < test["accuracy"]


def test_overfitting_is_found_explained_and_shown_by_the_cli(data, tmp_path, capsys):
    out = tmp_path / "run"
    run(data["noisy"], out, "train.max_epochs=40", "optim.lr=1e-2", "model.dropout=0.0", "model.recurrent_dropout=0.0",
        "optim.weight_decay=0.0", "train.patience=40", "model.hidden_size=64", "train.monitor=loss")
    (finding,) = [f for f in json.loads((out / "findings.json").read_text()) if f["code"] == "overfitting"]
    ev = finding["evidence"]
    assert finding["severity"] == "warning" and ev["val_loss_last"] > 1.25 * ev["val_loss_best"]
    assert ev["train_loss_last"] < ev["train_loss_at_best"]
    # dropout 0.0 -> 0.3: into the range the advice cites (issue 10: it said 0.2 "(the guide: 0.3 to 0.5)")
    assert any("model.dropout=0.3 (the guide: 0.3 to 0.5)" in a for a in finding["advice"])
    assert "best weights" in finding["action"] and finding["repair"] is None
    assert verdicts(out)["Predictions sensible?"] == "fail"  # 60% random labels: no better than the majority
    assert main(["diagnose", str(out)]) == 0  # warnings only
    text = capsys.readouterr().out
    assert "WARNING overfitting: Training loss decreases but validation loss increases" in text
    assert "[FAIL] Predictions sensible?" in text and "try: more dropout" in text


def test_underfitting_with_a_tiny_learning_rate(data, tmp_path):
    out = tmp_path / "run"
    run(data["clean"], out, "train.max_epochs=6", "optim.lr=1e-6")
    diag = diagnose(out)
    (finding,) = [f for f in diag.findings if f.code == "underfitting"]
    assert finding.evidence["train_loss_best"] >= 0.9 * finding.evidence["chance_loss"]
    # 1e-6 is floored at optim.min_lr (1e-5): the advice names a rate that changes the run (issue 10)
    assert finding.advice[0].startswith("a higher learning rate: --set optim.lr=0.001 (the guide: 1e-3 to 1e-2) "
                                        "(the rate that ran: 1e-05; optim.lr=1e-06 is floored at optim.min_lr)")
    v = {c.item: c.verdict for c in diag.checklist}
    assert v["Validation loss improving?"] == "fail" and v["Loss reasonable magnitude?"] == "pass"


@pytest.mark.parametrize("bucketing", [False, True])
def test_padding_without_bucketing_is_a_slow_training_finding(data, tmp_path, bucketing):
    out = tmp_path / "run"
    summary = run(data["clean"], out, "train.max_epochs=2", "optim.lr=1e-2", f"data.bucketing={str(bucketing).lower()}")
    codes = diagnose(out).codes
    if bucketing:
        assert summary["padding_share"] < 0.3 and "slow.padding" not in codes
    else:
        assert summary["padding_share"] > 0.3 and "slow.padding" in codes
        (f,) = [f for f in diagnose(out).findings if f.code == "slow.padding"]
        assert f.advice[0] == "turn length bucketing on: --set data.bucketing=true"
        assert verdicts(out)["Training time reasonable?"] == "fail"


def test_nan_stop_gives_an_error_finding_and_diagnose_repair_finishes_the_run(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    nan_once_at(monkeypatch, 9)
    args = ["train", str(data["clean"]), "--out", str(out), *[f"--set={s}" for s in SMALL + ["train.max_epochs=3"]]]
    assert main(args) == 4
    assert "doctor: nonfinite" in capsys.readouterr().err
    (finding,) = json.loads((out / "findings.json").read_text())
    assert finding["code"] == "nonfinite" and finding["severity"] == "error"
    assert finding["evidence"]["step"] == 10 and finding["repair"] == {"mode": "resume", "set": ["optim.lr=0.0001"]}
    assert main(["diagnose", str(out)]) == 1  # an error finding
    assert main(["diagnose", str(out), "--repair"]) == 0
    text = capsys.readouterr().out
    assert f"repairing nonfinite: rnnkit train --resume {out} --set optim.lr=0.0001" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "max_epochs" and summary["epochs_run"] == 3
    assert C.from_dict(C.load_yaml(out / "config.yaml")).optim.lr == pytest.approx(1e-4)
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["by"] for e in events if e.get("event") == "repair"] == ["rnnkit diagnose --repair"]
    assert not [f for f in json.loads((out / "findings.json").read_text()) if f["severity"] == "error"]


def test_train_nonfinite_repair_continues_by_itself(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    nan_once_at(monkeypatch, 9)
    summary = run(data["clean"], out, "train.max_epochs=3", "optim.lr=1e-2", "train.nonfinite=repair")
    assert summary["stopped"] == "max_epochs" and "nonfinite" in summary["findings"]
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (repair,) = [e for e in events if e.get("event") == "repair"]
    assert repair["set"] == ["optim.lr=0.001"] and repair["evidence"]["step"] == 10
    steps = [e["step"] for e in events if e.get("kind") == "epoch"]
    assert steps == sorted(steps) and len(steps) == 3  # the failed attempt's records were dropped, none twice
    (finding,) = [f for f in diagnose(out).findings if f.code == "nonfinite"]
    assert finding.severity == "info" and "continued from the last valid checkpoint" in finding.action


def test_the_preflight_changes_nothing_in_training(data, tmp_path, monkeypatch):
    """Same final weights with and without the preflight batch (dropout and recurrent dropout on)."""
    from safetensors.torch import load_file

    from rnnkit import api
    from rnnkit.training import checkpoint as ckpt

    sets = ["train.max_epochs=2", "model.dropout=0.3", "model.recurrent_dropout=0.2"]
    run(data["clean"], tmp_path / "with", *sets)
    monkeypatch.setattr(api, "preflight", lambda *a, **k: {"event": "preflight-skipped"})  # what api hands fit
    run(data["clean"], tmp_path / "without", *sets)
    a, b = (load_file(ckpt.read_pointer(tmp_path / r / "checkpoints", "last") / "model.safetensors")
            for r in ("with", "without"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_nan_at_the_very_first_steps_is_repaired_by_starting_again(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    nan_once_at(monkeypatch, 1)  # step 2: before the first checkpoint (end of epoch 1)
    summary = run(data["clean"], out, "train.max_epochs=2", "optim.lr=1e-2", "train.nonfinite=repair")
    assert summary["stopped"] == "max_epochs" and summary["epochs_run"] == 2
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (repair,) = [e for e in events if e.get("event") == "repair"]
    assert repair["mode"] == "restart" and repair["set"] == ["optim.lr=0.001"]
    assert C.from_dict(C.load_yaml(out / "config.yaml")).optim.lr == pytest.approx(1e-3)


def test_a_rate_far_too_high_is_divergence_and_diagnose_repair_starts_again_lower(data, tmp_path, capsys):
    """Issue 10: LR 3.0 with clipping on never produces a NaN; the doctor used to call it underfitting."""
    out = tmp_path / "run"
    summary = run(data["clean"], out, "train.max_epochs=4", "optim.lr=3.0")
    assert "divergence" in summary["findings"] and "underfitting" not in summary["findings"]
    (f,) = [f for f in diagnose(out).findings if f.code == "divergence"]
    assert f.repair == {"mode": "restart", "set": ["optim.lr=0.001"]}
    assert main(["diagnose", str(out), "--repair"]) in (0, 1)
    repaired = json.loads((out / "summary.json").read_text())
    assert C.from_dict(C.load_yaml(out / "config.yaml")).optim.lr == pytest.approx(1e-3)
    assert "divergence" not in diagnose(out).codes and repaired["epochs_run"] == 4
    test = repaired["metrics"]["test"]
    assert test["accuracy"] > test["baselines"]["majority_class"]["accuracy"]


def test_a_nan_from_an_absurd_rate_is_repaired_once_into_the_guides_range(data, tmp_path, capsys):
    out = tmp_path / "run"
    summary = run(data["clean"], out, "train.max_epochs=6", "optim.lr=1e4", "optim.clip_norm=null",
                  "train.nonfinite=repair")  # 6 epochs of 6 steps: the loss overflows at step 20
    assert summary["stopped"] == "max_epochs"
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (repair,) = [e for e in events if e.get("event") == "repair"]  # one repair, not two at 1e3 and 1e2
    assert repair["mode"] == "restart"  # the weights had diverged before the NaN: no checkpoint worth resuming
    assert repair["set"] == ["optim.lr=0.001", "optim.clip_norm=1.0"]
    (f,) = [f for f in diagnose(out).findings if f.code == "nonfinite"]
    assert f.advice == ["start the next run with the repaired settings: --set optim.lr=0.001 --set optim.clip_norm=1.0"]


def test_an_info_finding_about_speed_does_not_fail_the_training_time_check(data, tmp_path):
    """Only a warning fails "Training time reasonable?"; an info finding (one thread that waited for a CPU on a
    busy machine) is named in the pass, so a short run on a shared machine is not called slow for it."""
    from rnnkit.doctor.checklist import run_checklist
    from rnnkit.doctor.evidence import load_evidence
    from rnnkit.doctor.rules import Finding

    out = tmp_path / "run"
    run(data["clean"], out, "train.max_epochs=1")
    ev = load_evidence(out)

    def finding(severity):
        return Finding(code="slow.threads", severity=severity, title="Very slow training", evidence={},
                       explanation="the machine was oversubscribed", advice=[])

    time_check = {c.item: c for c in run_checklist(ev, [finding("info")])}["Training time reasonable?"]
    assert time_check.verdict == "pass" and "note: the machine was oversubscribed" in time_check.detail
    time_check = {c.item: c for c in run_checklist(ev, [finding("warning")])}["Training time reasonable?"]
    assert time_check.verdict == "fail" and time_check.detail == "the machine was oversubscribed"


def test_padding_in_a_pass_of_one_batch_is_not_called_slow(tmp_path):
    """24 rows, batch 32: the one batch holds every row, so no bucketing can pad less; no slow.padding, and the
    time check passes (it failed a 10-second run before)."""
    data = write_numeric_jsonl(tmp_path / "few.jsonl", n=30)
    out = tmp_path / "run"
    summary = run(data, out, "train.max_epochs=1", "data.bucketing=false")
    assert summary["padding_share"] > 0.3 and summary["steps"] == summary["epochs_run"]  # one batch per pass
    assert "slow.padding" not in diagnose(out).codes
    assert verdicts(out)["Training time reasonable?"] == "pass"
