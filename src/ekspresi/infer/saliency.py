"""Which parts of a face the classifier relied on, with ONNX Runtime alone.

Occlusion sensitivity (Zeiler & Fergus, 2014): cover the face with a grey patch at every
position of a grid and measure how much the probability of the predicted class drops. It
needs no gradients, so it works on any exported model and on the inference-only install.
All occluded copies of one face go through one batched call.
"""

from __future__ import annotations

import numpy as np

from ekspresi.infer.classifier import Classifier

GREY = 128


def occlusion_saliency(classifier: Classifier, face: np.ndarray, *, patch: int | None = None,
                       stride: int | None = None, target: int | None = None) -> np.ndarray:
    """float32 (size, size) map in 0..1 (1 = the region whose occlusion hurt most) for the
    uint8 face as the model sees it; ``target`` defaults to the predicted class."""
    face = classifier.prepare(face[None] if face.ndim == 2 else face)[0]
    size = face.shape[0]
    patch = patch or max(2, size // 6)
    stride = stride or max(1, patch // 2)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    positions = [(y, x) for y in starts for x in starts]
    batch = np.repeat(face[None], len(positions) + 1, axis=0)
    for i, (y, x) in enumerate(positions, 1):
        batch[i, y:y + patch, x:x + patch] = GREY
    proba = classifier.predict_proba(batch)
    if target is None:
        target = int(np.argmax(proba[0]))
    drop = np.clip(proba[0, target] - proba[1:, target], 0.0, None)
    heat = np.zeros((size, size), np.float64)
    cover = np.zeros((size, size), np.float64)
    for d, (y, x) in zip(drop, positions):
        heat[y:y + patch, x:x + patch] += d
        cover[y:y + patch, x:x + patch] += 1
    heat /= np.maximum(cover, 1)
    top = heat.max()
    return (heat / top if top > 0 else heat).astype(np.float32)
