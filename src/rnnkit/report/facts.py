"""What the report reads off a run's evidence (numbers, its best epoch, its task family and headline
metric), shared by the plots (`rnnkit.report.plots`) and the page (`rnnkit.report.page`)."""

from __future__ import annotations

import math

from rnnkit.errors import RnnkitError


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def best_epoch(ev) -> int | None:
    """summary.json's best epoch; for an unfinished run, the epoch with the lowest validation loss."""
    if is_number(ev.summary.get("best_epoch")):
        return int(ev.summary["best_epoch"])
    scored = [e for e in ev.epochs if finite(e.get("val_loss")) and is_number(e.get("epoch"))]
    return int(min(scored, key=lambda e: e["val_loss"])["epoch"]) if scored else None


def finite(v) -> bool:
    return is_number(v) and math.isfinite(v)


def family(ev):
    """The run's task family (its hooks name the family's metrics, labels and settings), or None when
    that family is not installed here."""
    from rnnkit.tasks import get_task

    try:
        return get_task(ev.cfg.task)
    except RnnkitError:
        return None


def headline(ev) -> str | None:
    """The first of the task's metric names logged as val_<name> in the epoch records."""
    task = family(ev)
    if task is None:
        return None
    for name in task.metric_names:
        if any(finite(e.get(f"val_{name}")) for e in ev.epochs):
            return name
    return None


