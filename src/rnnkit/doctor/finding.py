"""A finding: one diagnosed problem, what every rule returns (`rnnkit.doctor.rules`, `rnnkit.doctor.probe_rules`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Finding:
    """One diagnosed problem.

    Attributes:
        code: stable identifier (e.g. "overfitting", "slow.padding").
        severity: "error" (the run is broken), "warning" (results suffer) or "info".
        title: the guide's name for the problem.
        evidence: the numbers that triggered the rule.
        explanation: what they mean, in plain words.
        advice: what to try, most promising first; each a concrete change where one exists.
        action: what rnnkit already did about it (None: nothing).
        repair: a change `rnnkit diagnose --repair` may apply by itself: {"mode": "resume" or
            "restart", "set": [key=value...]}: continue this run from its last valid checkpoint with
            the new values, or (no checkpoint yet) train it again in its directory with them. None
            when a fix needs another model or a person's judgement.
    """

    code: str
    severity: str
    title: str
    evidence: dict
    explanation: str
    advice: list[str] = field(default_factory=list)
    action: str | None = None
    repair: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["Finding"]
