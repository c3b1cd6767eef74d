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
        lines.append("Findings: none; the run looks healthy.")
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
    found = ", ".join(diag.codes) if diag.codes else "no findings"
    return (f"doctor: {found}; checklist {sum(c.verdict == 'pass' for c in diag.checklist)}/{len(diag.checklist)} "
            f"passed{' (failed: ' + '; '.join(failed) + ')' if failed else ''}; details: rnnkit diagnose "
            f"{diag.run_dir}")


__all__ = ["CHECKLIST_FILE", "FINDINGS_FILE", "Check", "Diagnosis", "Evidence", "Finding", "diagnose",
           "format_text", "load_evidence", "summary_line"]
