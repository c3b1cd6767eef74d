"""What the doctor reads: a run directory's config, summary and metrics log, as one object.

Everything comes from files every run writes (config.yaml, summary.json, metrics.jsonl), so
`rnnkit diagnose DIR` works on any run, finished, stopped or still running, without the data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit import config as C
from rnnkit.errors import ConfigError
from rnnkit.training.schedules import LOWER_IS_BETTER

BARELY = 0.1  # "hardly better": closed less than this share of a trivial baseline's distance to a perfect score


@dataclass
class Evidence:
    """One run's evidence.

    Attributes:
        run_dir: the run directory.
        cfg: its resolved config.
        summary: summary.json ({} while the run has not finished; a stopped run's short summary).
        epochs: the epoch records of metrics.jsonl, in order (after a resume: the kept ones).
        steps: the logged step records (every `train.log_every` steps).
        events: the event records (preflight, nonfinite, resume, finished...).
    """

    run_dir: Path
    cfg: C.Config
    summary: dict
    epochs: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def event(self, name: str) -> dict | None:
        """The last event record called `name`, or None."""
        found = [e for e in self.events if e.get("event") == name]
        return found[-1] if found else None

    @property
    def finished(self) -> bool:
        return "metrics" in self.summary

    @property
    def inputs(self) -> dict:
        """The preflight's statistics of what the network is fed (`doctor.preflight.input_statistics`; {} when
        the run has none: token inputs, or a run from before them)."""
        return (self.event("preflight") or {}).get("inputs") or {}

    @property
    def signal(self) -> dict:
        """The preflight's label-permutation test on a nearest-neighbour model (`doctor.signal`; {} when the
        run has none: labels that are not one class per sequence, or a run from before it)."""
        return (self.event("preflight") or {}).get("signal") or {}

    @property
    def label_entropy(self) -> float | None:
        """The loss of predicting the training label shares (classes or tags), from the preflight; None when the
        run has none."""
        value = self.inputs.get("label_entropy", (self.event("preflight") or {}).get("label_entropy"))
        return value if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None

    @property
    def epoch_word(self) -> str:
        """What the run's epochs are called in messages: "pass" when a small data set's epoch was several passes
        (summary epoch_scale > 1: the log, the progress lines and the done line count passes), else "epoch"."""
        return "pass" if (self.summary.get("epoch_scale") or 1) > 1 else "epoch"

    @property
    def epochs_word(self) -> str:
        return "passes" if self.epoch_word == "pass" else "epochs"

    def start_loss(self) -> float | None:
        """The training loss before any step (the preflight batch): the yardstick for "learned nothing" and
        for "rose above where it started"."""
        pre = self.event("preflight")
        value = pre.get("initial_loss") if pre else None
        return value if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None

    def baseline_comparison(self) -> BaselineComparison | None:
        """The test headline metric against the family's trivial baseline (`Task.baseline`), or None when the
        run has no test metrics, the family has no baseline, or either number is missing: the first of
        `baseline_comparisons` that is not beaten, else the first."""
        found = self.baseline_comparisons()
        return next((c for c in found if not c.better), found[0] if found else None)

    def baseline_comparisons(self, split: str = "test") -> list[BaselineComparison]:
        """Every metric of a split (test, or val) compared with the family's trivial baseline on that split: the
        family's metric, and the headline that picked the best epoch (summary "monitor": macro_f1 for imbalanced
        classes, entity_f1 for BIO tags) when the baseline has it too; [] when there is nothing to compare (a run
        written before the validation baselines were: none for val)."""
        from rnnkit.errors import RnnkitError
        from rnnkit.tasks import get_task

        test = self.summary.get("metrics", {}).get(split)
        try:
            spec = get_task(self.cfg.task).baseline if test else None
        except RnnkitError:
            return []
        if spec is None:
            return []
        metric, name, higher = spec
        task = get_task(self.cfg.task)
        found = []
        headline = self.summary.get("monitor")
        extra = [*task.baseline_metrics, *([headline] if headline not in (None, "loss") else [])]
        for m in dict.fromkeys([metric, *extra]):
            up = higher if m == metric else m not in LOWER_IS_BETTER
            value = test.get(m)
            # the strongest yardstick present on this metric (the first named wins a tie: naive over a seasonal
            # naive that repeats the same values)
            bases = [(k, b) for k in (name, *task.baseline_alternatives)
                     if _finite(b := (test.get("baselines", {}).get(k) or {}).get(m))]
            if _finite(value) and bases:
                key, base = max(bases, key=lambda kb: kb[1]) if up else min(bases, key=lambda kb: kb[1])
                found.append(BaselineComparison(m, float(value), key, float(base), up, task.baseline_trivial))
        return found


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class BaselineComparison:
    """A test metric beside the trivial baseline's (e.g. accuracy vs the majority class)."""

    metric: str
    model: float
    name: str
    base: float
    higher: bool  # higher is better

    trivial: bool = True  # a rule that ignores the input (majority class, training mean), not a real method (naive)

    @property
    def better(self) -> bool:
        return self.model > self.base if self.higher else self.model < self.base

    @property
    def closed(self) -> float | None:
        """The share of the baseline's distance to a perfect score the model closed: (model - base) / (1 - base)
        for a score of at most 1 (accuracy, F1), (base - model) / base for an error whose perfect score is 0
        (rmse, mse); None where neither applies."""
        if self.higher:
            return (self.model - self.base) / (1 - self.base) if self.base < 1 else None
        return (self.base - self.model) / self.base if self.base > 0 else None

    @property
    def clearly(self) -> bool:
        """Better than the baseline, and than a trivial one by at least BARELY of its distance to perfect (test
        rmse 3% below the training mean's is a model that predicts about the mean)."""
        closed = self.closed
        return self.better and (not self.trivial or closed is None or closed >= BARELY)


def load_evidence(run_dir: str | Path) -> Evidence:
    """Read a run directory.

    Raises:
        ConfigError: not a run directory (no config.yaml), or an unreadable metrics log line.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml); give the --out DIR of a run.")
    cfg = C.from_dict(C.load_yaml(run_dir / "config.yaml"))
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    ev = Evidence(run_dir, cfg, summary)
    log = run_dir / "metrics.jsonl"
    if log.exists():
        for number, line in enumerate(log.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(log.read_text().splitlines()):
                    continue  # a run killed mid-write leaves a torn last line
                raise ConfigError(f"{log}:{number}: not a JSON line; the metrics log is damaged.") from None
            kind = record.get("kind")
            (ev.epochs if kind == "epoch" else ev.steps if kind == "step" else ev.events).append(record)
    return ev


__all__ = ["BaselineComparison", "Evidence", "load_evidence"]
