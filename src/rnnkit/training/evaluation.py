"""Loss, metrics and predictions of a model over a whole dataset (validation, final scores, evaluate, predict)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset, content_keys, length_array
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.training.precision import Precision

if TYPE_CHECKING:
    from rnnkit.tasks import Task


@torch.no_grad()
def evaluate(model, dataset: SequenceDataset, task: Task, prep, cfg: C.Config, *, device,
             precision: Precision) -> tuple[dict, list]:
    """Loss and metrics over a whole dataset (eval mode); per-example predictions in dataset order."""
    was_training = model.training
    model.eval()
    sampler = BucketBatchSampler(length_array(dataset), cfg.data.batch_size, bucketing=True, shuffle=False,
                                 tiebreak=content_keys(dataset))  # the same batches whatever the rows' order
    preds: list = [None] * len(dataset)
    loss_sum, n = 0.0, 0
    has_targets = len(dataset) > 0 and dataset[0].target is not None
    for idx in sampler:
        batch = task.collate([dataset[i] for i in idx]).to(device)
        with precision.autocast():
            out = task.forward(model, batch, None)
        if has_targets:
            mean, count = task.loss(out, batch)
            loss_sum += float(mean) * count
            n += count
        for i, p in zip(idx, task.predict(model, batch, out, cfg), strict=True):
            preds[i] = p
    model.train(was_training)
    if not has_targets:
        return {}, preds
    return {"loss": loss_sum / max(n, 1), **task.score(preds, dataset.examples, prep, cfg)}, preds
