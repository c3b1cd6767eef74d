"""Learning-rate advice that every rule shares (`rules`, `probe_rules`): rates the schedule will actually run."""

from __future__ import annotations

# The guide's learning-rate range ("start with 0.001-0.01"); advice moves a rate into it.
GUIDE_LR = (1e-3, 1e-2)


def effective_lr(cfg) -> float:
    """The base learning rate that runs: the schedule never goes below optim.min_lr (`lr_at`)."""
    return max(cfg.optim.lr, cfg.optim.min_lr)


def lr_sets(cfg, new_lr: float) -> list[str]:
    """The `--set` values that make `new_lr` the rate that actually runs: below optim.min_lr, the floor is
    lowered with it (else the run would be unchanged)."""
    sets = [f"optim.lr={new_lr:.3g}"]
    if new_lr < cfg.optim.min_lr:
        sets.append(f"optim.min_lr={new_lr / 100:.3g}")
    return sets


def lower_lr(lr: float) -> float:
    """10x lower (the guide), and straight to the bottom of the guide's range when 10x lower is still above it
    (an absurd rate reaches a sensible one in one repair, not after several)."""
    new = lr / 10
    return GUIDE_LR[0] if new > GUIDE_LR[1] else new


__all__ = ["GUIDE_LR", "effective_lr", "lower_lr", "lr_sets"]
