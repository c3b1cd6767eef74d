"""Classification metrics computed from predictions and targets (padding already excluded)."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts, rows = true class, columns = predicted class."""
    index = target.long() * num_classes + pred.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


CONFUSION_MAX_CLASSES = 50  # a confusion matrix is kept (summary.json, the report) up to this many classes
DETAIL_KEYS = ("per_class", "confusion", "confused")  # what `class_report` adds: not figures, shown apart


def class_report(pred: torch.Tensor, target: torch.Tensor, names: list[str], *, top: int = 5) -> dict:
    """Per class precision, recall, F1 and support; the confusion matrix (up to CONFUSION_MAX_CLASSES classes;
    rows true, columns predicted); and the `top` most frequent confusions (true, predicted, count)."""
    k = len(names)
    cm = confusion_matrix(pred, target, k).long()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    per = {}
    for i, name in enumerate(names):
        if int(support[i]) == 0 and int(predicted[i]) == 0:
            continue
        p = float(tp[i]) / int(predicted[i]) if int(predicted[i]) else 0.0
        r = float(tp[i]) / int(support[i]) if int(support[i]) else 0.0
        per[name] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                     "support": int(support[i])}
    off = cm.clone()
    off.fill_diagonal_(0)
    flat = off.flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:top]
    confused = [[names[int(i) // k], names[int(i) % k], int(flat[i])] for i in order if int(flat[i]) > 0]
    out = {"per_class": per, "confused": confused}
    if k <= CONFUSION_MAX_CLASSES:
        out["confusion"] = {"labels": list(names), "counts": cm.tolist()}
    return out


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
