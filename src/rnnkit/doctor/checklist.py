"""The guide's debugging checklist, each item an automated check with a verdict.

Verdicts: "pass", "fail", or "unknown" when the run has not produced the evidence yet (e.g. no
epoch finished). Every check names the evidence it used, so a reader can judge it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from rnnkit.doctor.evidence import BARELY, Evidence
from rnnkit.doctor.rules import INITIAL_LOSS_FACTOR, TRUNCATED_ROWS, Finding, truncation_advice
from rnnkit.errors import RnnkitError
from rnnkit.tasks import get_task

IMPROVEMENT = 0.01  # the validation loss must end at least 1% below its first value
TRUNCATED_SHARE = TRUNCATED_ROWS  # more of a split's rows cut (data.max_length, data.max_windows) fails the data check


@dataclass
class Check:
    item: str  # the checklist's wording
    verdict: str  # pass | fail | unknown
    detail: str
    evidence: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _data(ev: Evidence) -> Check:
    item = "Data loading correctly?"
    data = ev.summary.get("data")
    if not data:
        return Check(item, "unknown", "no data report (the run has not finished)", {})
    sizes = data.get("sizes", {})
    empty = [k for k, v in sizes.items() if not v]
    rejected = data.get("rejected", 0) or 0
    evidence = {"sizes": sizes, "rejected": rejected, "truncated": data.get("truncated", {})}
    if empty:
        return Check(item, "fail", f"empty split(s): {', '.join(empty)}", evidence)
    cut = {k: v / sizes[k] for k, v in (data.get("truncated") or {}).items() if sizes.get(k) and v}
    heavy = {k: share for k, share in cut.items() if share > TRUNCATED_SHARE}
    if heavy:
        by = (data.get("truncation") or {}).get("by", "data.max_length")
        fix = (truncation_advice(ev) or ["raise data.max_length"])[0]
        return Check(item, "fail", f"{by} cuts " + ", ".join(f"{share:.0%} of the {k} rows" for k, share
                                                            in heavy.items())
                     + f" (limit {TRUNCATED_SHARE:.0%}): the model never sees what was cut; {fix}", evidence)
    if data.get("constant_channels"):
        evidence["constant_channels"] = data["constant_channels"]
        return Check(item, "fail", f"input channels {data['constant_channels']} are constant in the training data: "
                     "they carry no information (a column read wrongly, or a sensor that was off)", evidence)
    detail = ", ".join(f"{k} {v}" for k, v in sizes.items())
    if rejected:
        detail += f"; {rejected} bad rows skipped (listed in {data.get('rejects_file')})"
    return Check(item, "pass", detail, evidence)


def _preflight(ev: Evidence, item: str, findings: list[Finding], code: str, ok: str) -> Check:
    pre = ev.event("preflight")
    if pre is None:
        return Check(item, "unknown", "no preflight record (a run from before the doctor, or not started)", {})
    hit = [f for f in findings if f.code == code]
    if hit:
        return Check(item, "fail", hit[0].explanation, hit[0].evidence)
    keys = {"setup.shapes": ("batch_size", "output_shape", "target_shape"),
            "setup.no_gradient": ("parameters", "no_grad"),
            "setup.initial_loss": ("initial_loss", "chance_loss")}[code]
    return Check(item, "pass", ok.format(**pre), {k: pre.get(k) for k in keys})


def _val_improving(ev: Evidence) -> Check:
    item = "Validation loss improving?"
    vals = [e["val_loss"] for e in ev.epochs if isinstance(e.get("val_loss"), (int, float))]
    if len(vals) < 2:
        return Check(item, "unknown", f"{ev.epochs_word} validated: {len(vals)}; need 2", {"val_loss": vals})
    best = min(vals)
    evidence = {"first": vals[0], "best": best, "best_epoch": vals.index(best) + 1, "epochs": len(vals)}
    if math.isfinite(best) and best < vals[0] * (1 - IMPROVEMENT):
        w = ev.epoch_word
        return Check(item, "pass", f"from {vals[0]:.4g} ({w} 1) to {best:.4g} ({w} {vals.index(best) + 1})", evidence)
    return Check(item, "fail", f"the best validation loss {best:.4g} is not {IMPROVEMENT:.0%} below the first "
                 f"{vals[0]:.4g}", evidence)


def _time(ev: Evidence, findings: list[Finding]) -> Check:
    item = "Training time reasonable?"
    if not ev.finished:
        return Check(item, "unknown", "the run has not finished", {})
    s = ev.summary
    evidence = {k: s.get(k) for k in ("wall_seconds", "real_tokens_per_second", "padding_share", "data_wait_share")}
    slow = [f for f in findings if f.code.startswith("slow.")]
    # a warning (or worse) is a cause of slow training worth fixing; an info finding (one thread that waited on a
    # busy machine, batches below the guide's range on a small data set) is said, but the time passes
    failing = [f for f in slow if f.severity != "info"]
    if failing:
        return Check(item, "fail", "; ".join(f.explanation for f in failing), evidence)
    notes = "".join(f"; note: {f.explanation}" for f in slow)
    return Check(item, "pass", f"{s.get('wall_seconds', 0):.0f} s, {s.get('real_tokens_per_second', 0):.0f} real "
                 f"tokens/s, padding {s.get('padding_share', 0):.0%}, waiting for data "
                 f"{s.get('data_wait_share', 0):.0%}{notes}", evidence)


def _predictions(ev: Evidence) -> Check:
    """A sensible model beats the trivial one: the family's `baseline` (metric, baseline name, higher is
    better), or its own `judge_predictions` when it has no trivial baseline."""
    item = "Predictions sensible?"
    test = ev.summary.get("metrics", {}).get("test")
    if not test:
        return Check(item, "unknown", "no test metrics", {})
    try:
        task = get_task(ev.cfg.task)
    except RnnkitError:
        return Check(item, "unknown", f"task {ev.cfg.task!r} is not installed here", {})
    if task.baseline is None:
        if task.judge_predictions is None:
            return Check(item, "unknown", f"task {task.name} has no trivial baseline to compare with", {})
        return Check(item, *task.judge_predictions(test))
    metric, name, _ = task.baseline
    cmp = ev.baseline_comparison()
    if cmp is None:
        return Check(item, "unknown", f"no {metric} or {name} baseline in the summary",
                     {"metric": metric, "model": test.get(metric), name: None})
    evidence = {"metric": cmp.metric, "model": cmp.model, cmp.name: cmp.base}
    detail = f"test {cmp.metric} {cmp.model:.4g} vs the {cmp.name.replace('_', ' ')} baseline {cmp.base:.4g}"
    if not cmp.better:
        return Check(item, "fail", detail + (": the model does no better than the trivial prediction" if cmp.trivial
                                             else ": the model does no better than that simple rule"), evidence)
    # beaten on every metric compared: each of them (the headline that picked the epoch too, e.g. entity_f1)
    found = ev.baseline_comparisons()
    detail += "".join(f"; {c.metric} {c.model:.4g} vs {c.base:.4g}" for c in found if c != cmp)
    if not any(c.clearly for c in found):  # predictions close to the rule that ignores the input
        return Check(item, "fail", f"{detail}: hardly better, the model closed {cmp.closed:.0%} of the baseline's "
                     f"distance to a perfect score (at least {BARELY:.0%} passes)", {**evidence, "closed": cmp.closed})
    return Check(item, "pass", detail, evidence)


def _tuned(ev: Evidence) -> Check | None:
    """The verdict for a trial of `rnnkit tune` (its run directory holds trial.json), else None."""
    trial_file = ev.run_dir / "trial.json"
    if not trial_file.exists():
        return None
    item = "Hyperparameters tuned?"
    trial = json.loads(trial_file.read_text())
    tune_file = Path(trial.get("tune_dir", "")) / "tune.json"
    best = json.loads(tune_file.read_text()).get("best") if tune_file.exists() else None
    evidence = {"study": trial.get("study"), "trial": trial.get("number"), "best_trial": (best or {}).get("number")}
    if best is None:
        return Check(item, "unknown", f"trial {trial.get('number')} of study {trial.get('study')!r}; the study has "
                     "no finished trial yet", evidence)
    if best["number"] == trial.get("number"):
        return Check(item, "pass", f"the best trial ({trial['number']}) of the Optuna study {trial['study']!r} so "
                     f"far", evidence)
    return Check(item, "fail", f"trial {trial.get('number')} of study {trial.get('study')!r}; the study's best is "
                 f"trial {best['number']} ({best.get('run_dir')})", evidence)


SEARCH_SHARE = 0.25  # a family's search that tried less than this share of its candidates has not searched


def _hyperparameters(ev: Evidence) -> Check:
    item = "Hyperparameters tuned?"
    tuned = _tuned(ev)
    if tuned is not None:
        return tuned
    if not ev.finished:
        return Check(item, "unknown", "the run has not finished", {})
    warnings = ev.summary.get("config_warnings", [])
    auto = (ev.summary.get("data") or {}).get("auto") or {}
    if auto.get("searched") and auto.get("tried"):  # a family's own search before training (forecast.auto)
        ranking = auto.get("ranking") or [{}]
        origins = len(ranking[0].get("folds") or []) or auto.get("origins")  # the chosen one's, not the plan's
        searched = (f"{', '.join(auto['searched'])} searched over {auto['tried']} candidates by "
                    f"{auto.get('by', 'the family')} (validation {auto.get('metric')} over {origins} "
                    f"origin(s)); the other settings are as given")
        evidence = {"warnings": warnings, "searched": auto["searched"], "tried": auto["tried"],
                    "candidates": auto.get("candidates"), "origins": origins}
        if auto.get("budget_exhausted") and auto["tried"] < SEARCH_SHARE * (auto.get("candidates") or 0):
            return Check(item, "fail", f"{searched}; the budget ran out after {auto['tried']} of "
                         f"{auto['candidates']} candidates: raise {auto.get('budget_key', 'its budget')}", evidence)
        if warnings:
            return Check(item, "fail", f"{searched}, and outside the guide's ranges: " + " ".join(warnings), evidence)
        return Check(item, "pass", f"{searched}, but within the guide's ranges (`rnnkit tune` searches them)",
                     evidence)
    if warnings:
        return Check(item, "fail", "not searched, and outside the guide's ranges: " + " ".join(warnings),
                     {"warnings": warnings})
    return Check(item, "pass", "not searched, but every value within the guide's ranges (`rnnkit tune` "
                 "searches them)", {"warnings": []})


def run_checklist(ev: Evidence, findings: list[Finding]) -> list[Check]:
    """The eight items of the guide's debugging checklist, in its order."""
    return [
        _data(ev),
        _preflight(ev, "Shapes match expectations?", findings, "setup.shapes",
                   "output {output_shape} for targets {target_shape}, batch {batch_size}"),
        _preflight(ev, "Gradients flowing backwards?", findings, "setup.no_gradient",
                   "all {parameters} parameter tensors got a finite, non-zero gradient from one batch"),
        _preflight(ev, "Loss reasonable magnitude?", findings, "setup.initial_loss",
                   "initial loss {initial_loss:.4g}; a know-nothing prediction scores {chance_loss:.4g} "
                   f"(limit {INITIAL_LOSS_FACTOR:g}x)" if (ev.event("preflight") or {}).get("chance_loss") is not None
                   else "initial loss {initial_loss:.4g} (finite; this task has no know-nothing yardstick)"),
        _val_improving(ev),
        _time(ev, findings),
        _predictions(ev),
        _hyperparameters(ev),
    ]


__all__ = ["Check", "run_checklist"]
