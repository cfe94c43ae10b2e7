"""Train/val/test splits that never leak.

Leak-free means: no file and no exact-duplicate image (same decoded pixels) in two splits,
and with ``group_by_subject`` no person in two splits. Samples that must stay together
(same path, same pixels, same subject when grouping) form one *unit*; random splits assign
whole units. The official FER2013 split itself contains cross-split duplicates; the rule is
**the most held-out copy wins**: a duplicate group spanning splits keeps its members in test
(else val) and drops them from the other splits, so the official test set stays exactly as
published. The drops are counted in each part's ``report.dropped`` and logged.

Validation is never the test set: when a layout has no official validation split,
``val_fraction`` of the training part is carved out (stratified, seeded).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence

import numpy as np

from ekspresi.data.records import SPLITS, LoadReport, SampleSet
from ekspresi.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

METHODS = ("official", "stratified", "kfold", "group")
_PRIORITY = {"train": 0, "val": 1, "test": 2}


def image_hashes(ss: SampleSet) -> np.ndarray:
    """Content hash of every decoded image (shape + pixels), as hex strings."""
    out = np.empty(len(ss), dtype=object)
    for i, im in enumerate(ss.images):
        h = hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16)
        h.update(repr(im.shape).encode())
        out[i] = h.hexdigest()
    return out


def find_duplicates(ss: SampleSet) -> list[list[int]]:
    """Groups (>= 2 indices, ascending) of samples with identical decoded images."""
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(image_hashes(ss)):
        groups.setdefault(h, []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def units(ss: SampleSet, *, by_subject: bool = False) -> np.ndarray:
    """Unit id per sample: samples sharing a path, an image hash or (``by_subject``) a
    non-empty subject id of the same source get the same id (union-find)."""
    parent = list(range(len(ss)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys: list[np.ndarray] = [ss.paths, image_hashes(ss)]
    if by_subject:
        keys.append(np.array([f"{src}\0{sub}" if sub else "" for src, sub
                              in zip(ss.sources, ss.subjects)], dtype=object))
    for column in keys:
        first: dict[str, int] = {}
        for i, key in enumerate(column):
            if key == "":
                continue
            j = first.setdefault(key, i)
            if j != i:
                parent[root(i)] = root(j)
    roots = np.array([root(i) for i in range(len(ss))], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1]


def make_splits(ss: SampleSet, method: str = "official", *,
                ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, k: int = 5,
                fold: int = 0, group_by_subject: bool = False,
                val_fraction: float = 0.1) -> dict[str, SampleSet]:
    """Split ``ss`` into ``{"train", "val", "test"}`` (see the module doc for the rules).

    method: ``official`` (the dataset's own split), ``stratified`` (``ratios`` of 2 numbers
    -> train/test + val carved from train, or 3 numbers -> train/val/test), ``kfold``
    (``fold`` of ``k`` is the test part), ``group`` (= stratified with subject-disjoint
    parts). Deterministic for a given ``seed``.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown split method {method!r}; use one of {', '.join(METHODS)}")
    if not len(ss):
        raise ConfigError("cannot split an empty dataset")
    grouped = group_by_subject or method == "group"
    if grouped:
        _require_subjects(ss)
    rng = np.random.default_rng(seed)
    unit = units(ss, by_subject=grouped)
    if method == "official":
        return _official(ss, unit, rng, val_fraction, grouped, seed)
    if method == "kfold":
        if not 2 <= k or not 0 <= fold < k:
            raise ConfigError(f"kfold needs k >= 2 and 0 <= fold < k, got k={k}, fold={fold}")
        fold_of = (_group_folds(ss, unit, k, seed) if grouped
                   else _stratified_folds(ss.labels, unit, k, rng))
        test = fold_of == fold
        assign = np.where(test, 2, 0)
        _carve_val(ss, unit, assign, val_fraction, rng, grouped, seed)
        return _parts(ss, assign)
    r = _ratios(ratios)
    if len(r) == 2:
        assign = _assign(ss, unit, (r[0], 0.0, r[1]), rng, grouped, seed)
        _carve_val(ss, unit, assign, val_fraction, rng, grouped, seed)
    else:
        assign = _assign(ss, unit, tuple(r), rng, grouped, seed)
    return _parts(ss, assign)


# -- official ----------------------------------------------------------------------------
def _official(ss: SampleSet, unit: np.ndarray, rng: np.random.Generator, val_fraction: float,
              grouped: bool, seed: int) -> dict[str, SampleSet]:
    no_split = sorted(set(ss.sources[ss.splits == ""]))
    if no_split:
        raise ConfigError(f"{', '.join(no_split)} has no official split; use the "
                          "stratified, kfold or group split method")
    assign = np.array([_PRIORITY[s] for s in ss.splits], dtype=np.int64)
    # Most held-out copy wins: every member of a unit goes to the unit's highest split.
    top = np.zeros(unit.max() + 1, np.int64)
    np.maximum.at(top, unit, assign)
    moved = assign != top[unit]
    report: dict[int, LoadReport] = {p: LoadReport() for p in range(3)}
    for p in range(2):
        n = int((moved & (assign == p)).sum())
        if n:
            report[p].drop("duplicate of an image in a more held-out split", n)
            log.info("official split: dropped %d %s samples that duplicate a more held-out "
                     "split", n, SPLITS[p])
    assign[moved] = -1
    if not (assign == 2).any():
        raise ConfigError("the official split has no test part")
    if not (assign == 1).any():
        _carve_val(ss, unit, assign, val_fraction, rng, grouped, seed)
    parts = _parts(ss, assign)
    for p, name in enumerate(SPLITS):
        parts[name].report = report[p]
    return parts


# -- assignment helpers ------------------------------------------------------------------
def _ratios(ratios: Sequence[float]) -> list[float]:
    r = [float(x) for x in ratios]
    if len(r) not in (2, 3) or any(x < 0 for x in r) or sum(r) <= 0 or r[0] == 0 or r[-1] == 0:
        raise ConfigError(f"ratios must be 2 (train, test) or 3 (train, val, test) positive "
                          f"numbers, got {list(ratios)}")
    total = sum(r)
    return [x / total for x in r]


def _unit_labels(labels: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Label of each unit: the label of its first sample."""
    first = np.full(unit.max() + 1, -1, np.int64)
    order = np.arange(len(unit))[::-1]
    first[unit[order]] = labels[order]
    return first


def _assign(ss: SampleSet, unit: np.ndarray, ratios: tuple[float, float, float],
            rng: np.random.Generator, grouped: bool, seed: int) -> np.ndarray:
    """Part index (0 train, 1 val, 2 test) per sample."""
    if grouped:
        return _group_assign(ss, unit, ratios, seed)
    ulab = _unit_labels(ss.labels, unit)
    part = np.zeros(len(ulab), np.int64)
    bounds = np.cumsum(ratios)
    for c in np.unique(ulab):
        members = rng.permutation(np.flatnonzero(ulab == c))
        cuts = np.round(bounds * len(members)).astype(int)
        part[members[cuts[0]:cuts[1]]] = 1
        part[members[cuts[1]:]] = 2
    return part[unit]


def _stratified_folds(labels: np.ndarray, unit: np.ndarray, k: int,
                      rng: np.random.Generator) -> np.ndarray:
    ulab = _unit_labels(labels, unit)
    fold = np.zeros(len(ulab), np.int64)
    offset = 0
    for c in np.unique(ulab):
        members = rng.permutation(np.flatnonzero(ulab == c))
        fold[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)  # keeps the folds' sizes within one of each other overall
    return fold[unit]


def _carve_val(ss: SampleSet, unit: np.ndarray, assign: np.ndarray, val_fraction: float,
               rng: np.random.Generator, grouped: bool, seed: int) -> None:
    """Move ``val_fraction`` of the train part (whole units) to val, in place."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    idx = np.flatnonzero(assign == 0)
    if not len(idx):
        raise ConfigError("no training samples left to carve a validation part from")
    sub = ss.subset(idx)
    sub_unit = np.unique(unit[idx], return_inverse=True)[1]
    part = _assign(sub, sub_unit, (1 - val_fraction, 0.0, val_fraction), rng, grouped, seed)
    assign[idx[part == 2]] = 1


def _require_subjects(ss: SampleSet) -> None:
    missing = sorted(set(ss.sources[ss.subjects == ""]))
    if missing:
        raise ConfigError(f"subject-disjoint splits need subject ids, and {', '.join(missing)} "
                          "has none (CK+, JAFFE and KDEF file names carry them)")


def _stratified_group_kfold(k: int, seed: int):
    try:
        from sklearn.model_selection import StratifiedGroupKFold
    except ImportError:
        raise MissingDependencyError("subject-disjoint splits need scikit-learn: "
                                     "pip install 'ekspresi[train]'") from None
    return StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)


def _group_folds(ss: SampleSet, unit: np.ndarray, k: int, seed: int) -> np.ndarray:
    n_groups = unit.max() + 1
    if n_groups < k:
        raise ConfigError(f"only {n_groups} subjects: cannot make {k} subject-disjoint folds")
    fold = np.zeros(len(ss), np.int64)
    splitter = _stratified_group_kfold(k, seed)
    with warnings.catch_warnings():  # tiny classes are expected (CK+ contempt, JAFFE)
        warnings.filterwarnings("ignore", message="The least populated class")
        for f, (_, test_idx) in enumerate(splitter.split(np.zeros(len(ss)), ss.labels, unit)):
            fold[test_idx] = f
    return fold


def _group_assign(ss: SampleSet, unit: np.ndarray, ratios: tuple[float, float, float],
                  seed: int) -> np.ndarray:
    """Subject-disjoint parts: StratifiedGroupKFold with n folds such that each ratio is a
    whole number of folds (0.8/0.1/0.1 -> 10 folds: 8 train, 1 val, 1 test)."""
    n = next((n for n in range(2, 21)
              if all(abs(r * n - round(r * n)) < 0.05 for r in ratios)), 20)
    counts = [int(round(r * n)) for r in ratios]
    counts[0] = n - counts[1] - counts[2]
    n_groups = int(unit.max()) + 1
    if n_groups < n:
        raise ConfigError(f"only {n_groups} subjects: too few for a subject-disjoint split "
                          f"with ratios {[round(r, 3) for r in ratios]} ({n} folds needed)")
    fold = _group_folds(ss, unit, n, seed)
    part = np.zeros(len(ss), np.int64)
    part[fold >= counts[0]] = 1
    part[fold >= counts[0] + counts[1]] = 2
    return part


def _parts(ss: SampleSet, assign: np.ndarray) -> dict[str, SampleSet]:
    return {name: ss.subset(np.flatnonzero(assign == p)) for p, name in enumerate(SPLITS)}


def leaks(parts: dict[str, SampleSet], *, by_subject: bool = False) -> list[str]:
    """Human-readable list of what two parts share (paths, images, subjects); [] if none."""
    found: list[str] = []
    names = list(parts)
    keys = {n: (set(parts[n].paths), set(image_hashes(parts[n])),
                {f"{a}/{b}" for a, b in zip(parts[n].sources, parts[n].subjects) if b})
            for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for what, ka, kb in zip(("path", "image", "subject"), keys[a], keys[b]):
                if what == "subject" and not by_subject:
                    continue
                shared = ka & kb
                if shared:
                    found.append(f"{len(shared)} {what}(s) in both {a} and {b}")
    return found
