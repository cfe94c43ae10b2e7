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
from typing import Any

import numpy as np

from ekspresi.evaluate.collapse import collapse_check, run_collapse


def split_scores(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
                 ) -> dict[str, Any]:
    """n, accuracy, macro recall (mean over the classes present in ``labels`` of the
    row-normalised confusion diagonal) and the confusion matrix (rows = true class)."""
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predicted, dtype=np.int64).ravel()
    k = len(classes)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, p), 1)
    rows = cm.sum(axis=1)
    present = rows > 0
    recall = float(np.mean(np.diag(cm)[present] / rows[present])) if present.any() else None
    return {"n": int(y.size), "acc": float((y == p).mean()) if y.size else None,
            "macro_recall": recall, "confusion": cm.tolist()}


def run_scores(*, val_labels: np.ndarray, val_logits: np.ndarray, test_labels: np.ndarray,
               test_logits: np.ndarray, test_sources: np.ndarray, classes: Sequence[str],
               by_source: bool = True, official_split: bool = False) -> dict[str, Any]:
    """Keys added to ``final_metrics.json``: ``val_macro_recall``, ``test_macro_recall``,
    ``test_confusion``, ``test_by_source`` (n, acc, macro recall, confusion, collapse per
    source), ``val_plus_test`` (official splits: validation and test pooled, paper 2's
    protocol) and ``collapse``."""
    classes = list(classes)
    vp, tp = np.asarray(val_logits).argmax(1), np.asarray(test_logits).argmax(1)
    vl, tl = np.asarray(val_labels), np.asarray(test_labels)
    val, test = split_scores(vl, vp, classes), split_scores(tl, tp, classes)
    out: dict[str, Any] = {"val_macro_recall": val["macro_recall"],
                           "test_macro_recall": test["macro_recall"],
                           "test_confusion": test["confusion"]}
    if by_source:
        sources = np.asarray(test_sources).astype(str)
        per = {}
        for src in sorted(set(sources.tolist())):
            m = sources == src
            s = split_scores(tl[m], tp[m], classes)
            s["collapsed"] = collapse_check(tp[m], classes)["collapsed"]
            per[src] = s
        out["test_by_source"] = per
    if official_split:
        both = split_scores(np.concatenate([vl, tl]), np.concatenate([vp, tp]), classes)
        both["note"] = ("validation + test pooled: for FER2013 all PublicTest + PrivateTest "
                        "images (paper 2's test set, which it also validated on), less the "
                        "validation copies of test images the leak-free split dropped")
        both.pop("confusion")
        out["val_plus_test"] = both
    out["collapse"] = run_collapse({"val": collapse_check(vp, classes),
                                    "test": collapse_check(tp, classes)})
    return out
