"""Issue 11, item 3: a 10% validation split of 36 series is 3 series, which makes the best epoch, early
stopping and plateau decay noise. A carved validation split below data.min_val_rows takes a larger share
(up to 25%) and says so; data.min_val_rows=0 keeps data.val_fraction exactly."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from rnnkit import config as C
from rnnkit.data.pipeline import prepare_data


def _series(path, n, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            x = np.sin(0.2 * (i % classes + 1) * np.arange(60)) + 0.3 * rng.standard_normal(60)
            fh.write(json.dumps({"sequence": x.round(3).tolist(), "label": f"k{i % classes}"}) + "\n")
    return path


def _sizes(tmp_path, n, *sets):
    train, test = _series(tmp_path / "train.jsonl", n), _series(tmp_path / "test.jsonl", 30, seed=1)
    cfg = C.resolve(None, [f"data.train={train}", f"data.test={test}", "data.min_val_rows=20", *sets])
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = prepare_data(cfg, run)
    said = [str(w.message) for w in caught if "small data" in str(w.message)]
    return {k: len(v) for k, v in data.datasets.items()}, said


def test_thirty_six_series_get_nine_for_validation_and_are_told(tmp_path):
    sizes, said = _sizes(tmp_path, 36)
    assert sizes["val"] == 9 and sizes["train"] == 27  # 25% of each class of 12; not 1 per class
    assert len(said) == 1
    assert "36 training rows would hold out about 4" in said[0] and "takes 25%" in said[0]
    assert "--set data.min_val_rows=0" in said[0]


def test_the_default_keeps_the_fraction(tmp_path):
    """Off by default (measured: the larger share cost more accuracy on small UCR sets than it gave back)."""
    assert C.Config().data.min_val_rows == 0


def test_enough_data_or_min_val_rows_0_keeps_the_fraction(tmp_path):
    sizes, said = _sizes(tmp_path, 300)
    assert sizes["val"] == 30 and said == []
    sizes, said = _sizes(tmp_path, 36, "data.min_val_rows=0")
    assert sizes["val"] == 3 and said == []


def test_the_raise_reaches_the_rows_it_needs_when_it_can(tmp_path):
    sizes, said = _sizes(tmp_path, 120)  # 10% = 12 < 20: 20 / 120 = 17%
    assert sizes["val"] == pytest.approx(20, abs=1) and len(said) == 1
    with pytest.raises(Exception, match="min_val_rows"):
        C.resolve(None, ["data.min_val_rows=-1"])
