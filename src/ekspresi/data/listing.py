"""What every file-based reader shares: collecting (file, label, split, subject) rows,
recording bad inputs, and decoding the files in parallel into a :class:`SampleSet`.

Readers only *list* samples; decoding is done once, here, through
:func:`ekspresi.imaging.read_image` and :func:`ekspresi.preprocess.to_gray`, so every dataset
gets the same safety checks and the same gray conversion as inference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.errors import BadInputError
from ekspresi.imaging import read_image
from ekspresi.labels import ALL_CLASSES
from ekspresi.preprocess import to_gray


def decode_gray(path: str) -> np.ndarray:
    """Decode one file to uint8 gray (H, W); raises :class:`BadInputError` naming it."""
    return to_gray(read_image(path))


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` in sorted (deterministic) order. Hidden entries
    (``.DS_Store``, ``.git``) are OS/tool clutter, not dataset content, and are skipped."""
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from iter_files(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def subdirs(root: Path) -> list[Path]:
    """Non-hidden sub-folders of ``root``, sorted."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class Listing:
    """Rows a reader found, plus the problems it met.

    With ``strict`` (the default of :func:`ekspresi.data.load`) the first problem raises
    :class:`BadInputError`; otherwise it is recorded in ``report.bad`` and the load goes on.
    """

    def __init__(self, source: str, *, strict: bool, with_soft: bool = False):
        self.source = source
        self.strict = strict
        self.paths: list[str] = []
        self.labels: list[int] = []
        self.splits: list[str] = []
        self.subjects: list[str] = []
        self.soft: list[np.ndarray] | None = [] if with_soft else None
        self.report = LoadReport()

    def add(self, path: str | Path, label: int, split: str = "", subject: str = "",
            soft: np.ndarray | None = None) -> None:
        self.paths.append(str(path))
        self.labels.append(int(label))
        self.splits.append(split)
        self.subjects.append(subject)
        if self.soft is not None:
            if soft is None:
                raise ValueError("this listing needs soft labels for every row")
            self.soft.append(soft)

    def bad(self, path: str | Path | None, problem: str) -> None:
        if self.strict:
            raise BadInputError(None if path is None else str(path), problem)
        self.report.bad.append((str(path), problem))

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, workers: int | None = None) -> SampleSet:
        """Decode every listed file (thread pool: Pillow releases the GIL while decoding);
        files that fail are bad inputs like any other."""
        workers = workers or min(4, os.cpu_count() or 1)
        keep: list[int] = []
        images: list[np.ndarray] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_try_decode, self.paths, chunksize=256)
            try:
                for i, (img, problem) in enumerate(results):
                    if problem is not None:
                        self.bad(self.paths[i], problem)
                        continue
                    keep.append(i)
                    images.append(img)
            except BadInputError:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return self.to_set(images, keep)

    def to_set(self, images: list[np.ndarray], keep: list[int] | None = None) -> SampleSet:
        """SampleSet of the rows in ``keep`` (all rows when None) with their ``images``."""
        idx = list(range(len(self.paths))) if keep is None else keep
        pick = lambda col: [col[i] for i in idx]  # noqa: E731
        soft = None
        if self.soft is not None:
            soft = (np.stack(pick(self.soft)) if idx
                    else np.zeros((0, len(ALL_CLASSES)), np.float32))
        return SampleSet(images, pick(self.labels), [self.source] * len(idx),
                         pick(self.splits), pick(self.subjects), pick(self.paths), soft,
                         self.report)


def _try_decode(path: str) -> tuple[np.ndarray | None, str | None]:
    try:
        return decode_gray(path), None
    except BadInputError as exc:
        return None, exc.problem
