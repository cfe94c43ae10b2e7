"""Any fixed-input detector over a pyramid of overlapping tiles (``blazeface-tiled``).

BlazeFace letterboxes the whole image into 128/256 px, so in a 1920x1080 photo every face
under ~200 px is lost. Cutting the image into tiles small enough that the smallest face
searched for is a detectable fraction of a tile, then into larger and larger tiles for
larger faces (the last level is the whole image), covers every size. Neighbouring tiles
overlap by at least the largest face their level is responsible for (the next level finds
larger ones), so a face on a tile border is wholly inside some tile; the duplicates that
overlap creates are removed by one suppression across all tiles and levels.

Measured in docs/detectors.md: it finds small faces but costs many network runs per
image and adds false boxes from textures, which is why it is not the default.
"""

from __future__ import annotations

import math

import numpy as np

from ekspresi.detect.base import Detector
from ekspresi.detect.scales import nms, tiles
from ekspresi.detect.types import Detection

#: Each level's tiles are this many times larger than the previous level's.
LEVEL_RATIO = 3.0
#: At most this many tiles in the finest level; larger images raise the smallest face.
MAX_TILES = 300
NMS_IOU = 0.3


class TiledDetector(Detector):
    """Wraps ``inner`` (a :class:`Detector` that finds faces of ``face_range`` = (a, b)
    times the side of the square it is given). Its options (threshold, sizes, count) are
    applied here, after the cross-tile suppression; ``inner``'s own are ignored."""

    def __init__(self, inner: Detector, face_range: tuple[float, float],
                 search_min_face: dict[str, int], **opts):
        self.inner = inner
        self.face_range = face_range
        self.default_score_threshold = inner.default_score_threshold
        self.sensitivity_thresholds = dict(inner.sensitivity_thresholds)
        self.default_margin = inner.default_margin
        self.has_landmarks = inner.has_landmarks
        self.landmark_names = inner.landmark_names
        self._search = search_min_face
        super().__init__(**opts)
        inner.score_threshold = min(inner.score_threshold, self.score_threshold)

    def levels(self, width: int, height: int) -> list[tuple[int, int]]:
        """(tile side, overlap) per level, finest first; the last tile covers the image."""
        a, _ = self.face_range
        side = max(width, height)
        smallest = self.requested_min_face or self._search[self.sensitivity]
        tile = max(smallest / a, math.sqrt(width * height / MAX_TILES))
        out = []
        while tile < side:
            overlap = min(int(math.ceil(a * LEVEL_RATIO * tile * 1.25)), int(tile // 2))
            out.append((int(round(tile)), overlap))
            tile *= LEVEL_RATIO
        out.append((side, 0))
        return out

    def min_face_px(self, width: int, height: int) -> int:
        first = self.levels(width, height)[0][0]
        return max(self.min_face_size, int(math.ceil(first * self.face_range[0])))

    def _candidates(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        found: list[Detection] = []
        for tile, overlap in self.levels(w, h):
            for x, y, tw, th in tiles(w, h, tile, overlap):
                for d in self.inner._candidates(image[y:y + th, x:x + tw]):
                    bx, by, bw, bh = d.box
                    found.append(Detection(
                        box=(bx + x, by + y, bw, bh), score=d.score,
                        landmarks=tuple((px + x, py + y) for px, py in d.landmarks)))
        if not found:
            return []
        boxes = np.array([[d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]]
                          for d in found], float)
        keep = nms(boxes, np.array([d.score for d in found]), NMS_IOU)
        return [found[i] for i in keep]
