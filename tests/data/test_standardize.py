"""Standardizer: statistics over real steps only, constant channels, persistence, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data.standardize import Standardizer


def _arrays(n=20, channels=4, seed=0, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        (offset + scale * rng.normal(size=(int(rng.integers(1, 30)), channels))).astype(np.float32)
        for _ in range(n)
    ]


def _pad(arrays, total, value):
    """(B, total, C) array holding each sequence followed by `value` pad rows."""
    out = np.full((len(arrays), total, arrays[0].shape[1]), value, dtype=np.float32)  # (B, T, C)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def test_statistics_equal_numpy_over_concatenated_real_steps():
    arrays = _arrays(seed=1, offset=3.0, scale=2.5)
    s = Standardizer().fit(arrays)
    flat = np.concatenate(arrays).astype(np.float64)  # (sum T, C)
    np.testing.assert_allclose(s.mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.std, flat.std(axis=0), rtol=1e-12)
    assert s.mean.dtype == np.float64 and s.std.dtype == np.float64
    assert s.n_steps == len(flat)
    assert s.constant_channels == []


def test_statistics_precise_with_large_offset():
    # |mean| >> std: the one-pass E[x^2]-E[x]^2 formula would lose most digits here.
    arrays = _arrays(seed=2, offset=1e4, scale=1e-2)
    s = Standardizer().fit([a.astype(np.float64) for a in arrays])
    flat = np.concatenate(arrays).astype(np.float64)
    np.testing.assert_allclose(s.std, flat.std(axis=0), rtol=1e-9)


def test_padding_rows_do_not_change_statistics():
    arrays = _arrays(n=8, seed=3)
    reference = Standardizer().fit(arrays)
    lengths = [len(a) for a in arrays]
    for total, value in [(max(lengths), 0.0), (max(lengths) + 50, 0.0), (max(lengths) + 5, 1e6)]:
        padded = _pad(arrays, total, value)
        s = Standardizer().fit(padded, lengths=lengths)
        np.testing.assert_array_equal(s.mean, reference.mean)
        np.testing.assert_array_equal(s.std, reference.std)
    # whereas naively including the pad rows would have moved the statistics
    naive = Standardizer().fit(list(_pad(arrays, max(lengths) + 50, 0.0)))
    assert not np.allclose(naive.mean, reference.mean)


def test_transform_gives_zero_mean_unit_std_float32():
    arrays = _arrays(seed=4, offset=-7.0, scale=3.0)
    s = Standardizer()
    out = s.fit_transform(arrays)
    assert all(o.dtype == np.float32 and o.shape == a.shape for o, a in zip(out, arrays, strict=True))
    flat = np.concatenate(out).astype(np.float64)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(flat.std(axis=0), 1.0, atol=1e-6)


def test_constant_channel_gets_std_one_and_is_listed():
    arrays = _arrays(n=5, channels=3, seed=5)
    for a in arrays:
        a[:, 1] = 4.25
    s = Standardizer().fit(arrays)
    assert s.constant_channels == [1]
    assert s.std[1] == 1.0
    assert s.mean[1] == 4.25
    out = s.transform(arrays[0])
    assert np.isfinite(out).all()
    assert (out[:, 1] == 0.0).all()
    assert (s.transform(np.full((2, 3), 5.25))[:, 1] == 1.0).all()  # shifted, not scaled


def test_save_load_round_trip(tmp_path):
    arrays = _arrays(seed=6)
    for a in arrays:
        a[:, 2] = 0.5  # a constant channel, so constant_channels is non-empty
    s = Standardizer().fit(arrays)
    assert s.constant_channels == [2]
    path = tmp_path / "standardizer.json"
    s.save(path)
    json.loads(path.read_text())  # plain JSON
    loaded = Standardizer.load(path)
    np.testing.assert_array_equal(loaded.mean, s.mean)  # bit-exact: floats round-trip through repr
    np.testing.assert_array_equal(loaded.std, s.std)
    assert loaded.constant_channels == s.constant_channels
    assert loaded.n_steps == s.n_steps
    np.testing.assert_array_equal(loaded.transform(arrays[3]), s.transform(arrays[3]))
    assert Standardizer.from_dict(s.to_dict()).to_dict() == s.to_dict()
    assert not (tmp_path / "standardizer.json.tmp").exists()


def test_channel_mismatch_names_expected_and_found():
    s = Standardizer().fit(_arrays(channels=3))
    with pytest.raises(ValueError, match="fitted on 3 channels, found 5"):
        s.transform(np.zeros((4, 5), dtype=np.float32))


def test_use_before_fit_raises():
    with pytest.raises(ValueError, match="before fit"):
        Standardizer().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="before fit"):
        Standardizer().to_dict()


@pytest.mark.parametrize(
    ("arrays", "lengths", "match"),
    [
        ([], None, "no sequences"),
        ([np.zeros((0, 2))], None, "no steps"),
        ([np.zeros((3, 2)), np.zeros((3, 4))], None, "array 1: expected 2 channels"),
        ([np.zeros(3)], None, r"array 0: expected shape \(T, C\)"),
        ([np.array([[1.0], [np.nan]])], None, "non-finite"),
        ([np.zeros((3, 2))], [4], "outside"),
        ([np.zeros((3, 2))], [1, 2], "1 arrays but 2 lengths"),
    ],
)
def test_fit_rejects_bad_input(arrays, lengths, match):
    with pytest.raises(ValueError, match=match):
        Standardizer().fit(arrays, lengths=lengths)


def test_from_dict_and_load_reject_bad_content(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        Standardizer.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match="equal-length"):
        Standardizer.from_dict({"mean": [0.0], "std": [1.0, 1.0]})
    with pytest.raises(ValueError, match="> 0"):
        Standardizer.from_dict({"mean": [0.0], "std": [0.0]})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid standardizer JSON"):
        Standardizer.load(bad)
