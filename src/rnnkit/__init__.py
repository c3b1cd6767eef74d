"""rnnkit: train LSTM/GRU networks on your own sequence data, with a field guide's practices built in.

Public API (imported lazily so `rnnkit --help` stays fast)::

    from rnnkit import Config, resolve_config, train, evaluate, predict
    from rnnkit import diagnose, repair, tune, write_report   # the doctor, its repairs, Optuna search, report
    from rnnkit import fit, Steps, Run, Callback, Task        # the loop alone, on your own nn.Module
    from rnnkit import Example, SequenceDataset, collate, BucketBatchSampler, RNNEncoder, ClassifierNet
    from rnnkit import Estimator, SequenceClassifier, SequenceRegressor, SequenceTagger  # scikit-learn style
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Config": ("rnnkit.config", "Config"),
    "resolve_config": ("rnnkit.config", "resolve"),
    "train": ("rnnkit.api", "train"),
    "evaluate": ("rnnkit.api", "evaluate"),
    "predict": ("rnnkit.api", "predict"),
    "load_run": ("rnnkit.api", "load_run"),
    "diagnose": ("rnnkit.doctor", "diagnose"),
    "repair": ("rnnkit.api", "repair"),
    "tune": ("rnnkit.tuning", "tune"),
    "write_report": ("rnnkit.report", "write_report"),
    "Estimator": ("rnnkit.estimator", "Estimator"),
    "SequenceClassifier": ("rnnkit.estimator", "SequenceClassifier"),
    "SequenceRegressor": ("rnnkit.estimator", "SequenceRegressor"),
    "SequenceTagger": ("rnnkit.estimator", "SequenceTagger"),
    "prepare_data": ("rnnkit.data.pipeline", "prepare_data"),
    "fit": ("rnnkit.training.loop", "fit"),
    "Steps": ("rnnkit.training.loop", "Steps"),
    "Run": ("rnnkit.training.run", "Run"),
    "Callback": ("rnnkit.training.callbacks", "Callback"),
    "Task": ("rnnkit.tasks", "Task"),
    "Example": ("rnnkit.data.collate", "Example"),
    "SequenceDataset": ("rnnkit.data.collate", "SequenceDataset"),
    "collate": ("rnnkit.data.collate", "collate"),
    "BucketBatchSampler": ("rnnkit.data.sampler", "BucketBatchSampler"),
    "RNNEncoder": ("rnnkit.models.encoder", "RNNEncoder"),
    "ClassifierNet": ("rnnkit.models.classifier", "ClassifierNet"),
    "DataError": ("rnnkit.errors", "DataError"),
    "ConfigError": ("rnnkit.errors", "ConfigError"),
    "CheckpointError": ("rnnkit.errors", "CheckpointError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
