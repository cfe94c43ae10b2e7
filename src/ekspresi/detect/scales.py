"""Covering every face size: image pyramids, overlapping tiles, one suppression across them.

A CNN detector finds faces within a fixed range of sizes *in its input pixels* (RetinaFace
~16-600 px; BlazeFace ~15-100 % of its 128/256 px input). A photo holds faces from ~32 px
to the whole frame, so the image is looked at at several resolutions ("passes"), and each
pass may be cut into overlapping tiles. Because the same face can then be found twice
(two tiles, two scales), every candidate goes through ONE non-maximum suppression in
image coordinates at the end (:func:`nms`). The overlap of neighbouring tiles is at least
the largest face that pass is responsible for, so a face on a tile border lies wholly
inside some tile.

Work is bounded: a pass never has more than :data:`MAX_WORK_PIXELS` pixels, whatever the
image size (panoramas, 6000x4000 photos); above that the smallest findable face grows in
proportion, and :meth:`ekspresi.detect.Detector.min_face_px` says by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Upper bound on the pixels the finest pass of a detector processes (a 4000x3000 photo at
#: full resolution), which bounds the time per image; memory is bounded by tiling
#: (docs/detectors.md).
MAX_WORK_PIXELS = 12_500_000
#: Upper bound on the candidates that enter suppression (best first); an image with
#: thousands of faces still answers in bounded time.
MAX_CANDIDATES = 5000


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4,
        containment: float = 0.8) -> np.ndarray:
    """Indices of the boxes kept, best score first. ``boxes`` are (N, 4) x0, y0, x1, y1.

    A box is dropped when it overlaps a better one by IoU > ``iou`` or when ``containment``
    of its own area lies inside the better box: a face cut by a tile edge gives a partial
    box inside the whole one, whose IoU alone can be small.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
    x0, y0, x1, y1 = boxes.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep: list[int] = []
    alive = np.ones(len(order), bool)
    for n, i in enumerate(order):
        if not alive[n]:
            continue
        keep.append(int(i))
        rest = order[n + 1:]
        iw = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        ih = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        drop = (inter > iou * np.maximum(union, 1e-9)) | \
               (inter > containment * np.maximum(area[rest], 1e-9))
        alive[n + 1:] &= ~drop
    return np.asarray(keep, dtype=int)


@dataclass(frozen=True)
class Pass:
    """One look at the image: resized by ``scale``, cut into tiles of ``tile`` x ``tile``
    working pixels (``None`` = the whole image) whose neighbours overlap by ``overlap``."""

    scale: float
    tile: int | None = None
    overlap: int = 0


def pyramid_scale(width: int, height: int, min_face: float, smallest: float,
                  max_pixels: int = MAX_WORK_PIXELS, max_scale: float = 2.0) -> float:
    """The scale at which a ``min_face`` px face becomes ``smallest`` working pixels (what
    the network still finds), capped so that the pass has at most ``max_pixels`` pixels."""
    s = min(max_scale, smallest / max(min_face, 1.0))
    return min(s, math.sqrt(max_pixels / max(width * height, 1)))


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least
    ``overlap`` px shared by neighbours; the last tile ends exactly at the edge."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    n = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tiles(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) tiles covering a width x height image, row by row."""
    return [(x, y, min(tile, width - x), min(tile, height - y))
            for y in tile_origins(height, tile, overlap)
            for x in tile_origins(width, tile, overlap)]
