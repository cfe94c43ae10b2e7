"""The sample records every reader returns.

A :class:`SampleSet` is columnar (one numpy array per field) because FER2013 has 35k images:
per-sample Python objects would make caching, splitting and balancing slow. Indexing it
with an int gives one :class:`Sample`; with an index array or a boolean mask it gives a new
``SampleSet`` (views where numpy allows).

Labels are indices into :data:`ekspresi.labels.ALL_CLASSES` (FER2013 order, contempt = 7),
whatever the dataset calls them, so sets from different datasets can be concatenated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ekspresi.labels import ALL_CLASSES

#: Split names after mapping the datasets' own names (Training/PublicTest/PrivateTest,
#: FER2013Train/Valid/Test) onto them. ``""`` means the layout has no official split.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class LoadReport:
    """What a load left out, so nothing is dropped silently: ``bad`` lists (file, problem)
    for inputs skipped with ``skip_bad``; ``dropped`` counts samples removed on purpose, by
    reason (FER+ vote rule, class selection, cross-split duplicates)."""

    bad: list[tuple[str, str]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def merged(self, other: "LoadReport") -> "LoadReport":
        dropped = dict(self.dropped)
        for reason, n in other.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
        return LoadReport(self.bad + other.bad, dropped)

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass(frozen=True)
class Sample:
    image: np.ndarray            # uint8 gray (H, W)
    label: int                   # index into ALL_CLASSES
    source: str                  # dataset name, e.g. "fer2013", "ckplus"
    split: str                   # "train" | "val" | "test" | "" (no official split)
    subject: str                 # subject/poser id where the layout has one, else ""
    path: str                    # file (or "file:row") the sample came from
    soft: np.ndarray | None = None  # vote distribution over ALL_CLASSES (FER+), sums to 1

    @property
    def class_name(self) -> str:
        return ALL_CLASSES[self.label]


class SampleSet:
    """Columnar collection of samples. ``images`` is a uint8 array (N, H, W) when all images
    share one size, otherwise an object array of (H, W) uint8 arrays."""

    def __init__(self, images: np.ndarray | Sequence[np.ndarray], labels: Sequence[int],
                 sources: Sequence[str], splits: Sequence[str], subjects: Sequence[str],
                 paths: Sequence[str], soft: np.ndarray | None = None,
                 report: LoadReport | None = None):
        n = len(labels)
        #: Bad inputs skipped and samples dropped by the load that made this set; a subset
        #: starts with an empty report (it describes a selection, not a load).
        self.report = report if report is not None else LoadReport()
        self.images = _stack_images(images)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(n)
        self.sources = np.asarray(sources, dtype=object).reshape(n)
        self.splits = np.asarray(splits, dtype=object).reshape(n)
        self.subjects = np.asarray(subjects, dtype=object).reshape(n)
        self.paths = np.asarray(paths, dtype=object).reshape(n)
        self.soft = None if soft is None else np.asarray(soft, dtype=np.float32)
        if len(self.images) != n:
            raise ValueError(f"{len(self.images)} images but {n} labels")
        if self.soft is not None and self.soft.shape != (n, len(ALL_CLASSES)):
            raise ValueError(f"soft labels must be (N, {len(ALL_CLASSES)}), got {self.soft.shape}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls) -> "SampleSet":
        return cls(np.zeros((0, 0, 0), np.uint8), [], [], [], [], [])

    @classmethod
    def from_samples(cls, samples: Sequence[Sample]) -> "SampleSet":
        soft = None
        if samples and all(s.soft is not None for s in samples):
            soft = np.stack([s.soft for s in samples])
        return cls([s.image for s in samples], [s.label for s in samples],
                   [s.source for s in samples], [s.split for s in samples],
                   [s.subject for s in samples], [s.path for s in samples], soft)

    @classmethod
    def concat(cls, sets: Sequence["SampleSet"]) -> "SampleSet":
        report = LoadReport()
        for s in sets:
            report = report.merged(s.report)
        sets = [s for s in sets if len(s)]
        if not sets:
            out = cls.empty()
            out.report = report
            return out
        if all(s.uniform for s in sets) and len({s.images.shape[1:] for s in sets}) == 1:
            images: np.ndarray | list = np.concatenate([s.images for s in sets])
        else:
            images = [im for s in sets for im in s.images]
        soft = None
        if all(s.soft is not None for s in sets):
            soft = np.concatenate([s.soft for s in sets])
        cat = lambda f: np.concatenate([getattr(s, f) for s in sets])  # noqa: E731
        return cls(images, cat("labels"), cat("sources"), cat("splits"), cat("subjects"),
                   cat("paths"), soft, report)

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            i = int(idx)
            return Sample(self.images[i], int(self.labels[i]), str(self.sources[i]),
                          str(self.splits[i]), str(self.subjects[i]), str(self.paths[i]),
                          None if self.soft is None else self.soft[i])
        return self.subset(idx)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> "SampleSet":
        """New set with the rows selected by an index array, boolean mask or slice."""
        if not isinstance(idx, slice):
            idx = np.asarray(idx)
            if idx.dtype != bool:
                idx = idx.astype(np.int64)
        images = self.images[idx]
        return SampleSet(images, self.labels[idx], self.sources[idx], self.splits[idx],
                         self.subjects[idx], self.paths[idx],
                         None if self.soft is None else self.soft[idx])

    def where(self, *, split: str | None = None, source: str | None = None) -> "SampleSet":
        mask = np.ones(len(self), bool)
        if split is not None:
            mask &= self.splits == split
        if source is not None:
            mask &= self.sources == source
        return self.subset(mask)

    @property
    def uniform(self) -> bool:
        """True when images are one uint8 (N, H, W) array."""
        return self.images.dtype == np.uint8 and self.images.ndim == 3

    def class_counts(self, classes: Sequence[str] = ALL_CLASSES) -> dict[str, int]:
        """{class: count} for ``classes`` (zeros included), in the given order."""
        c = Counter(self.labels.tolist())
        return {name: int(c.get(ALL_CLASSES.index(name), 0)) for name in classes}

    def present_classes(self) -> tuple[str, ...]:
        """Classes that occur at least once, in canonical order."""
        have = set(self.labels.tolist())
        return tuple(c for i, c in enumerate(ALL_CLASSES) if i in have)

    def __repr__(self) -> str:
        shape = self.images.shape[1:] if self.uniform else "mixed"
        return f"SampleSet(n={len(self)}, image={shape}, sources={sorted(set(self.sources))})"


def _stack_images(images) -> np.ndarray:
    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 3:
        return images
    if isinstance(images, np.ndarray) and images.dtype == object:
        images = list(images)
    images = list(images)
    if not images:
        return np.zeros((0, 0, 0), np.uint8)
    shapes = {im.shape for im in images}
    if len(shapes) == 1 and len(next(iter(shapes))) == 2:
        return np.stack(images).astype(np.uint8, copy=False)
    out = np.empty(len(images), dtype=object)
    for i, im in enumerate(images):
        out[i] = im
    return out
