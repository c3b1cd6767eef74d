"""The doctor on every family's uninterrupted run: the preflight's three checks pass (shapes, gradients,
initial loss against the family's know-nothing loss), and the checklist and findings files are written."""

from __future__ import annotations

import json

import pytest

from rnnkit.doctor import diagnose


@pytest.mark.parametrize("family", ["classify", "tag", "seq2seq", "forecast"])
def test_preflight_checks_pass_for_every_family(family_run, family):
    _, run = family_run(family)
    pre = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][0]
    assert pre["event"] == "preflight" and pre["shape_problem"] is None, pre
    assert pre["output_shape"][0] == pre["batch_size"] == pre["target_shape"][0]
    assert pre["chance_loss"] > 0 and 0 < pre["initial_loss"] < 3 * pre["chance_loss"]
    diag = diagnose(run)
    verdicts = {c.item: c.verdict for c in diag.checklist}
    for item in ("Shapes match expectations?", "Gradients flowing backwards?", "Loss reasonable magnitude?",
                 "Data loading correctly?"):
        assert verdicts[item] == "pass", (item, [c for c in diag.checklist if c.item == item])
    assert not [f for f in diag.findings if f.code.startswith("setup.")]
    assert json.loads((run / "checklist.json").read_text())[0]["item"] == "Data loading correctly?"
