"""Classification metrics computed from predictions and targets (padding already excluded)."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts, rows = true class, columns = predicted class."""
    index = target.long() * num_classes + pred.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred == target).double().mean()) if target.numel() else float("nan")


def macro_f1(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in targets or predictions."""
    cm = confusion_matrix(pred, target, num_classes).double()
    tp = cm.diag()
    support = cm.sum(1)
    predicted = cm.sum(0)
    present = (support + predicted) > 0
    f1 = torch.where(support + predicted > 0, 2 * tp / (support + predicted).clamp_min(1), torch.zeros_like(tp))
    return float(f1[present].mean()) if present.any() else float("nan")
