"""Tiny synthetic datasets in the real on-disk layouts, for tests and demos (no real data may
be committed). Images are noise plus a class-dependent bright bar, so a model can learn them
and no two images are identical (duplicates would be merged by the splitters)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ekspresi.labels import ALL_CLASSES, CLASSES, KDEF_CODES


def face(label: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """uint8 (size, size) image: noise + a horizontal bar whose row depends on ``label``."""
    img = rng.integers(0, 120, (size, size), dtype=np.uint8)
    row = (label + 1) * size // (len(ALL_CLASSES) + 2)
    img[row:row + max(2, size // 12)] = 230
    return img


def write_class_folders(root: str | Path, counts: dict[str, int], *, size: int = 48,
                        seed: int = 0, ext: str = ".png",
                        names: Sequence[str] | None = None) -> Path:
    """``root/<class>/<name>`` with ``counts[class]`` images each. ``names`` (optional) is a
    list of file-name patterns with ``{i}``, e.g. ``["S{i:03d}_001_00000001"]`` cycling over
    subjects."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        label = ALL_CLASSES.index(cls) if cls in ALL_CLASSES else 0
        for i in range(n):
            stem = names[i % len(names)].format(i=i) if names else f"{cls}_{i:04d}"
            Image.fromarray(face(label, rng, size)).save(d / f"{stem}{ext}")
    return root


def write_fer2013_csv(path: str | Path, rows: Sequence[tuple[int, str]], *, seed: int = 0
                      ) -> Path:
    """``fer2013.csv`` with one row per (emotion index, Usage)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for emotion, usage in rows:
            w.writerow([emotion, " ".join(map(str, face(emotion, rng).ravel())), usage])
    return path


def write_kdef(root: str | Path, subjects: Sequence[str] = ("AF01", "AM02", "BF01"),
               codes: Sequence[str] = tuple(KDEF_CODES), views: Sequence[str] = ("S",), *,
               size: int = 64, seed: int = 0) -> Path:
    """KDEF layout: ``root/<session+subject>/<session+subject><code><view>.JPG``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for subj in subjects:
        d = root / subj
        d.mkdir(parents=True, exist_ok=True)
        for code in codes:
            label = CLASSES.index(KDEF_CODES[code])
            for view in views:
                Image.fromarray(face(label, rng, size)).save(d / f"{subj}{code}{view}.JPG",
                                                             quality=95)
    return root
