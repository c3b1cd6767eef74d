"""The doctor on a run that is still training: the findings that already say it is lost.

    hopeless(run_dir) -> Finding | None   (divergence, or a NaN/Inf that stopped it)

`rnnkit tune` asks after every validated epoch of a trial, and prunes the trial at once when the answer is
a finding, instead of training it on until the median rule can judge it (that rule waits for a few epochs and
a few finished trials). The rules are the doctor's own (`rules.divergence`, `rules.nonfinite`) read from the
log written so far, so a pruned trial is one the doctor would have called diverged (or non-finite) at its end.

Invariants:
1. Only evidence already in metrics.jsonl counts: the epoch records so far and the preflight's loss before
   training (the yardstick of divergence). A run with no preflight record is never judged diverged (a NaN/Inf
   stop still counts).
2. On small data (an `epoch_scale` event: k passes make one counted epoch) only whole counted epochs are read,
   each the mean of its k passes, as the doctor reads the finished run: one pass's spike is not a divergence.
3. A divergence finding counts while the last counted epoch's loss is still above the loss before training
   (severity "error"); one that came back below it (a "warning") does not prune.
"""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit import config as C
from rnnkit.doctor.evidence import Evidence, load_evidence
from rnnkit.doctor.finding import Finding
from rnnkit.doctor.rules import divergence, nonfinite

HOPELESS = ("nonfinite", "divergence")  # the codes that prune a trial, in the order they are asked


def hopeless(run_dir: str | Path, cfg: C.Config | None = None) -> Finding | None:
    """The first finding of `HOPELESS` the run in `run_dir` supports so far (see the module's invariants), or
    None. Reads metrics.jsonl, and config.yaml unless the run's `cfg` is given (parsing the YAML is most of the
    cost: about 15 ms a call without `cfg`, under 1 ms with it on a short log)."""
    ev = load_evidence(run_dir) if cfg is None else _log_so_far(Path(run_dir), cfg)
    if ev.start_loss() is None and ev.event("nonfinite") is None:
        return None
    scale = (ev.event("epoch_scale") or {}).get("scale")
    if "epoch_scale" not in ev.summary and isinstance(scale, int) and not isinstance(scale, bool) and scale > 1:
        ev.summary = {**ev.summary, "epoch_scale": scale}
        ev.epochs = ev.epochs[:len(ev.epochs) - len(ev.epochs) % scale]  # whole counted epochs only
    for rule in (nonfinite, divergence):
        for finding in rule(ev):
            if finding.code in HOPELESS and finding.severity == "error":
                return finding
    return None


def _log_so_far(run_dir: Path, cfg: C.Config) -> Evidence:
    """The evidence of a run that is still writing its log (no summary yet), with its config given."""
    ev = Evidence(run_dir, cfg, {})
    log = run_dir / "metrics.jsonl"
    for line in log.read_text().splitlines() if log.exists() else ():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line is the writer's to finish
        kind = record.get("kind")
        (ev.epochs if kind == "epoch" else ev.steps if kind == "step" else ev.events).append(record)
    return ev


__all__ = ["HOPELESS", "hopeless"]
