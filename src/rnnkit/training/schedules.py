"""Learning-rate schedule and plateau state: pure functions of the step (plus the plateau state).

A resume therefore needs only the step counter and `PlateauState`, never a pickled scheduler.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace


def lr_at(step: int, *, base_lr: float, warmup_steps: int = 0, total_steps: int | None = None,
          cooldown_steps: int = 0, min_lr: float = 0.0, reductions: int = 0, factor: float = 0.5) -> float:
    """The learning rate for optimizer step `step` (0-based).

    peak = max(min_lr, base_lr * factor**reductions)   (plateau decay, never below min_lr)
    warm-up: linear from peak/warmup_steps at step 0 to peak at step warmup_steps - 1;
    cool-down: over the last `cooldown_steps` of `total_steps`, linear from peak down to min_lr.
    """
    peak = max(min_lr, base_lr * factor**reductions)
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if cooldown_steps > 0 and total_steps is not None and step >= total_steps - cooldown_steps:
        left = max(0, total_steps - step) / cooldown_steps  # 1 -> 0 over the cool-down
        return min_lr + (peak - min_lr) * left
    return peak


@dataclass(frozen=True)
class PlateauState:
    """Validation-loss plateau tracking: after `patience` epochs with no improvement, one more reduction."""

    best: float = math.inf
    bad_epochs: int = 0
    reductions: int = 0

    best_tie: float = math.inf  # the validation loss at `best` (a monitored metric's tie-breaker)

    def update(self, val_loss: float, *, patience: int, threshold: float = 1e-4,
               tie: float | None = None) -> PlateauState:
        """Return the state after an epoch with `val_loss` (relative improvement threshold, like torch's): the
        monitored value, lower is better (`Monitor.value`); `tie` (the loss) decides between equal values."""
        better = val_loss < self.best - threshold * abs(self.best) or not math.isfinite(self.best)
        if not better and tie is not None and val_loss <= self.best:  # equal: the loss breaks the tie
            better = tie < self.best_tie - threshold * abs(self.best_tie) or not math.isfinite(self.best_tie)
        if better:
            return replace(self, best=val_loss, bad_epochs=0, best_tie=math.inf if tie is None else tie)
        bad = self.bad_epochs + 1
        if bad >= patience:
            return replace(self, bad_epochs=0, reductions=self.reductions + 1)
        return replace(self, bad_epochs=bad)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EarlyStopping:
    """Early stopping on validation loss: stop after `patience` epochs without a new best."""

    best: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_tie: float = math.inf  # the validation loss at `best` (a monitored metric's tie-breaker)

    def update(self, val_loss: float, epoch: int, tie: float | None = None) -> tuple[EarlyStopping, bool]:
        """Return (new state, improved). `val_loss`: the monitored value, lower is better (`Monitor.value`);
        `tie` (the loss, when a metric is monitored) decides between equal values."""
        if val_loss < self.best or (tie is not None and val_loss == self.best and tie < self.best_tie):
            return EarlyStopping(best=val_loss, best_epoch=epoch, bad_epochs=0,
                                 best_tie=math.inf if tie is None else tie), True
        return replace(self, bad_epochs=self.bad_epochs + 1), False

    def should_stop(self, patience: int) -> bool:
        return self.bad_epochs >= patience

    def to_dict(self) -> dict:
        return asdict(self)


# The loss over the training rows in evaluation mode (dropout off, running statistics), as a figure a monitor can
# follow: `rnnkit.training.setup` adds it to each validation's figures when it is monitored. A family chooses it
# when its validation split is too small to choose an epoch on (classify: fewer than 20 rows).
FIT_LOSS = "fit_loss"
# validation figures where lower is better; every other metric is higher-is-better
LOWER_IS_BETTER = frozenset({"loss", FIT_LOSS, "wer", "per", "mse", "mae", "rmse", "mase", "smape"})


@dataclass(frozen=True)
class Monitor:
    """The validation figure that picks the best epoch, stops early and decays the learning rate on plateaus
    (`train.monitor`): the loss, or a validation metric with the loss breaking ties (a small validation set's
    accuracy repeats from epoch to epoch)."""

    name: str = "loss"

    @property
    def higher_is_better(self) -> bool:
        return self.name not in LOWER_IS_BETTER

    def value(self, val: dict) -> float:
        """The monitored figure as lower-is-better (a higher-is-better metric negated)."""
        v = val[self.name]
        return -float(v) if self.higher_is_better else float(v)

    def tie(self, val: dict) -> float | None:
        """The tie-breaker: the validation loss, when a metric (or the training rows' loss) is monitored."""
        return None if self.name == "loss" else float(val["loss"])
