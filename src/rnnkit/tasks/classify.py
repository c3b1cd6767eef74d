"""Sequence classification (many-to-one): one label per sequence."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data.collate import Batch, collate
from rnnkit.data.datasets import BuiltinDataset, register
from rnnkit.data.pipeline import Preprocessing, load_file_for_inference, prepare_data
from rnnkit.tasks import Task
from rnnkit.training import metrics as M

register(
    BuiltinDataset(
        name="japanese_vowels",
        task="classify",
        package="sktime",
        install="pip install --no-deps sktime",
        description=(
            "UEA JapaneseVowels: 9 speakers saying /ae/, 12 LPC cepstrum channels, variable length "
            "7-29 steps; classify the speaker (270 train / 370 test cases, 9 classes)"
        ),
        reference=(
            "LSTM-FCN 0.99, FCN 0.993, echo-state network 0.965 test accuracy (Karim et al. 2019; Fawaz et al. 2019)"
        ),
        data_files={
            "train": "datasets/data/JapaneseVowels/JapaneseVowels_TRAIN.ts",
            "test": "datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts",
        },
        reader_options={"format": "ts"},
    )
)


def build_model(cfg, prep):
    from rnnkit.models.classifier import build_classifier

    return build_classifier(dataclasses.asdict(cfg.model), num_classes=len(prep.labels),
                            vocab_size=len(prep.vocab) if prep.vocab is not None else None,
                            num_features=prep.num_features)


def forward(model, batch: Batch, step=None) -> torch.Tensor:
    return model(batch.inputs, batch.lengths, batch.mask)  # (B, K)


def loss(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int]:
    return F.cross_entropy(logits.float(), batch.targets), len(batch)


def predict(model, batch: Batch, logits: torch.Tensor, cfg) -> list[torch.Tensor]:
    """Per example: the class probabilities (K,)."""
    return list(torch.softmax(logits.float(), -1).cpu())


def score(preds: list[torch.Tensor], examples, prep, cfg) -> dict:
    pred = torch.stack([p.argmax() for p in preds])
    target = torch.stack([ex.target for ex in examples])
    return {"accuracy": M.accuracy(pred, target), "macro_f1": M.macro_f1(pred, target, len(prep.labels))}


def baselines(data, cfg) -> dict:
    """The majority-class baseline on the test split: every sequence gets the most frequent training label."""
    train = torch.stack([ex.target for ex in data.datasets["train"].examples])
    majority = int(torch.bincount(train, minlength=len(data.prep.labels)).argmax())
    test = data.datasets["test"].examples
    if not test:
        return {}
    target = torch.stack([ex.target for ex in test])
    pred = torch.full_like(target, majority)
    return {"majority_class": {"label": data.prep.labels.labels[majority], "accuracy": M.accuracy(pred, target),
                               "macro_f1": M.macro_f1(pred, target, len(data.prep.labels))}}


def load_inference(cfg, prep, path, with_targets: bool, run_dir=None):
    dataset, records, _ = load_file_for_inference(cfg, prep, Path(path), with_targets=with_targets, run_dir=run_dir)
    return dataset, records


def write_predictions(output: Path, records, preds: list[torch.Tensor], prep, cfg) -> int:
    """CSV (default) or JSONL: id, file, line, prediction, probability, one p_<label> per class."""
    labels = prep.labels.labels
    output = Path(output)
    if output.suffix == ".jsonl":
        with open(output, "w") as fh:
            for rec, p in zip(records, preds, strict=True):
                k = int(p.argmax())
                fh.write(json.dumps({"id": rec.id, "file": rec.file, "line": rec.line, "prediction": labels[k],
                                     "probability": float(p[k]),
                                     "probabilities": dict(zip(labels, map(float, p), strict=True))}) + "\n")
        return len(preds)
    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "file", "line", "prediction", "probability", *[f"p_{lab}" for lab in labels]])
        for rec, p in zip(records, preds, strict=True):
            k = int(p.argmax())
            w.writerow([rec.id, rec.file, rec.line, labels[k], f"{float(p[k]):.6f}", *[f"{float(v):.6f}" for v in p]])
    return len(preds)


def uniform_class_loss(prep) -> float:
    """Cross-entropy of a uniform guess over the C labels: ln C (the doctor's yardstick)."""
    return math.log(len(prep.labels))


def accuracy_score(metrics: dict) -> float:
    """The estimator's `score`: accuracy."""
    return metrics["accuracy"]


TASK = Task(name="classify", prepare=prepare_data, load_prep=Preprocessing.load, build_model=build_model,
            collate=collate, forward=forward, loss=loss, predict=predict, score=score,
            load_inference=load_inference, write_predictions=write_predictions, baselines=baselines,
            metric_names=("accuracy", "macro_f1"), chance_loss=uniform_class_loss,
            baseline=("accuracy", "majority_class", True), headline_score=accuracy_score, is_classifier=True,
            uses_pooling=True)
