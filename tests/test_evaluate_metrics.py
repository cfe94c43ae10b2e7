"""Metrics: equal to scikit-learn's on known arrays, matrix orientation, bootstrap, ECE."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from ekspresi.evaluate.metrics import (
    bootstrap_accuracy_ci,
    calibration_bins,
    compute_metrics,
    expected_calibration_error,
)

CLASSES = ("angry", "happy", "sad", "surprise")


@pytest.fixture
def known():
    rng = np.random.default_rng(7)
    n, k = 200, len(CLASSES)
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n) % 3 != 0, y[np.arange(n) % 3 != 0]] += 1.5
    proba /= proba.sum(1, keepdims=True)
    return y, proba


def test_metrics_equal_sklearn(known):
    y, proba = known
    pred = proba.argmax(1)
    m = compute_metrics(y, proba, CLASSES, n_resamples=200)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert m[f"{avg}_precision"] == pytest.approx(p)
        assert m[f"{avg}_recall"] == pytest.approx(r)
        assert m[f"{avg}_f1"] == pytest.approx(f)
    p, r, f, s = precision_recall_fscore_support(y, pred, zero_division=0)
    for i, c in enumerate(CLASSES):
        pc = m["per_class"][c]
        assert (pc["precision"], pc["recall"], pc["f1"], pc["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i]))
        assert pc["tp"] + pc["fn"] == s[i]
        assert pc["tp"] + pc["fp"] == (pred == i).sum()
        assert pc["tp"] + pc["fp"] + pc["fn"] + pc["tn"] == len(y)
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert m["top2_accuracy"] == pytest.approx(top_k_accuracy_score(y, proba, k=2))
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    assert m["n_samples"] == len(y)
    assert m["classes"] == list(CLASSES)


def test_confusion_matrix_rows_are_true_classes():
    # 3 true angry: 2 predicted angry, 1 predicted happy; 1 true happy predicted sad;
    # 2 true sad predicted sad; 1 true surprise predicted angry
    y = np.array([0, 0, 0, 1, 2, 2, 3])
    pred = np.array([0, 0, 1, 2, 2, 2, 0])
    proba = np.full((len(y), 4), 0.1)
    proba[np.arange(len(y)), pred] = 0.7
    m = compute_metrics(y, proba, CLASSES, n_resamples=50)
    assert m["confusion_matrix"] == [[2, 1, 0, 0],
                                     [0, 0, 1, 0],
                                     [0, 0, 2, 0],
                                     [1, 0, 0, 0]]
    norm = np.array(m["confusion_matrix_normalized"])
    assert norm[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert norm.sum(1) == pytest.approx([1, 1, 1, 1])
    angry = m["per_class"]["angry"]
    assert (angry["tp"], angry["fp"], angry["fn"], angry["tn"]) == (2, 1, 1, 3)
    assert angry["precision"] == pytest.approx(2 / 3)
    assert angry["recall"] == pytest.approx(2 / 3)


def test_class_absent_from_data_stays_in_output_space():
    # the model predicts "surprise" once, but the data has no surprise samples
    y = np.array([0, 1, 1, 2])
    pred = np.array([0, 1, 3, 2])
    proba = np.full((4, 4), 0.1)
    proba[np.arange(4), pred] = 0.7
    m = compute_metrics(y, proba, CLASSES, n_resamples=50)
    assert m["confusion_matrix"][1] == [0, 1, 0, 1]
    assert m["per_class"]["surprise"]["support"] == 0
    assert m["per_class"]["surprise"]["recall"] is None
    assert m["per_class"]["surprise"]["precision"] == 0.0
    assert m["averaged_over"] == ["angry", "happy", "sad"]
    assert m["macro_recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_bootstrap_ci_deterministic_and_contains_estimate(known):
    y, proba = known
    correct = proba.argmax(1) == y
    a = bootstrap_accuracy_ci(correct, n_resamples=300, seed=3)
    b = bootstrap_accuracy_ci(correct, n_resamples=300, seed=3)
    c = bootstrap_accuracy_ci(correct, n_resamples=300, seed=4)
    assert a == b
    assert a != c
    assert a[0] < correct.mean() < a[1]
    assert 0 < a[1] - a[0] < 0.25
    assert bootstrap_accuracy_ci(np.ones(10, bool)) == (1.0, 1.0)


def test_ece_hand_case():
    # two bins used: conf 0.9 (3 of 4 right) and conf 0.6 (both wrong)
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1],
                      [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 0, 0, 1, 1, 1])
    ece = expected_calibration_error(y, proba)
    assert ece == pytest.approx(4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(0.0 - 0.6))
    bins = calibration_bins(y, proba)
    assert sum(bins["count"]) == 6
    perfect = np.eye(2)[[0, 1, 1]]
    assert expected_calibration_error(np.array([0, 1, 1]), perfect) == 0.0


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="do not match"):
        compute_metrics([0, 1], np.ones((3, 2)) / 2, ("happy", "sad"))


def test_subject_bootstrap_is_wider_for_correlated_samples():
    # 12 subjects x 10 images; each subject's images are all right or all wrong
    subj_ok = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0], bool)
    correct = np.repeat(subj_ok, 10)
    groups = np.repeat([f"S{i:03d}" for i in range(12)], 10)
    iid = bootstrap_accuracy_ci(correct, n_resamples=500, seed=0)
    grouped = bootstrap_accuracy_ci(correct, n_resamples=500, seed=0, groups=groups)
    assert grouped == bootstrap_accuracy_ci(correct, n_resamples=500, seed=0, groups=groups)
    assert grouped[0] <= correct.mean() <= grouped[1]
    assert grouped[1] - grouped[0] > 2 * (iid[1] - iid[0])
    y = np.zeros(120, int)
    proba = np.where(correct[:, None], [[0.9, 0.1]], [[0.2, 0.8]])
    m = compute_metrics(y, proba, ("happy", "sad"), n_resamples=500, groups=groups)
    assert m["accuracy_ci95"] == list(grouped)
    assert "resampling 12 subjects" in m["accuracy_ci_method"]
