"""The extra numbers a run records so it can be set beside each paper's own figure.

The papers did not all report test accuracy: paper 4 gave plain validation accuracy and the
mean diagonal of its row-normalised confusion matrix (= macro recall), paper 5 a validation
figure, paper 2 accuracy on all 7,178 FER2013 test images (PublicTest + PrivateTest, which
it also used for validation), paper 3 a confusion matrix per test source. ``run_scores``
computes all of them from the logits the trainer already has, together with the collapse
check (:mod:`ekspresi.evaluate.collapse`), for ``final_metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ekspresi.evaluate.collapse import collapse_check, run_collapse
from ekspresi.metrics_schema import TEST, VAL, VAL_PLUS_TEST, RunMetrics, SplitMetrics


def split_scores(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
                 ) -> SplitMetrics:
    """n_samples, accuracy, macro recall (mean over the classes present in ``labels`` of the
    row-normalised confusion diagonal) and the confusion matrix (rows = true class)."""
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predicted, dtype=np.int64).ravel()
    k = len(classes)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, p), 1)
    rows = cm.sum(axis=1)
    present = rows > 0
    recall = float(np.mean(np.diag(cm)[present] / rows[present])) if present.any() else None
    return SplitMetrics(n_samples=int(y.size),
                        accuracy=float((y == p).mean()) if y.size else None,
                        macro_recall=recall, confusion_matrix=cm.tolist())


def run_scores(*, val_labels: np.ndarray, val_logits: np.ndarray, test_labels: np.ndarray,
               test_logits: np.ndarray, test_sources: np.ndarray, classes: Sequence[str],
               by_source: bool = True, official_split: bool = False) -> RunMetrics:
    """The ``splits`` and ``collapse`` of ``final_metrics.json``: ``val`` and ``test``
    (n_samples, accuracy, macro recall, confusion matrix; the test split also
    ``by_source``, each with its collapse flag), ``val+test`` (official splits: validation
    and test pooled, paper 2's protocol) and the run's collapse check."""
    classes = list(classes)
    vp, tp = np.asarray(val_logits).argmax(1), np.asarray(test_logits).argmax(1)
    vl, tl = np.asarray(val_labels), np.asarray(test_labels)
    val, test = split_scores(vl, vp, classes), split_scores(tl, tp, classes)
    if by_source:
        sources = np.asarray(test_sources).astype(str)
        per = {}
        for src in sorted(set(sources.tolist())):
            m = sources == src
            per[src] = split_scores(tl[m], tp[m], classes)
            per[src].collapsed = collapse_check(tp[m], classes)["collapsed"]
        test.by_source = per
    out = RunMetrics(splits={VAL: val, TEST: test})
    if official_split:
        both = split_scores(np.concatenate([vl, tl]), np.concatenate([vp, tp]), classes)
        out.splits[VAL_PLUS_TEST] = SplitMetrics(
            n_samples=both.n_samples, accuracy=both.accuracy, macro_recall=both.macro_recall,
            note="validation + test pooled: for FER2013 all PublicTest + PrivateTest "
                 "images (paper 2's test set, which it also validated on), less the "
                 "validation copies of test images the leak-free split dropped")
    out.collapse = run_collapse({"val": collapse_check(vp, classes),
                                 "test": collapse_check(tp, classes)})
    return out
