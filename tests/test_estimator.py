"""The estimator facade, driven as scikit-learn style code would drive it."""

import gc
import pickle

import numpy as np
import pytest

from fakedata import rnnkit_dirs, write_text_csv
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


# -- issue 8 items 6 and 9, and scikit-learn's protocol ---------------------------------------------------
# A tiny model that learns _sines in well under a second; no train__progress: the estimator's quiet default.
SMALL = dict(model__hidden_size=8, model__embedding_dim=8, model__num_layers=1, train__max_epochs=6,
             optim__lr=1e-2, data__batch_size=16)


def _int_sines(n, seed):
    X, y = _sines(n, seed)
    return X, np.array([int(label == "fast") for label in y])






def test_item6_predictions_in_y_dtype():
    from sklearn.metrics import accuracy_score

    X, y = _int_sines(60, 0)
    Xt, yt = _int_sines(40, 1)
    est = Estimator(**SMALL).fit(X, y)
    pred = est.predict(Xt)
    assert accuracy_score(yt, pred) >= 0.9 and (pred == yt).mean() >= 0.9
    assert isinstance(pred, np.ndarray) and pred.dtype == y.dtype
    assert est.classes_.tolist() == [0, 1] and est.classes_.dtype == y.dtype
    assert est.score(Xt, yt) == pytest.approx(accuracy_score(yt, pred))
    assert est.score(Xt, list(yt)) == est.score(Xt, yt)

    # 1 and 1.0 are one class, as for scikit-learn (np.unique of the labels): floats come back
    mixed = [(1 if i % 4 == 1 else 1.0) if k else 0 for i, k in enumerate(y)]
    est = Estimator(**SMALL).fit(X, mixed)
    assert est.classes_.dtype.kind == "f" and est.classes_.tolist() == [0.0, 1.0]
    assert set(est.predict(Xt).tolist()) <= {0.0, 1.0}
    with pytest.raises(ConfigError, match="mixes strings"):
        Estimator(**SMALL).fit(X, [str(k) if i % 2 else int(k) for i, k in enumerate(y)])


def test_sklearn_predict_proba_classes_and_repr():
    X, y = _sines(60, 0)
    Xt, _ = _sines(40, 1)
    est = Estimator(**SMALL).fit(X, y)
    assert est.classes_.tolist() == ["fast", "slow"]  # sorted as scikit-learn sorts, y's (string) dtype
    proba = est.predict_proba(Xt)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1.0) and (proba >= 0).all()
    assert (est.classes_[proba.argmax(axis=1)] == est.predict(Xt)).all()

    assert repr(Estimator()) == "Estimator()"
    assert repr(Estimator(task="forecast", out="runs/x", train__max_epochs=3)) == (
        "Estimator(task='forecast', out='runs/x', train__max_epochs=3)")
    with pytest.raises(ConfigError):
        est.set_params(model__hidden_size=8, model__cell="rnn")
    assert est.get_params()["model__hidden_size"] == 8 and "model__cell" not in est.get_params()  # unchanged


def test_item9_refit_with_a_fixed_out(tmp_path):
    from sklearn.base import clone

    X, y = _int_sines(60, 0)
    est = Estimator(out=tmp_path / "run", **SMALL)
    first = clone(est).fit(X, y)
    second = clone(est).fit(X, y)  # fit starts over: the first fit's run in `out` is replaced
    assert (second.predict(X) == y).mean() >= 0.9
    with pytest.raises(ConfigError, match="no longer holds this estimator's fit"):
        first.predict(X)  # never silently another estimator's model
    assert (first.fit(X, y).predict(X) == y).mean() >= 0.9

    # what was there before stays; what the estimator wrote is replaced, not piled up
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    est = Estimator(out=mine, **SMALL).fit(X, y)
    listing = sorted(p.name for p in mine.iterdir())
    est.fit(X, y)
    assert sorted(p.name for p in mine.iterdir()) == listing and (mine / "notes.txt").read_text() == "keep me"

    # a run no Estimator wrote (e.g. the CLI's) is refused and left alone
    cli = tmp_path / "cli"
    (cli / "checkpoints").mkdir(parents=True)
    (cli / "config.yaml").write_text("task: classify\n")
    (cli / "checkpoints" / "best.json").write_text("{}")
    with pytest.raises(ConfigError, match="no Estimator wrote"):
        Estimator(out=cli, **SMALL).fit(X, y)
    assert (cli / "checkpoints" / "best.json").exists() and (cli / "config.yaml").exists()


def test_item9_no_temporary_directory_outlives_its_owner(private_tmp, tmp_path):
    X, y = _sines(60, 0)
    est = Estimator(**SMALL).fit(X, y)
    owned = rnnkit_dirs(private_tmp)
    assert owned == [est.run_dir_.name]  # the estimator's own run
    est.predict(X)
    est.score(X, y)
    est.score(data=est.run_dir_ / "input" / "train.jsonl")
    assert rnnkit_dirs(private_tmp) == owned  # predict/score leave nothing behind
    est.predict_proba(X)
    assert rnnkit_dirs(private_tmp) == owned
    est.fit(X, y)  # a refit removes the previous run
    assert len(rnnkit_dirs(private_tmp)) == 1 and rnnkit_dirs(private_tmp) != owned

    copy = pickle.loads(pickle.dumps(est))  # a pickle carries its run: an independent copy
    assert len(rnnkit_dirs(private_tmp)) == 2
    expected = est.predict_proba(X)
    del est
    gc.collect()
    assert rnnkit_dirs(private_tmp) == [copy.run_dir_.name]
    np.testing.assert_allclose(copy.predict_proba(X), expected)
    del copy
    gc.collect()
    assert rnnkit_dirs(private_tmp) == []

    with pytest.raises(ConfigError, match="no validation data"):  # a failed fit leaves nothing either
        Estimator(**SMALL, data__val_fraction=0.0).fit(X, y)
    assert rnnkit_dirs(private_tmp) == []


def test_sklearn_clone_cross_val_score_grid_search_pipeline(private_tmp):
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import Pipeline

    X, y = _int_sines(80, 0)
    est = Estimator(**SMALL)
    assert is_classifier(est)
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()

    scores = cross_val_score(est, X, y, cv=2)
    assert len(scores) == 2 and np.isfinite(scores).all() and scores.min() >= 0.5

    grid = GridSearchCV(est, {"model__hidden_size": [8, 16]}, cv=2).fit(X, y)
    assert len(grid.cv_results_["mean_test_score"]) == 2 and np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.get_params()["model__hidden_size"] == grid.best_params_["model__hidden_size"]
    assert grid.predict(X).dtype == y.dtype and grid.predict_proba(X).shape == (80, 2)
    assert grid.classes_.tolist() == [0, 1]

    pipe = Pipeline([("rnn", est)]).set_params(rnn__model__hidden_size=16)
    assert pipe.get_params()["rnn__model__hidden_size"] == 16
    assert pipe.fit(X, y).score(X, y) >= 0.9
    gc.collect()
    assert len(rnnkit_dirs(private_tmp)) == 2  # the refit best estimator's and the pipeline's runs only
    del grid, pipe, est
    gc.collect()
    assert rnnkit_dirs(private_tmp) == []


def test_sklearn_seed_threads_and_quiet(capsys):
    import torch

    X, y = _sines(60, 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = Estimator(**SMALL, train__threads=1).fit(X, y)
        assert torch.get_num_threads() == 2  # train.threads holds for the call, not for the process after it
        proba = a.predict_proba(X)
    finally:
        torch.set_num_threads(before)
    b = Estimator(**SMALL, train__threads=1).fit(X, y)
    np.testing.assert_array_equal(b.predict_proba(X), proba)  # same parameters, same model
    c = Estimator(**SMALL, train__threads=1, train__seed=1).fit(X, y)
    assert not np.array_equal(c.predict_proba(X), proba)  # train.seed reaches training
    assert capsys.readouterr().err == ""  # no progress lines in a scikit-learn loop
