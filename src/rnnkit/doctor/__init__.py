"""The training doctor: evidence from a run directory -> findings and the debugging checklist.

    diagnose(run_dir)  -> Diagnosis (findings, checklist), written to findings.json / checklist.json
    format_text(diag)  -> what `rnnkit diagnose DIR` prints

Evidence comes from files every run writes (config.yaml, summary.json, metrics.jsonl with the
preflight record), so a run can be diagnosed after the fact, on another machine, without its data.
`rnnkit train` diagnoses its run when it ends (also when a NaN stops it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnkit.doctor.checklist import Check, run_checklist
from rnnkit.doctor.evidence import Evidence, load_evidence
from rnnkit.doctor.rules import Finding, run_rules
from rnnkit.training.checkpoint import write_json_atomic

FINDINGS_FILE = "findings.json"
CHECKLIST_FILE = "checklist.json"


@dataclass
class Diagnosis:
    run_dir: Path
    findings: list[Finding]
    checklist: list[Check]

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    @property
    def unknown(self) -> list[str]:
        """The checklist items without the evidence for a verdict yet."""
        return [c.item for c in self.checklist if c.verdict == "unknown"]

    def no_findings_text(self) -> str:
        """What to say when no rule fired: healthy only when every check had its evidence."""
        if not self.unknown:
            return "no findings; the run looks healthy."
        return (f"no findings from the evidence so far, but {len(self.unknown)} of {len(self.checklist)} checks could "
                f"not be made ({'; '.join(self.unknown)}): not a clean bill of health.")


def diagnose(run_dir: str | Path, *, write: bool = True) -> Diagnosis:
    """Run every rule and checklist item on a run directory; write findings.json (a list, empty when
    healthy) and checklist.json unless `write` is False."""
    ev = load_evidence(run_dir)
    findings = run_rules(ev)
    diag = Diagnosis(Path(run_dir), findings, run_checklist(ev, findings))
    if write:
        write_json_atomic(diag.run_dir / FINDINGS_FILE, [f.to_dict() for f in findings])
        write_json_atomic(diag.run_dir / CHECKLIST_FILE, [c.to_dict() for c in diag.checklist])
    return diag


_MARK = {"pass": "[pass]", "fail": "[FAIL]", "unknown": "[ -- ]"}


def format_text(diag: Diagnosis) -> str:
    lines = [f"Debugging checklist for {diag.run_dir}:"]
    lines += [f"  {_MARK[c.verdict]} {c.item} {c.detail}" for c in diag.checklist]
    if not diag.findings:
        lines.append("Findings: " + diag.no_findings_text())
    for f in diag.findings:
        lines.append(f"\n{f.severity.upper()} {f.code}: {f.title}")
        lines.append(f"  {f.explanation}")
        if f.action:
            lines.append(f"  done: {f.action}")
        lines += [f"  try: {a}" for a in f.advice]
        if f.repair:
            lines.append("  `rnnkit diagnose --repair` applies: " + " ".join(f"--set {s}" for s in f.repair["set"]))
    return "\n".join(lines) + "\n"


def summary_line(diag: Diagnosis) -> str:
    failed = [c.item for c in diag.checklist if c.verdict == "fail"]
    # a note (info) is marked as one, so that a healthy run's line does not read like an alarm
    found = ", ".join(f.code + (" (note)" if f.severity == "info" else "") for f in diag.findings) or "no findings"
    unknown = f"; {len(diag.unknown)} unknown ({'; '.join(diag.unknown)})" if diag.unknown else ""
    return (f"doctor: {found}; checklist {sum(c.verdict == 'pass' for c in diag.checklist)}/{len(diag.checklist)} "
            f"passed{' (failed: ' + '; '.join(failed) + ')' if failed else ''}{unknown}; details: rnnkit diagnose "
            f"{diag.run_dir}")


__all__ = ["CHECKLIST_FILE", "FINDINGS_FILE", "Check", "Diagnosis", "Evidence", "Finding", "diagnose",
           "format_text", "load_evidence", "summary_line"]
