"""Test-time augmentation: average the model's probabilities over transformed copies of
each face.

Views are made from the same uint8 faces the model normally sees, so TTA needs no model
changes and works with any ``predict_proba``. ``multicrop`` is the classic ten-crop (four
corners + centre, each also mirrored) used by FER2013 papers; crops are resized back to the
model's input size with the shared :func:`ekspresi.preprocess.resize`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ekspresi.preprocess import resize

TTA_MODES: tuple[str, ...] = ("none", "flip", "multicrop")

#: Side of the multi-crop windows as a fraction of the face side (42 px of 48).
CROP_FRACTION = 0.875

PredictProba = Callable[[np.ndarray], np.ndarray]


def _crops(faces: np.ndarray, fraction: float) -> list[np.ndarray]:
    n, h, w = faces.shape
    ch, cw = max(1, int(round(h * fraction))), max(1, int(round(w * fraction)))
    offsets = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw),
               ((h - ch) // 2, (w - cw) // 2)]
    views = []
    for y, x in offsets:
        window = faces[:, y:y + ch, x:x + cw]
        views.append(np.stack([resize(np.ascontiguousarray(f), h) for f in window])
                     if (ch, cw) != (h, w) else window)
    return views


def tta_views(faces: np.ndarray, mode: str) -> list[np.ndarray]:
    """The uint8 (N, H, W) batches whose predictions are averaged for ``mode``."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    faces = np.asarray(faces)
    if mode == "none":
        return [faces]
    base = [faces] if mode == "flip" else _crops(faces, CROP_FRACTION)
    return [v for b in base for v in (b, np.ascontiguousarray(b[:, :, ::-1]))]


def predict_tta(predict_proba: PredictProba, faces: np.ndarray, mode: str = "none",
                batch_size: int = 1024) -> np.ndarray:
    """Mean probabilities over the TTA views, computed in batches to bound memory."""
    faces = np.asarray(faces)
    out = []
    for start in range(0, len(faces), batch_size):
        chunk = faces[start:start + batch_size]
        views = tta_views(chunk, mode)
        out.append(np.mean([np.asarray(predict_proba(v), dtype=np.float64) for v in views],
                           axis=0))
    if not out:
        raise ValueError("no faces to predict")
    return np.concatenate(out)
