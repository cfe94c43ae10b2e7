"""Class balancing for the training part only (never val/test: their class mix is what the
reported metrics are about).

``oversample`` repeats random samples of the smaller classes up to the largest class (or up
to ``per_class``); ``undersample`` keeps a random subset of the larger classes down to the
smallest class (or to ``per_class``). A class already on the other side of the target is
kept as is. Samples removed by undersampling are counted in ``report.dropped``.
``class_weights`` is the alternative that keeps every sample.
"""

from __future__ import annotations

import logging

import numpy as np

from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.errors import ConfigError
from ekspresi.labels import ALL_CLASSES, parse_classes

log = logging.getLogger(__name__)

METHODS = ("none", "oversample", "undersample")


def balance(ss: SampleSet, method: str | None, *, per_class: int | None = None,
            seed: int = 0, classes=None) -> SampleSet:
    """Rebalance ``ss`` (deterministic for a seed). ``classes`` (optional, a
    :func:`~ekspresi.labels.parse_classes` spec) names the classes that must be present:
    an empty one is an error, since no resampling can create it."""
    if method is None or method == "none":
        return ss
    if method not in METHODS:
        raise ConfigError(f"unknown balancing method {method!r}; use one of "
                          f"{', '.join(METHODS)}")
    if not len(ss):
        raise ConfigError("cannot balance an empty training set")
    if per_class is not None and per_class < 1:
        raise ConfigError(f"per_class must be a positive number, got {per_class}")
    if classes is not None:
        empty = [c for c in parse_classes(classes) if not (ss.labels == ALL_CLASSES.index(c)).any()]
        if empty:
            raise ConfigError(f"cannot {method} with empty classes: {', '.join(empty)} "
                              "has no training samples")
    rng = np.random.default_rng(seed)
    present = np.unique(ss.labels)
    members = {int(c): np.flatnonzero(ss.labels == c) for c in present}
    counts = {c: len(m) for c, m in members.items()}
    report = LoadReport()
    keep: list[np.ndarray] = []
    if method == "oversample":
        target = per_class or max(counts.values())
        keep.append(np.arange(len(ss)))
        for c, m in members.items():
            if len(m) < target:
                keep.append(rng.choice(m, target - len(m), replace=True))
    else:
        target = per_class or min(counts.values())
        for c, m in members.items():
            if len(m) > target:
                keep.append(np.sort(rng.choice(m, target, replace=False)))
                report.drop(f"undersampled: {ALL_CLASSES[c]}", len(m) - target)
            else:
                keep.append(m)
                if per_class and len(m) < per_class:
                    log.warning("undersample: %s has only %d samples (< %d per class)",
                                ALL_CLASSES[c], len(m), per_class)
    out = ss.subset(np.concatenate(keep))
    out.report = report
    log.info("%s to %d per class: %d -> %d samples", method, target, len(ss), len(out))
    return out


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """"balanced" weights n_samples / (n_present_classes * count) for labels in
    ``range(num_classes)``; classes without samples get weight 0 (they never occur)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ConfigError("cannot compute class weights without labels")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ConfigError(f"labels must be in 0..{num_classes - 1}")
    present = np.unique(labels)
    weights = np.zeros(num_classes, np.float64)
    try:
        from sklearn.utils.class_weight import compute_class_weight
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    except ImportError:  # same formula, for the inference-only install
        weights[present] = len(labels) / (len(present) * np.bincount(labels)[present])
    return weights
