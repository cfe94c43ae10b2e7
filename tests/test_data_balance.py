"""Exact class counts after each balancing method, determinism, and class weights."""

from __future__ import annotations

import numpy as np
import pytest

from ekspresi.data.balance import balance, class_weights
from ekspresi.data.records import SampleSet
from ekspresi.errors import ConfigError

CLS = ("angry", "happy", "sad")


def dataset(counts=(10, 25, 4)) -> SampleSet:
    labels = [[0, 3, 4][c] for c, n in enumerate(counts) for _ in range(n)]
    n = len(labels)
    images = np.arange(n, dtype=np.uint8).repeat(4).reshape(n, 2, 2)
    return SampleSet(images, labels, ["x"] * n, ["train"] * n, [""] * n,
                     [f"/{i}" for i in range(n)])


def test_none_returns_the_same_set():
    ss = dataset()
    assert balance(ss, None) is ss and balance(ss, "none") is ss


def test_oversample_to_largest_class():
    ss = dataset()
    out = balance(ss, "oversample", seed=1)
    assert out.class_counts(CLS) == {"angry": 25, "happy": 25, "sad": 25}
    assert set(ss.paths) <= set(out.paths)       # every original sample is kept
    assert set(out.paths) == set(ss.paths)       # and only originals are repeated
    assert out.report.dropped == {}


def test_oversample_to_per_class():
    out = balance(dataset(), "oversample", per_class=30)
    assert out.class_counts(CLS) == {"angry": 30, "happy": 30, "sad": 30}


def test_undersample_to_smallest_class():
    ss = dataset()
    out = balance(ss, "undersample", seed=2)
    assert out.class_counts(CLS) == {"angry": 4, "happy": 4, "sad": 4}
    assert len(set(out.paths)) == 12               # no repeats
    assert out.report.dropped == {"undersampled: angry": 6, "undersampled: happy": 21}


def test_undersample_to_per_class_keeps_smaller_classes_whole():
    out = balance(dataset(), "undersample", per_class=8)
    assert out.class_counts(CLS) == {"angry": 8, "happy": 8, "sad": 4}


def test_deterministic_under_seed():
    ss = dataset()
    for method in ("oversample", "undersample"):
        a = balance(ss, method, seed=3).paths.tolist()
        assert a == balance(ss, method, seed=3).paths.tolist()
        assert a != balance(ss, method, seed=4).paths.tolist()


def test_empty_classes_and_bad_arguments_are_errors():
    with pytest.raises(ConfigError, match="empty classes: disgust"):
        balance(dataset(), "oversample", classes="angry,disgust,happy")
    with pytest.raises(ConfigError):
        balance(SampleSet.empty(), "oversample")
    with pytest.raises(ConfigError):
        balance(dataset(), "smote")
    with pytest.raises(ConfigError):
        balance(dataset(), "undersample", per_class=0)


def test_class_weights_balanced_formula():
    labels = np.array([0] * 10 + [1] * 30 + [3] * 20)
    w = class_weights(labels, 4)
    np.testing.assert_allclose(w, [60 / (3 * 10), 60 / (3 * 30), 0.0, 60 / (3 * 20)])
    from sklearn.utils.class_weight import compute_class_weight
    np.testing.assert_allclose(w[[0, 1, 3]], compute_class_weight(
        "balanced", classes=np.array([0, 1, 3]), y=labels))
    with pytest.raises(ConfigError):
        class_weights(np.array([0, 5]), 4)
