"""Every split kind: deterministic under a seed, leak-free (paths, duplicate images, and
subjects when asked), stratified, and the official split's duplicate rule."""

from __future__ import annotations

import numpy as np
import pytest

from ekspresi.data.records import SampleSet
from ekspresi.data.splits import find_duplicates, leaks, make_splits, units
from ekspresi.data.synthetic import face
from ekspresi.errors import ConfigError


def synthetic(n_per_class=(40, 20, 10), *, subjects: int = 0, split: str = "",
              seed: int = 0) -> SampleSet:
    """Distinct random images; optional subject ids cycling over ``subjects`` people."""
    rng = np.random.default_rng(seed)
    labels = [c for c, n in enumerate(n_per_class) for _ in range(n)]
    n = len(labels)
    images = np.stack([face(c, rng) for c in labels])
    subj = [f"S{i % subjects:03d}" if subjects else "" for i in range(n)]
    return SampleSet(images, labels, ["syn"] * n, [split] * n, subj,
                     [f"/syn/{i}.png" for i in range(n)])


def _indices(parts) -> dict[str, list[str]]:
    return {k: sorted(v.paths.tolist()) for k, v in parts.items()}


def _cover(ss, parts) -> None:
    assert sum(len(p) for p in parts.values()) == len(ss)
    assert sorted(sum((p.paths.tolist() for p in parts.values()), [])) == sorted(ss.paths)


@pytest.mark.parametrize("method, kw", [
    ("stratified", {"ratios": (0.8, 0.1, 0.1)}),
    ("stratified", {"ratios": (0.8, 0.2)}),
    ("kfold", {"k": 5, "fold": 3}),
])
def test_random_splits_are_deterministic_stratified_and_complete(method, kw):
    ss = synthetic()
    a = make_splits(ss, method, seed=7, **kw)
    b = make_splits(ss, method, seed=7, **kw)
    c = make_splits(ss, method, seed=8, **kw)
    assert _indices(a) == _indices(b)
    assert _indices(a) != _indices(c)
    _cover(ss, a)
    assert leaks(a) == []
    assert all(len(p) for p in a.values())
    # stratified: every part has every class in roughly the overall proportion
    for part in a.values():
        frac = np.bincount(part.labels, minlength=3) / len(part)
        np.testing.assert_allclose(frac, np.array([40, 20, 10]) / 70, atol=0.08)


def test_stratified_ratios_exact_counts():
    ss = synthetic((40, 20, 10))
    parts = make_splits(ss, "stratified", ratios=(80, 10, 10), seed=1)  # percentages work
    assert {k: len(v) for k, v in parts.items()} == {"train": 56, "val": 7, "test": 7}
    assert parts["test"].class_counts(("angry", "disgust", "fear")) == \
        {"angry": 4, "disgust": 2, "fear": 1}


def test_two_ratios_carve_val_from_train():
    ss = synthetic((50, 50))
    parts = make_splits(ss, "stratified", ratios=(0.8, 0.2), val_fraction=0.25, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 60, "val": 20, "test": 20}


def test_kfold_test_folds_partition_the_data():
    ss = synthetic()
    tests = [set(make_splits(ss, "kfold", k=5, fold=f, seed=3)["test"].paths)
             for f in range(5)]
    assert set().union(*tests) == set(ss.paths)
    assert sum(len(t) for t in tests) == len(ss)
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ConfigError):
        make_splits(ss, "kfold", k=5, fold=5)


@pytest.mark.parametrize("method, kw", [
    ("group", {}),
    ("stratified", {"group_by_subject": True, "ratios": (0.7, 0.15, 0.15)}),
    ("kfold", {"group_by_subject": True, "k": 4, "fold": 1}),
])
def test_subject_disjoint_splits(method, kw):
    ss = synthetic((60, 40, 20), subjects=24)
    a = make_splits(ss, method, seed=5, **kw)
    assert _indices(a) == _indices(make_splits(ss, method, seed=5, **kw))
    _cover(ss, a)
    assert leaks(a, by_subject=True) == []
    subj = {k: set(v.subjects) for k, v in a.items()}
    assert not (subj["train"] & subj["val"] or subj["train"] & subj["test"]
                or subj["val"] & subj["test"])
    assert all(len(v) for v in a.values())


def test_group_split_needs_subjects_and_enough_of_them():
    with pytest.raises(ConfigError, match="subject ids"):
        make_splits(synthetic(), "group")
    with pytest.raises(ConfigError, match="only 3 subjects"):
        make_splits(synthetic(subjects=3), "group")


def test_official_split_with_val_keeps_it():
    parts = {s: synthetic((5, 5), split=s, seed=i) for i, s in enumerate(("train", "val", "test"))}
    for s, p in parts.items():
        p.paths = np.array([f"/{s}/{i}" for i in range(len(p))], dtype=object)
    ss = SampleSet.concat(list(parts.values()))
    out = make_splits(ss)
    assert {k: sorted(v.paths) for k, v in out.items()} == \
        {k: sorted(v.paths) for k, v in parts.items()}


def test_official_split_without_val_carves_it_from_train_never_test():
    train = synthetic((30, 30), split="train")
    test = synthetic((5, 5), split="test", seed=1)
    test.paths = np.array([f"/test/{i}" for i in range(len(test))], dtype=object)
    ss = SampleSet.concat([train, test])
    out = make_splits(ss, "official", val_fraction=0.2, seed=2)
    assert sorted(out["test"].paths) == sorted(test.paths)
    assert len(out["val"]) == 12 and set(out["val"].splits) == {"train"}
    assert leaks(out) == []
    assert _indices(out) == _indices(make_splits(ss, "official", val_fraction=0.2, seed=2))


def test_official_split_needs_official_splits():
    with pytest.raises(ConfigError, match="no official split"):
        make_splits(synthetic(), "official")


def test_official_duplicates_most_held_out_copy_wins():
    ss = SampleSet.concat([synthetic((6,), split=s, seed=i)
                           for i, s in enumerate(("train", "val", "test"))])
    ss.paths = np.array([f"/{i}" for i in range(len(ss))], dtype=object)
    ss.images[1] = ss.images[13]   # train copy of a test image
    ss.images[7] = ss.images[14]   # val copy of a test image
    ss.images[2] = ss.images[8]    # train copy of a val image
    ss.images[3] = ss.images[4]    # duplicate inside train: no leak, both kept
    dup = find_duplicates(ss)
    assert dup == [[1, 13], [2, 8], [3, 4], [7, 14]]
    out = make_splits(ss)
    assert leaks(out) == []
    assert len(out["test"]) == 6 and len(out["val"]) == 5 and len(out["train"]) == 4
    assert out["train"].report.dropped == {"duplicate of an image in a more held-out split": 2}
    assert out["val"].report.dropped == {"duplicate of an image in a more held-out split": 1}
    assert "/3" in out["train"].paths and "/4" in out["train"].paths


def test_duplicates_and_same_paths_stay_together_in_random_splits():
    ss = synthetic((30, 30))
    for i in range(0, 20, 2):
        ss.images[i + 1] = ss.images[i]
    ss.paths[40] = ss.paths[41]
    u = units(ss)
    assert u[0] == u[1] and u[40] == u[41] and len(np.unique(u)) == 60 - 11
    for seed in range(5):
        assert leaks(make_splits(ss, "stratified", seed=seed)) == []
        assert leaks(make_splits(ss, "kfold", seed=seed, fold=seed)) == []


def test_bad_arguments():
    ss = synthetic()
    with pytest.raises(ConfigError):
        make_splits(ss, "random")
    with pytest.raises(ConfigError):
        make_splits(ss, "stratified", ratios=(1.0,))
    with pytest.raises(ConfigError):
        make_splits(ss, "stratified", ratios=(0.8, 0.2), val_fraction=1.5)
