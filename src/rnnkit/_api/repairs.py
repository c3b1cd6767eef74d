"""Repairs: `train.nonfinite=repair`'s retry loop around a training attempt, and the plan that applies the
doctor's repair to a run (for `rnnkit.api.train` and `rnnkit.api.repair`, `rnnkit diagnose --repair`)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from rnnkit import config as C
from rnnkit._api.rundirs import CONFIG_FILE
from rnnkit.training import distributed
from rnnkit.training.callbacks import Callback

MAX_REPAIRS = 2  # train.nonfinite=repair: at most this many automatic repairs with a lower learning rate


def train_with_repairs(attempt: Callable[..., dict], cfg, out, *, resume, overrides, callbacks) -> dict:
    """Train with `attempt` (one fit, as `rnnkit.api._train_once`: `attempt(cfg, out, resume=, overrides=,
    placed=, callbacks=)`), then run the doctor. After a NaN/Inf stop (a TrainingError) that the doctor
    can repair and `train.nonfinite=repair` allows, train again with the repair, at most `MAX_REPAIRS`
    times, each logged as a "repair" event; otherwise the error propagates."""
    from rnnkit.doctor import diagnose, summary_line
    from rnnkit.errors import TrainingError

    placed: list[Path] = []
    history: list[dict] = []
    while True:
        try:
            summary = attempt(cfg, out, resume=resume, overrides=overrides, placed=placed,
                              callbacks=[*callbacks, LogRepairs(placed[0], history)] if history else callbacks)
            if summary.get("already_finished"):
                return summary  # nothing was done, so nothing to diagnose again (its doctor's files stay)
            break
        except TrainingError:
            # a TrainingError reaches every rank at the same step (the loop agrees on it), so all are here
            if not placed:
                raise
            run_dir = placed[0]
            dist = distributed.current()
            repair_event = dist.main_only(repair_decision, run_dir, history)
            if repair_event is None:
                raise
            history.append(repair_event)
            saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
            cfg, out, resume, overrides = repair_plan(run_dir, saved, repair_event["mode"], repair_event["set"])
    run_dir = placed[0]

    def doctor() -> tuple[list[str], str]:
        diag = diagnose(run_dir)
        return diag.codes, summary_line(diag)

    # in the returned summary only (the files are findings.json, checklist.json)
    summary["findings"], summary["doctor"] = distributed.current().main_only(doctor)
    return summary


def repair_decision(run_dir: Path, history: list[dict]) -> dict | None:
    """After a NaN/Inf stop: the doctor's repair event to apply next (announced on stderr), or None
    (with the doctor's line printed) when the run is not to be repaired."""
    from rnnkit.doctor import diagnose, summary_line

    diag = diagnose(run_dir)
    saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
    finding = next((f for f in diag.findings if f.code == "nonfinite" and f.repair), None)
    if saved.train.nonfinite != "repair" or finding is None or len(history) >= MAX_REPAIRS:
        print(f"rnnkit: {summary_line(diag)}", file=sys.stderr, flush=True)
        return None
    mode, changes = finding.repair["mode"], finding.repair["set"]
    event = {"event": "repair", "attempt": len(history) + 1, "mode": mode, "set": changes,
             "finding": "nonfinite", "evidence": finding.evidence}
    print(f"rnnkit: repair {len(history) + 1}/{MAX_REPAIRS}: non-finite {finding.evidence.get('what')} at step "
          f"{finding.evidence.get('step')}; "
          f"{'continuing from the last valid checkpoint' if mode == 'resume' else 'starting again'} with "
          f"{' '.join(changes)}", file=sys.stderr, flush=True)
    return event


def repair_plan(run_dir: Path, saved: C.Config, mode: str, changes: list[str]):
    """(cfg, out, resume, overrides) for a training attempt that apply a repair to the run in `run_dir`."""
    if mode == "resume":
        return None, None, run_dir, list(changes)
    # none valid was written (the repair's premise); every rank waits for the removal
    distributed.current().main_only(shutil.rmtree, run_dir / "checkpoints", ignore_errors=True)
    return C.resolve(None, list(changes), base=saved), run_dir, None, None


def planned_repair(run_dir: Path) -> tuple[tuple, dict] | None:
    """The doctor's first safe repair of the run in `run_dir` as ((cfg, out, resume, overrides) for
    `rnnkit.api.train`, the "repair" event to log), or None when it has none."""
    from rnnkit.doctor import diagnose

    found = [f for f in diagnose(run_dir).findings if f.repair]
    if not found:
        return None
    fix = found[0]
    saved = C.from_dict(C.load_yaml(run_dir / CONFIG_FILE))
    event = {"event": "repair", "attempt": 1, "mode": fix.repair["mode"], "set": fix.repair["set"],
             "finding": fix.code, "evidence": fix.evidence, "by": "rnnkit diagnose --repair"}
    return repair_plan(run_dir, saved, fix.repair["mode"], fix.repair["set"]), event


class LogRepairs(Callback):
    """Write the repair events into metrics.jsonl when the repaired attempt starts (a restart begins a
    new log; a resume keeps the earlier step-less events), each once."""

    def __init__(self, run_dir: Path, events: list[dict]):
        self.run_dir, self.events = Path(run_dir), events

    def on_fit_start(self, state) -> None:
        from rnnkit.doctor.evidence import load_evidence

        if not distributed.current().is_main:
            return
        log = self.run_dir / "metrics.jsonl"
        logged = {(e.get("attempt"), tuple(e.get("set", []))) for e in load_evidence(self.run_dir).events
                  if e.get("event") == "repair"}
        with open(log, "a") as fh:
            for e in self.events:
                if (e["attempt"], tuple(e["set"])) not in logged:
                    fh.write(json.dumps(e) + "\n")
