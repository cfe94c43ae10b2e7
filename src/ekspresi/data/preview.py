"""A labelled grid of random samples per class (``ekspresi data preview``), drawn with OpenCV
so it works on the inference-only install. Faces go through
:func:`ekspresi.preprocess.prepare_face`, so the grid shows what a model is fed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ekspresi.data.records import SampleSet
from ekspresi.errors import BadInputError
from ekspresi.labels import ALL_CLASSES
from ekspresi.preprocess import prepare_face

LABEL_WIDTH = 110


def sample_indices(ss: SampleSet, per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``per_class`` random indices for each class present, in canonical order."""
    rng = np.random.default_rng(seed)
    out = {}
    for cls in ss.present_classes():
        idx = np.flatnonzero(ss.labels == ALL_CLASSES.index(cls))
        out[cls] = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
    return out


def preview_grid(ss: SampleSet, *, per_class: int = 8, size: int = 64,
                 seed: int = 0) -> np.ndarray:
    """uint8 gray image: one row per class, its name and count on the left."""
    if not len(ss):
        raise BadInputError(None, "nothing to preview: the dataset is empty")
    rows = []
    counts = ss.class_counts()
    for cls, idx in sample_indices(ss, per_class, seed).items():
        row = np.full((size, LABEL_WIDTH + per_class * size), 255, np.uint8)
        for j, i in enumerate(idx):
            row[:, LABEL_WIDTH + j * size:LABEL_WIDTH + (j + 1) * size] = \
                prepare_face(ss.images[i], size)
        cv2.putText(row, cls, (4, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
        cv2.putText(row, f"n={counts[cls]}", (4, size // 2 + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, 80, 1, cv2.LINE_AA)
        rows.append(row)
    return np.vstack(rows)


def write_preview(ss: SampleSet, out: str | Path, **kw) -> Path:
    out = Path(out)
    grid = preview_grid(ss, **kw)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(out.suffix or ".png", grid)
    if not ok:
        raise BadInputError(str(out), "cannot write this image type; use .png or .jpg")
    out.write_bytes(buf.tobytes())
    return out
