"""DIR/test_samples.json: what the report shows of the test split's predictions, written once at the end of a run.

The report (`rnnkit report DIR`) must stay fast and must work on a run directory without its checkpoints or its
data files (a copied or archived run), so it never loads the model or reads the data again: at the end of
training, with the best weights restored and the test predictions just made, the family's `Task.test_samples`
hook picks a small, bounded sample of them (a few hundred points at most) and this module writes it.

The file is plain JSON, one object::

    {"version": 1, "split": "test", "panels": [panel, ...]}

Each panel is one figure or table, in a family-neutral vocabulary the report draws without knowing the family:

* ``{"kind": "scatter", "title", "xlabel", "ylabel", "series": [{"label", "x": [...], "y": [...]}],
  "identity": true}``: points (e.g. predicted against actual), with the y = x line when `identity`;
* ``{"kind": "lines", "title", "xlabel", "ylabel", "x": [...], "lines": [{"label", "y": [...], "role"}],
  "vline": x or null, "vline_label"}``: curves over a shared x; `y` holds null where a curve has no value;
  `role` is "actual", "model" or "baseline" (the report's line style);
* ``{"kind": "heatmap", "title", "xlabel", "ylabel", "columns": [...], "rows": [...], "values": [[...]]}``: a
  rows x columns matrix of values in [0, 1] (e.g. attention weights) with its tick labels;
* ``{"kind": "table", "title", "columns": [...], "rows": [[...], ...]}``: text cells.

Any panel may carry a "caption" (one sentence under it). Invariants: every number is finite or null; the file
is written atomically (a reader sees the old file or the new one); a hook that fails does not fail the run
that has just trained (a warning names the error, and the report says the samples are missing).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

TEST_SAMPLES_FILE = "test_samples.json"
VERSION = 1


def _clean(value):
    """JSON-ready: NaN/Inf -> None (JSON has no NaN), numpy scalars and arrays -> Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch arrays and scalars
        return _clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_test_samples(run_dir: Path, task, model, data, preds: list | None, cfg, device) -> Path | None:
    """Ask the family for its panels of the test predictions and write DIR/test_samples.json; returns its path,
    or None when the family has no such hook, there is no test split, or the hook failed (with a warning).

    Args:
        preds: the test split's per-example predictions (`Task.predict`), in dataset order.
    """
    path = Path(run_dir) / TEST_SAMPLES_FILE
    path.unlink(missing_ok=True)  # never leave another model's samples beside this run's summary
    test = data.datasets.get("test")
    if task.test_samples is None or test is None or not len(test) or preds is None:
        return None
    try:
        panels = task.test_samples(model, data, preds, cfg, device)
        text = json.dumps({"version": VERSION, "split": "test", "panels": _clean(list(panels))}, allow_nan=False)
    except Exception as exc:  # the model has trained and is saved: a sample for the report is not worth the run
        warnings.warn(f"the report's test samples ({TEST_SAMPLES_FILE}) could not be made: "
                      f"{type(exc).__name__}: {exc}", stacklevel=2)
        return None
    tmp = path.with_name(f".tmp-{TEST_SAMPLES_FILE}-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
