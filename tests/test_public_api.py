"""The public names of `rnnkit` keep their meaning whatever was imported first (issue 8, item 1)."""

from __future__ import annotations

import subprocess
import sys
import types

import rnnkit  # noqa: F401  (the package itself; its names are checked below)

CALLABLES = ["resolve_config", "train", "evaluate", "predict", "load_run", "diagnose", "repair", "tune",
             "write_report", "prepare_data"]
CLASSES = ["Config", "Estimator", "SequenceClassifier", "SequenceRegressor", "SequenceTagger", "BucketBatchSampler",
           "RNNEncoder", "ClassifierNet", "DataError", "ConfigError", "CheckpointError"]


def _check_in_fresh_process(first: str) -> None:
    """Import `first` (a module path) before touching the public names, in a new interpreter."""
    code = f"""
import importlib, inspect, types
importlib.import_module({first!r})
import rnnkit  # noqa: F401  (the package itself; its names are checked below)
from rnnkit import train
assert callable(train) and not isinstance(train, types.ModuleType), train
for name in {CALLABLES!r}:
    obj = getattr(rnnkit, name)
    assert inspect.isfunction(obj), (name, obj)
for name in {CLASSES!r}:
    obj = getattr(rnnkit, name)
    assert inspect.isclass(obj), (name, obj)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_item1_train_is_the_function_in_every_import_order():
    # the README's own order: public name first, then the modules that used to shadow it
    _check_in_fresh_process("rnnkit")
    _check_in_fresh_process("rnnkit.api")
    _check_in_fresh_process("rnnkit.training.loop")
    _check_in_fresh_process("rnnkit.cli")
    _check_in_fresh_process("rnnkit.tuning")


def test_item1_every_public_name_resolves_here_too():
    import rnnkit.api  # noqa: F401  (imports the training package)

    for name in rnnkit.__all__:
        obj = getattr(rnnkit, name)
        assert not isinstance(obj, types.ModuleType), name
    assert rnnkit.train is rnnkit.api.train
