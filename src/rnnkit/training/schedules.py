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

    def update(self, val_loss: float, *, patience: int, threshold: float = 1e-4) -> PlateauState:
        """Return the state after an epoch with `val_loss` (relative improvement threshold, like torch's)."""
        if val_loss < self.best - threshold * abs(self.best) or not math.isfinite(self.best):
            return replace(self, best=val_loss, bad_epochs=0)
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

    def update(self, val_loss: float, epoch: int) -> tuple[EarlyStopping, bool]:
        """Return (new state, improved)."""
        if val_loss < self.best:
            return EarlyStopping(best=val_loss, best_epoch=epoch, bad_epochs=0), True
        return replace(self, bad_epochs=self.bad_epochs + 1), False

    def should_stop(self, patience: int) -> bool:
        return self.bad_epochs >= patience

    def to_dict(self) -> dict:
        return asdict(self)
