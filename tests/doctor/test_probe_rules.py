"""The probe rules (issue 10) on hand-made probe records across their thresholds, and end to end through the
CLI: an injected problem is found, a healthy run gets none of the probe codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fakedata import write_numeric_jsonl
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.doctor import probe_rules as PR
from rnnkit.doctor import rules as R
from rnnkit.doctor.evidence import Evidence

CODES = {"gradients.vanishing", "gradients.exploding", "saturation", "dead_units", "updates.too_small",
         "updates.too_large"}
LAYERS = ["encoder.layers.0", "encoder.layers.1"]


def probe(step, *, first=1.0, last=1.0, total=0.5, clip=1.0, saturation=0.02, dead=0.0, ratio=1e-3):
    """A probe record as `rnnkit.training.probes.Probe` writes it (the numbers the rules read)."""
    return {"kind": "probe", "step": step, "epoch": 0, "lr": 1e-3,
            "grad_norm": {"embedding": 0.3, LAYERS[0]: first, LAYERS[1]: last, "head": 0.4},
            "update_ratio": {"embedding": 1e-3, LAYERS[0]: ratio, LAYERS[1]: ratio, "head": 1e-3},
            "recurrent": LAYERS, "grad_norm_total": total, "clip_norm": clip, "clipped_share": 0.0,
            "steps_since_probe": 100, "cell": "lstm", "gate_saturation": saturation, "dead_output_share": dead}


def evidence(records, cfg=None):
    return Evidence(Path("run"), cfg or C.Config(), {}, [], [], [{"event": "preflight"}, *records])


def codes(ev):
    return sorted(f.code for rule in PR.PROBE_RULES for f in rule(ev))


def test_healthy_probes_and_no_probes_find_nothing():
    assert codes(evidence([probe(100 * i) for i in range(1, 6)])) == []
    assert codes(evidence([])) == []


@pytest.mark.parametrize(("values", "code", "fires"), [
    ({"first": 2e-3}, "gradients.vanishing", False),
    ({"first": 5e-4}, "gradients.vanishing", True),
    ({"total": 9.0}, "gradients.exploding", False),
    ({"total": 11.0}, "gradients.exploding", True),
    ({"saturation": 0.45}, "saturation", False),
    ({"saturation": 0.55}, "saturation", True),
    ({"dead": 0.45}, "dead_units", False),
    ({"dead": 0.55}, "dead_units", True),
    ({"ratio": 2e-6}, "updates.too_small", False),
    ({"ratio": 5e-7}, "updates.too_small", True),
    ({"ratio": 0.08}, "updates.too_large", False),
    ({"ratio": 0.2}, "updates.too_large", True),
])
def test_each_rule_across_its_threshold(values, code, fires):
    ev = evidence([probe(100 * i, **values) for i in range(1, 6)])
    assert codes(ev) == ([code] if fires else [])


@pytest.mark.parametrize("bad", [1, 2])  # of 5 probes: a minority is not "sustained"
def test_a_few_bad_probes_are_not_a_finding(bad):
    records = [probe(100 * i, **({"saturation": 0.9, "first": 1e-5, "ratio": 1e-8} if i <= bad else {}))
               for i in range(1, 6)]
    assert codes(evidence(records)) == []


def test_too_few_probes_are_not_a_finding():
    assert codes(evidence([probe(100 * i, saturation=0.9) for i in range(1, PR.MIN_PROBES)])) == []
    assert codes(evidence([probe(100 * i, saturation=0.9) for i in range(1, PR.MIN_PROBES + 1)])) == ["saturation"]


def test_exploding_without_clipping_is_growth():
    cfg = C.resolve(None, ["optim.clip_norm=null"])
    steady = [probe(100 * i, total=50.0, clip=None) for i in range(1, 6)]  # large but not growing
    assert codes(evidence(steady, cfg)) == []
    grown = [probe(100, total=0.5, clip=None)] + [probe(100 * i, total=80.0, clip=None) for i in range(2, 6)]
    found = PR.exploding(evidence(grown, cfg))
    assert [f.code for f in found] == ["gradients.exploding"]
    assert any("--set optim.clip_norm=1.0" in a for a in found[0].advice)


def test_vanishing_needs_two_recurrent_layers():
    one = [dict(probe(100 * i, first=1e-6), recurrent=LAYERS[:1]) for i in range(1, 6)]
    assert codes(evidence(one)) == []


def test_findings_carry_numbers_and_advice_that_the_config_accepts():
    records = [probe(100 * i, first=1e-5, total=40.0, saturation=0.8, dead=0.7, ratio=1e-7) for i in range(1, 6)]
    cfg = C.resolve(None, ["data.standardize=false", "optim.min_lr=1e-9"])
    found = [f for rule in PR.PROBE_RULES for f in rule(evidence(records, cfg))]
    assert {f.code for f in found} == CODES - {"updates.too_large"}
    for f in found:
        assert isinstance(f, R.Finding) and f.severity == "warning" and f.explanation and f.advice
        assert f.evidence.get("probes") == 5
        for key, value in re.findall(r"--set (\S+?)=(\S+)", " ".join(f.advice)):
            C.resolve(None, [f"{key}={value}"])  # every suggested change is a valid config change
    small = next(f for f in found if f.code == "updates.too_small")
    assert small.evidence["update_ratio_median"] == pytest.approx(1e-7)
    assert "--set optim.lr=" in small.advice[0] and "--set optim.min_lr=1e-5" in small.advice[1]


# ---- end to end through the CLI: train, then `rnnkit diagnose` with the probe rules among the doctor's ----

FAST = ["--set", "model.hidden_size=16", "--set", "model.embedding_dim=16", "--set", "data.batch_size=16",
        "--set", "train.progress=none", "--set", "train.threads=1", "--set", "train.probe_every=5"]


@pytest.fixture
def with_probe_rules():
    assert set(PR.PROBE_RULES) <= set(R.RULES)  # the doctor runs them with its own rules


def _diagnosed(tmp_path, *sets):
    data = write_numeric_jsonl(tmp_path / "series.jsonl")
    run = tmp_path / "run"
    args = [a for s in sets for a in ("--set", s)]
    assert main(["train", str(data), "--out", str(run), *FAST, *args]) == 0
    findings = json.loads((run / "findings.json").read_text())
    errors = any(f["severity"] == "error" for f in findings)  # e.g. divergence at a huge rate: exit 1
    assert main(["diagnose", str(run)]) == (1 if errors else 0)
    found = {f["code"] for f in json.loads((run / "findings.json").read_text())}
    probes = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "probe"' in x]
    return found, probes


def test_a_tiny_learning_rate_is_found(tmp_path, with_probe_rules):
    found, probes = _diagnosed(tmp_path, "train.max_epochs=3", "optim.lr=1e-7", "optim.min_lr=1e-9")
    assert len(probes) >= PR.MIN_PROBES
    assert found & CODES == {"updates.too_small"}


def test_a_huge_learning_rate_saturates_the_gates(tmp_path, with_probe_rules):
    found, _ = _diagnosed(tmp_path, "train.max_epochs=6", "optim.lr=0.3", "optim.clip_norm=null",
                          "optim.warmup_epochs=0")
    assert "saturation" in found and "clipping.off" in found  # the loss-curve rules see the same run


def test_a_healthy_run_has_no_probe_findings(tmp_path, with_probe_rules):
    found, probes = _diagnosed(tmp_path, "train.max_epochs=3")
    assert len(probes) >= PR.MIN_PROBES
    assert found & CODES == set()


def test_lower_rate_advice_names_a_rate_that_runs_below_the_floor():
    """At optim.lr = optim.min_lr = 1e-5 a 3x lower rate is floored back to 1e-5 by the schedule: the advice must
    lower the floor too (the bug issue 10 found in the underfitting advice, here in the probe rules)."""
    from rnnkit.training.schedules import lr_at

    records = [probe(100 * i, saturation=0.8, total=40.0, ratio=0.2) for i in range(1, 6)]
    cfg = C.resolve(None, ["optim.lr=1e-5"])
    for f in (f for rule in PR.PROBE_RULES for f in rule(evidence(records, cfg))):
        for advice in (a for a in f.advice if a.startswith("a lower learning rate")):
            sets = [f"{k}={v}" for k, v in re.findall(r"--set (\S+?)=(\S+)", advice)]
            new = C.resolve(None, sets, base=cfg)
            assert lr_at(0, base_lr=new.optim.lr, min_lr=new.optim.min_lr) < 1e-5, (f.code, advice)
