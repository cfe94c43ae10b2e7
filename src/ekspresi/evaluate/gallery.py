"""Which faces to show in the galleries of correct and misclassified samples.

Kept apart from the drawing so the choice can be tested exactly: per true class, the
mistakes the model was most sure of come first (they reveal label noise and systematic
confusions), and the correct samples are shown most confident first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GalleryItem:
    index: int          # row in the evaluated arrays
    true: int           # class index
    pred: int           # class index
    confidence: float   # probability of the predicted class


def select_gallery(y_true: np.ndarray, proba: np.ndarray, per_class: int = 6,
                   ) -> dict[str, dict[int, list[GalleryItem]]]:
    """``{"correct": {class: items}, "mistakes": {class: items}}`` keyed by true class,
    each list sorted by the predicted class's probability, highest first (ties by index)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1)
    conf = proba[np.arange(len(pred)), pred]
    out: dict[str, dict[int, list[GalleryItem]]] = {"correct": {}, "mistakes": {}}
    for kind, ok in (("correct", True), ("mistakes", False)):
        for c in range(proba.shape[1]):
            idx = np.flatnonzero((y_true == c) & ((pred == y_true) == ok))
            if not len(idx):
                continue
            order = idx[np.lexsort((idx, -conf[idx]))][:per_class]
            out[kind][c] = [GalleryItem(int(i), int(y_true[i]), int(pred[i]), float(conf[i]))
                            for i in order]
    return out
