"""Issue 13, sktime: `rnnkit.contrib.sktime.RNNClassifier` / `RNNRegressor` under sktime's own estimator checks,
on sktime's shipped UCR/UEA/TSER files (read offline), and on the inputs a user gets wrong."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sktime.classification.base", reason="sktime is not installed: pip install 'rnnkit[sktime]'")

from sktime.datasets import load_basic_motions, load_japanese_vowels, load_tecator  # noqa: E402
from sktime.datatypes import convert_to  # noqa: E402
from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from fakedata import rnnkit_dirs  # noqa: E402
from rnnkit.contrib.sktime import RNNClassifier, RNNRegressor  # noqa: E402
from rnnkit.errors import ConfigError  # noqa: E402

# Checks of sktime's suite that cannot pass for these estimators, each with its reason (docs/sktime.md lists
# them too): none. Every check that sktime 1.2.0's check_estimator runs on RNNClassifier and RNNRegressor
# passes; an entry here would be excluded from the run and must be explained in both places.
CANNOT_PASS: dict[str, str] = {}

FAST = RNNClassifier.get_test_params()[0]  # 4 hidden units, one layer, one epoch, one thread


@pytest.fixture(autouse=True)
def _quiet_small_data():
    # rnnkit warns that tiny validation splits are noisy (true, and the point of these small fits)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="tiny splits")
        yield


def _failures(results: dict) -> dict:
    return {k: v for k, v in results.items() if v != "PASSED"}


@pytest.mark.slow
@pytest.mark.parametrize("cls, scenarios", [
    (RNNClassifier, ("ClassifierFitPredictUnequalLength", "ClassifierFitPredictMultivariate",
                     "ClassifierFitPredictThreeClasses")),
    (RNNRegressor, ("ClassifierFitPredictUnequalLength", "ClassifierFitPredictMultivariate")),  # sktime 1.2.0 reuses
    # the classification scenarios for regressors (y: real values)
])
def test_sktime_check_estimator_passes(cls, scenarios):
    results = check_estimator(cls, raise_exceptions=False, verbose=False, tests_to_exclude=list(CANNOT_PASS) or None)
    failed = _failures(results)
    assert not failed, "sktime checks failed:\n" + "\n".join(f"{k}: {v!r}" for k, v in failed.items())
    assert len(results) > 100  # the suite ran (the classifier's has ~250 test-fixture pairs, the regressor's ~150)
    for name in ("test_fit_idempotent", "test_persistence_via_pickle", "test_doctest_examples",
                 "test_methods_have_no_side_effects"):
        assert any(k.startswith(name + "[") for k in results), name
    for scenario in scenarios:  # the capability tags put the unequal-length and multivariate scenarios in the run
        assert any(scenario in k for k in results), scenario


def test_japanese_vowels_unequal_length_beats_the_majority_class():
    """UEA JapaneseVowels as sktime ships it: 12 channels, 7 to 29 steps per utterance, 9 speakers."""
    X_train, y_train = load_japanese_vowels(split="train")  # nested_univ
    X_test, y_test = load_japanese_vowels(split="test")
    lengths = {len(X_train.iloc[i, 0]) for i in range(len(X_train))}
    assert len(lengths) > 10 and X_train.shape[1] == 12  # really unequal lengths, really multivariate

    clf = RNNClassifier(hidden_size=32, num_layers=1, max_epochs=20, lr=3e-3, threads=1).fit(X_train, y_train)
    pred = clf.predict(X_test)
    majority = max(np.mean(y_test == c) for c in np.unique(y_train))
    accuracy = float(np.mean(pred == y_test))
    assert majority < 0.3 and accuracy > 0.9, (accuracy, majority)  # measured 0.97-0.98 over seeds 0-3
    assert pred.dtype == y_train.dtype and set(pred) <= set(y_train)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(y_test), 9) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (clf.classes_[proba.argmax(axis=1)] == pred).all()  # columns in classes_ order
    assert clf.estimator_.summary_["metrics"]["val"]  # the rnnkit run behind it validated on a share of train


def test_every_inner_mtype_reads_the_same_series():
    """BasicMotions (6 channels, 100 steps): numpy3D, nested_univ and df-list are one panel, so one seeded fit
    gives the same predictions whatever the format (a transposed numpy3D would not)."""
    X_train, y_train = load_basic_motions(split="train", return_type="numpy3D")
    X_test, _ = load_basic_motions(split="test", return_type="numpy3D")
    params = dict(hidden_size=16, num_layers=1, max_epochs=3, threads=1, random_state=0)
    fits = {m: RNNClassifier(**params).fit(convert_to(X_train, m), y_train) for m in ("numpy3D", "nested_univ")}
    probas = {(fit, m): est.predict_proba(convert_to(X_test, m))
              for fit, est in fits.items() for m in ("numpy3D", "nested_univ", "df-list", "pd-multiindex")}
    first = probas["numpy3D", "numpy3D"]
    assert first.shape == (40, 4) and not np.allclose(first, first[0])  # it learned something series-specific
    for key, proba in probas.items():
        np.testing.assert_allclose(proba, first, atol=1e-6, err_msg=str(key))


@pytest.mark.slow
def test_tecator_regression_beats_the_training_mean():
    """TSER Tecator (fat content from 100-channel NIR spectra, read as 100 steps of one channel)."""
    X_train, y_train = load_tecator(split="train")
    X_test, y_test = load_tecator(split="test")
    reg = RNNRegressor(hidden_size=32, num_layers=1, max_epochs=20, lr=3e-3, threads=1).fit(X_train, y_train)
    pred = reg.predict(X_test)
    assert pred.shape == y_test.shape and np.issubdtype(pred.dtype, np.floating)
    mse, baseline = np.mean((pred - y_test) ** 2), np.mean((y_train.mean() - y_test) ** 2)
    assert mse < 0.85 * baseline, (mse, baseline)  # measured 0.57-0.76 of the baseline over seeds 0-3


def test_out_keeps_the_run_and_a_refit_replaces_it(tmp_path, private_tmp):
    X, y = load_basic_motions(split="train", return_type="numpy3D")
    clf = RNNClassifier(**FAST, out=str(tmp_path / "run")).fit(X, y)
    assert clf.run_dir_ == tmp_path / "run" and (clf.run_dir_ / "summary.json").is_file()
    clf.fit(X[:30], y[:30])  # sktime's fit resets the estimator; the rnnkit estimator refits into its own out
    assert (clf.run_dir_ / "summary.json").is_file() and clf.predict(X).shape == (40,)
    temp = RNNClassifier(**FAST).fit(X, y).fit(X, y)  # a temporary run each fit
    assert temp.run_dir_.parent == private_tmp
    del temp
    gc.collect()
    assert rnnkit_dirs(private_tmp) == []  # no temporary run left behind


def test_bad_parameters_fail_at_construction_with_the_key_and_the_fix():
    with pytest.raises(ConfigError, match=r"unknown key 'model.hiden_size'. Did you mean 'model.hidden_size'"):
        RNNClassifier(params={"model__hiden_size": 8})
    with pytest.raises(ConfigError, match=r"hidden_size=8 and params\['model.hidden_size'\]=16 set the same"):
        RNNRegressor(hidden_size=8, params={"model.hidden_size": 16})
    with pytest.raises(ConfigError, match="'model.cell': 'rnn' is not one of lstm, gru"):
        RNNClassifier(cell="rnn")
    with pytest.raises(ConfigError, match="random_state='seed' .str.: give an int seed"):
        RNNClassifier(random_state="seed")
    with pytest.raises(ConfigError, match="params=.*give a dict of rnnkit config keys"):
        RNNClassifier(params=[("model__dropout", 0.1)])
    clf = RNNClassifier()
    with pytest.raises(ConfigError, match="'model.hidden_size': -1 is out of range"):
        clf.set_params(hidden_size=-1)
    ok = RNNClassifier(params={"model.pooling": "attention", "train__patience": 3}, random_state=7)
    cfg = ok._new_rnnkit().config()  # the keys reach the rnnkit config
    assert (cfg.model.pooling, cfg.train.patience, cfg.train.seed, cfg.data.test_fraction) == ("attention", 3, 7, 0.0)


def test_series_whose_channels_differ_in_length_are_refused_by_name():
    import pandas as pd

    X, y = load_basic_motions(split="train", return_type="nested_univ")
    X = X.copy()
    X.iat[5, 2] = X.iat[5, 2].iloc[:60]  # one channel of one series cut short
    with pytest.raises(ValueError, match=r"row 5 of X\) has channels of different lengths \[60, 100\]"):
        RNNClassifier(**FAST).fit(X, y)
    assert isinstance(X.iat[5, 2], pd.Series) and len(X.iat[5, 2]) == 60  # X itself untouched


def test_missing_values_are_refused_before_training():
    X, y = load_basic_motions(split="train", return_type="numpy3D")
    X = X.copy()
    X[3, 1, 10] = np.nan
    with pytest.raises(ValueError, match="has missing values"):
        RNNClassifier(**FAST).fit(X, y)


def test_sktime_is_imported_only_by_contrib_and_its_absence_names_the_extra():
    code = ("import sys; import rnnkit, rnnkit.estimator; assert 'sktime' not in sys.modules, 'imported'\n"
            "sys.modules['sktime'] = None  # as if not installed\n"
            "try:\n    import rnnkit.contrib.sktime\n"
            "except ImportError as exc:\n"
            "    from rnnkit.errors import MissingExtra\n"
            "    assert isinstance(exc, MissingExtra)\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert "rnnkit.contrib.sktime needs sktime (sktime is not installed): pip install 'rnnkit[sktime]'" in done.stdout


def test_the_sktime_page_runs_as_written(tmp_path, monkeypatch):
    """docs/sktime.md: its python blocks, in order, in one namespace (the JapaneseVowels example and its check)."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "sktime.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{doc.name} block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["accuracy"] > 0.9 and list(tmp_path.iterdir()) == []
    excluded = re.search(r"\*\*Checks that cannot pass: (\w+)\.\*\*", doc.read_text())
    assert excluded and (excluded.group(1) == "none") == (not CANNOT_PASS)  # the page and the list agree
