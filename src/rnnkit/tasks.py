"""Per-task functions: build the model, compute the masked loss, turn outputs into predictions,
and score them. Composition: the loop calls these functions; there is no task class tree."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnnkit.config import Config
from rnnkit.data.collate import Batch
from rnnkit.train import metrics as M


@dataclass(frozen=True)
class Task:
    name: str
    build_model: Callable  # (cfg, prep) -> nn.Module
    forward: Callable  # (model, batch) -> outputs
    loss: Callable  # (outputs, batch) -> scalar tensor (mean over real targets)
    predict: Callable  # (outputs) -> predictions tensor
    score: Callable  # (preds, targets, prep) -> dict of metrics


def _build_classifier(cfg: Config, prep):
    from rnnkit.models.classifier import build_classifier

    return build_classifier(dataclasses.asdict(cfg.model), num_classes=len(prep.labels),
                            vocab_size=len(prep.vocab) if prep.vocab is not None else None,
                            num_features=prep.num_features)


def _classify_forward(model, batch: Batch) -> torch.Tensor:
    return model(batch.inputs, batch.lengths, batch.mask)  # (B, K)


def _classify_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(logits.float(), batch.targets)


def _classify_predict(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(-1)


def _classify_score(preds: torch.Tensor, targets: torch.Tensor, prep) -> dict:
    return {"accuracy": M.accuracy(preds, targets), "macro_f1": M.macro_f1(preds, targets, len(prep.labels))}


CLASSIFY = Task("classify", _build_classifier, _classify_forward, _classify_loss, _classify_predict,
                _classify_score)
TASKS = {"classify": CLASSIFY}


def get_task(name: str) -> Task:
    return TASKS[name]
