"""The estimator facade, driven as scikit-learn style code would drive it."""

import numpy as np
import pytest

from fakedata import write_text_csv
from rnnkit.errors import ConfigError
from rnnkit.estimator import Estimator

TINY = dict(model__hidden_size=16, model__embedding_dim=16, model__num_layers=1, train__max_epochs=8,
            train__progress="none", data__batch_size=16)


def _sines(n, seed):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        k = i % 2
        t = np.arange(int(rng.integers(8, 30)))
        X.append(np.stack([np.sin((0.3 + 0.6 * k) * t), np.cos((0.3 + 0.6 * k) * t)], 1)
                 + 0.05 * rng.standard_normal((len(t), 2)))
        y.append(["slow", "fast"][k])
    return X, y


def test_fit_predict_score_in_memory(tmp_path):
    X, y = _sines(160, 0)
    Xt, yt = _sines(40, 1)
    est = Estimator(out=tmp_path / "run", **TINY).fit(X, y)
    assert est.summary_["metrics"]["test"]["accuracy"] >= 0.9
    pred = est.predict(Xt)
    assert len(pred) == 40 and set(pred) <= {"slow", "fast"}
    acc = est.score(Xt, yt)
    assert acc == pytest.approx(np.mean([p == t for p, t in zip(pred, yt, strict=True)]))
    assert acc >= 0.9


def test_files_and_params(tmp_path):
    est = Estimator(**TINY)
    assert est.get_params()["model__hidden_size"] == 16
    est.set_params(model__cell="gru", out=tmp_path / "run")
    assert est.config().model.cell == "gru"
    train = write_text_csv(tmp_path / "reviews.csv", n=200)
    est.set_params(data__text_column="review", data__label_column="stars", optim__lr=5e-3, train__max_epochs=20)
    est.fit(train=train)
    assert est.score(data=train) >= 0.9


def test_bad_params_fail_at_construction():
    with pytest.raises(ConfigError, match="Did you mean 'model.hidden_size'"):
        Estimator(model__hiden_size=3)
    with pytest.raises(ConfigError, match="section__key"):
        Estimator(lr=0.1)
    with pytest.raises(ConfigError, match="not fitted"):
        Estimator().predict(["a b"])
