"""Item 12: a non-finite loss or gradient injected at a known step stops the run with exit status 4,
names the step and the batch's records, leaves every checkpoint as it was, and `--resume` from the last
valid checkpoint then finishes exactly like the uninterrupted run. The loss case runs for every task family."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest
import torch
from relsupport import assert_same_run, family_train_args, records, scores_of, step_records, tree_digest, with_scores

from rnnkit.cli import main
from rnnkit.training import checkpoint as ckpt

BAD_STEP = 10  # the first step after the mid-epoch checkpoint of step 9


@pytest.mark.parametrize(("family", "what"), [("classify", "loss"), ("classify", "gradient norm"), ("tag", "loss"),
                                              ("seq2seq", "loss"), ("forecast", "loss")])
def test_nonfinite_stops_names_step_and_records_and_resume_works(family_run, tmp_path, monkeypatch, capsys,
                                                                 family, what):
    data, reference = family_run(family)
    run = tmp_path / "run"
    before = {}
    module = importlib.import_module(f"rnnkit.tasks.{family}")
    real_forward = module.TASK.forward

    def forward(model, batch, step=None):
        out = real_forward(model, batch, step)
        if step == BAD_STEP - 1:  # training passes the number of steps taken so far; evaluation passes None
            before.update(tree_digest(run / "checkpoints"))
            scores = scores_of(family, out)
            if what == "loss":
                return with_scores(family, out, scores * float("nan"))  # NaN logits/predictions -> NaN loss
            scores.register_hook(lambda grad: torch.full_like(grad, float("nan")))  # finite loss, NaN gradient
        return out

    monkeypatch.setattr(module, "TASK", dataclasses.replace(module.TASK, forward=forward))
    assert main(family_train_args(family, data, run)) == 4
    err = capsys.readouterr().err
    ids = step_records(reference)[BAD_STEP]["ids"]  # the batch the uninterrupted run used at this step
    assert f"non-finite {what} (nan) at step {BAD_STEP} (epoch 2); batch records: {', '.join(ids[:10])} ..." in err
    assert "last finite loss" in err and "learning rate" in err and "--resume" in err
    event = [r for r in records(run) if r.get("event") == "nonfinite"]
    assert [(e["what"], e["step"], e["ids"]) for e in event] == [(what, BAD_STEP, ids)]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == f"nonfinite_{what.replace(' ', '_')}" and summary["step"] == BAD_STEP - 1
    assert tree_digest(run / "checkpoints") == before  # nothing written, replaced or pruned after the NaN
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == BAD_STEP - 1
    assert all(torch.isfinite(t).all() for t in last.model_state.values())

    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(run, reference)
