"""Classification metrics for one model on one test set, as a JSON-ready dict.

scikit-learn computes everything it can (accuracy, balanced accuracy, P/R/F1, confusion
matrices, top-k, log-loss) and SciPy the bootstrap interval, so our numbers match what other
researchers get from the same predictions. Only the expected calibration error is computed
here, because scikit-learn has no multi-class top-label ECE.

The output space is the model's classes (``classes``): a model can predict a class that the
test set lacks (CK+ has no neutral), and that is an error, so those columns stay in the
confusion matrix. Averages (macro/weighted, balanced accuracy) run over the classes that do
occur in the test set, because recall of an absent class is undefined; ``averaged_over``
lists them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Bump when a key is renamed or its meaning changes (keys may be added freely).
METRICS_SCHEMA = "ekspresi.metrics/1"

#: Equal-width confidence bins for the ECE and the reliability diagram (Guo et al., 2017).
ECE_BINS = 15


def bootstrap_accuracy_ci(correct: np.ndarray, *, n_resamples: int = 1000, seed: int = 0,
                          level: float = 0.95, groups: np.ndarray | None = None,
                          ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 array.

    Test samples are resampled with SciPy's bootstrap; the percentile method (not BCa)
    because it stays defined when every sample is right or every sample is wrong, which
    happens on small cross-dataset sets. With ``groups`` (subject ids) whole groups are
    resampled instead: CK+ has several frames of each sequence and several sequences per
    subject, and treating those as independent samples would make the interval too narrow.
    SciPy has no cluster bootstrap, hence the few lines below.
    """
    correct = np.asarray(correct, dtype=np.float64)
    if correct.size == 0:
        return (float("nan"), float("nan"))
    if np.all(correct == correct[0]):
        v = float(correct[0])
        return (v, v)
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    if groups is not None:
        _, inv = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        hits, sizes = np.bincount(inv, weights=correct), np.bincount(inv).astype(float)
        pick = rng.integers(0, len(sizes), (n_resamples, len(sizes)))
        stats = hits[pick].sum(axis=1) / sizes[pick].sum(axis=1)
        lo, hi = np.quantile(stats, [alpha, 1 - alpha])
        return (float(lo), float(hi))
    from scipy.stats import bootstrap

    res = bootstrap((correct,), np.mean, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", vectorized=True, rng=rng)
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high))


def calibration_bins(y_true: np.ndarray, proba: np.ndarray,
                     n_bins: int = ECE_BINS) -> dict[str, list]:
    """Top-label reliability table: per equal-width confidence bin, the sample count, mean
    confidence and accuracy. Empty bins have count 0 and ``None`` for the means."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins so that confidence 1.0 falls in the last bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts, confs, accs = [], [], []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        counts.append(n)
        confs.append(float(conf[m].mean()) if n else None)
        accs.append(float(correct[m].mean()) if n else None)
    return {"edges": edges.tolist(), "count": counts, "confidence": confs, "accuracy": accs}


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray,
                               n_bins: int = ECE_BINS) -> float:
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of samples."""
    bins = calibration_bins(y_true, proba, n_bins)
    n = max(1, len(y_true))
    return float(sum(c / n * abs(a - f) for c, a, f in
                     zip(bins["count"], bins["accuracy"], bins["confidence"]) if c))


def _f(x: Any) -> float | None:
    """float for JSON; NaN -> None so the file stays valid JSON."""
    x = float(x)
    return None if np.isnan(x) else x


def compute_metrics(y_true: Sequence[int] | np.ndarray, proba: np.ndarray,
                    classes: Sequence[str], *, n_resamples: int = 1000, seed: int = 0,
                    groups: np.ndarray | None = None) -> dict[str, Any]:
    """All metrics of one evaluation. ``y_true`` indexes ``classes``; ``proba`` is
    (N, len(classes)) with rows summing to 1, columns in ``classes`` order. ``groups``
    (subject per sample) makes the accuracy interval resample subjects."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        log_loss,
        multilabel_confusion_matrix,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if proba.ndim != 2 or proba.shape != (len(y_true), k):
        raise ValueError(f"probabilities of shape {proba.shape} do not match "
                         f"{len(y_true)} labels x {k} classes")
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"labels must index the {k} classes")
    y_pred = proba.argmax(axis=1)
    all_labels = list(range(k))
    present = sorted(set(y_true.tolist()))

    with warnings.catch_warnings():
        # precision of a class never predicted is 0/0: sklearn warns and uses zero_division
        warnings.simplefilter("ignore")
        p, r, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=all_labels, zero_division=0)
        macro = precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                average="macro", zero_division=0)
        weighted = precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                   average="weighted", zero_division=0)
        # mean recall over the classes present in y_true; sklearn warns (and ignores the
        # row) when a prediction falls into a class the test set lacks
        balanced = balanced_accuracy_score(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred, labels=all_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = cm.sum(axis=1, keepdims=True)
        cm_norm = np.where(rows > 0, cm / np.maximum(rows, 1), 0.0)
    mcm = multilabel_confusion_matrix(y_true, y_pred, labels=all_labels)
    predicted = cm.sum(axis=0)

    per_class: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(classes):
        tn, fp, fn, tp = (int(v) for v in mcm[i].ravel())
        has_true = support[i] > 0
        per_class[name] = {
            "precision": float(p[i]) if predicted[i] > 0 else (0.0 if has_true else None),
            "recall": float(r[i]) if has_true else None,
            "f1": float(f1[i]) if has_true else None,
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        }

    correct = (y_pred == y_true)
    lo, hi = bootstrap_accuracy_ci(correct, n_resamples=n_resamples, seed=seed,
                                   groups=groups)
    ci_method = f"percentile bootstrap, {n_resamples} resamples, seed {seed}"
    if groups is not None:
        ci_method += f", resampling {len(set(np.asarray(groups).tolist()))} subjects"
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "schema": METRICS_SCHEMA,
        "classes": list(classes),
        "n_samples": int(len(y_true)),
        "n_correct": int(correct.sum()),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "accuracy_ci95": [lo, hi],
        "accuracy_ci_method": ci_method,
        "balanced_accuracy": float(balanced),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "averaged_over": [classes[i] for i in present],
        "top2_accuracy": (float(top_k_accuracy_score(y_true, proba, k=2, labels=all_labels))
                          if k > 2 else None),
        "log_loss": _f(log_loss(y_true, clipped, labels=all_labels)),
        "ece": expected_calibration_error(y_true, proba),
        "calibration": calibration_bins(y_true, proba),
        "per_class": per_class,
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalized": cm_norm.tolist(),
    }
