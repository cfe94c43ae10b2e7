"""RetinaFace (MobileNet-0.25), run by ONNX Runtime at the resolution the faces need.

The model file ``ekspresi/assets/detectors/retinaface_mobilenet0.25.onnx`` (1.7 MB, MIT; see
the README there) is fully convolutional: it takes any input size and finds faces of about
30 to 500 *input* pixels, with five landmarks. So instead of shrinking the whole photo into a
fixed small input (what makes BlazeFace miss ordinary faces in large photos), detection
works in three steps (measured in docs/detectors.md):

1. **Passes.** The image is resized so that the smallest face looked for
   (:data:`SEARCH_MIN_FACE` per ``sensitivity``, or ``min_face_size``) becomes
   :data:`SMALLEST_INPUT_FACE` working pixels (at most
   :data:`~ekspresi.detect.scales.MAX_WORK_PIXELS` pixels), then :data:`PYRAMID_STEP` times
   smaller again and again until a face as large as the image's short side is in range.
   Passes larger than about :data:`TILE_SIDE` squared are cut into overlapping tiles, which
   bounds the memory of one network run.
2. **Second look.** Candidates above :data:`VERIFY_FLOOR` but below :data:`VERIFY_SURE` are
   cut out of the full-resolution image with context, resized so the face is ~50 px, and
   scored again in one batch: small real faces score higher there, textures lower (on
   the benchmark's face-free images: 9 false boxes without the veto, 1 with it). A
   likely face that this look would veto gets a closer one first
   (:data:`VERIFY_CLOSE_CONTEXT`): a face cut at the hairline and chin (a collage, a
   screenshot) is boxed larger than its pixels, so at VERIFY_CONTEXT it shrinks to ~35 px
   and scores ~0.05-0.6 (issue 22's missed 57 px face); up close it scores ~0.9-0.99. Only
   candidates the first look accepted and the second would drop get it, and it keeps
   them only when it scores above the detector's threshold and VERIFY_CLOSE_MIN itself
   (textures that pass the first look score 0.01-0.7 up close).
3. **One suppression** (:func:`ekspresi.detect.scales.nms`) over every pass and tile.

Boxes are made square (side = mean of width and height) and moved up by ``shift_up`` to be
framed like FER2013's crops. Decoding follows the reference implementation
(biubug6/Pytorch_Retinaface): anchors of 16/32, 64/128, 256/512 px at strides 8, 16, 32;
box variances 0.1 and 0.2.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from ekspresi.detect.base import Detector
from ekspresi.detect.scales import Pass, nms, pyramid_scale, tiles
from ekspresi.detect.types import Detection
from ekspresi.onnxrt import open_session

MODEL_FILE = (Path(__file__).resolve().parent.parent / "assets" / "detectors"
              / "retinaface_mobilenet0.25.onnx")
STRIDES = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
VARIANCES = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
#: Faces of this many working pixels score reliably (at 16-25 px they score ~0.3-0.7).
SMALLEST_INPUT_FACE = 32.0
#: Smallest face searched for, per sensitivity (image pixels); ``min_face_size`` replaces
#: it (larger = faster).
SEARCH_MIN_FACE = {"low": 64, "normal": 32, "high": 20}
#: Faces up to this many working pixels are found reliably (the largest anchor is 512).
LARGEST_INPUT_FACE = 480
#: Each coarser pass is this many times smaller than the previous one.
PYRAMID_STEP = 4.0
#: Passes larger than ~1.5 x this squared are cut into tiles of this side (working px).
TILE_SIDE = 1280
#: Second look: candidates scoring in [VERIFY_FLOOR, VERIFY_SURE) are re-scored on a
#: VERIFY_SIZE px square holding VERIFY_CONTEXT x their side (face ~51 px); at most
#: VERIFY_MAX per image (best first; the rest keep their first score). Those that scored
#: VERIFY_LIKELY or more keep their first score unless the second look gives under
#: VERIFY_VETO (blurred texture scores 0.95-0.99 at coarse scales, and 0 up close).
VERIFY_FLOOR = 0.3
VERIFY_SURE = 0.99
VERIFY_LIKELY = 0.95
VERIFY_VETO = 0.5
VERIFY_SIZE = 128
VERIFY_CONTEXT = 2.5
#: Context of the closer look given to a candidate that the first look accepted (score
#: above the threshold) before the second look drops it (face ~80 px).
VERIFY_CLOSE_CONTEXT = 1.6
#: The least the closer look must score to keep a candidate, whatever the sensitivity
#: (textures that pass the first look score 0.01-0.7 up close; at `high`, whose threshold is
#: 0.6, a lower bar added 5 false boxes in the scenes and 4 on face-free images).
VERIFY_CLOSE_MIN = 0.8
#: Below VERIFY_CLOSE_MIN's threshold (`high`: 0.6), the closer look is given only to
#: candidates the second look all but dismissed (under this score), which is what it does
#: to a tight-cropped face (shrunk to ~35 px: 0.03-0.37 in benchmarks/detection.py); the
#: textures that `high`'s finer passes propose score 0.38-0.55 there and 0.81-0.97 up close
#: (5 false boxes in the benchmark's scenes and face-free images, issue 22).
VERIFY_CLOSE_SECOND_MAX = 0.375
VERIFY_MAX = 96
NMS_IOU = 0.4


def _threads() -> int:
    env = os.environ.get("EKSPRESI_DETECTOR_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def _resized(bgr: np.ndarray, scale: float) -> np.ndarray:
    """``bgr`` resized by ``scale`` (area filter when shrinking); itself when the size holds."""
    h, w = bgr.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if (sw, sh) == (w, h):
        return bgr
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(bgr, (sw, sh), interpolation=interp)


def _decode(anchors: np.ndarray, loc: np.ndarray, landm: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x0, y0, x1, y1) and landmarks (N, 10) in input pixels from anchors
    (cx, cy, w, h) and the network's regressions (the reference decoding)."""
    v0, v1 = VARIANCES
    centre = anchors[:, :2] + loc[:, :2] * v0 * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * v1)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    points = np.tile(anchors[:, :2], 5) + landm * v0 * np.tile(anchors[:, 2:], 5)
    return boxes, points


class RetinaFaceDetector(Detector):
    """RetinaFace. Landmarks: the person's right eye (image left), left eye, nose tip, right
    and left mouth corners. The network's boxes (mid-forehead to chin, taller than wide) are
    made square and moved up slightly to match FER2013's framing (``shift_up``,
    docs/detectors.md). ``threads``: ONNX Runtime threads (default 2, or
    ``$EKSPRESI_DETECTOR_THREADS``); calls are serialised by the base class's lock."""

    name = "retinaface"
    has_landmarks = True
    landmark_names = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")
    default_score_threshold = 0.8
    sensitivity_thresholds = {"low": 0.9, "normal": 0.8, "high": 0.6}
    default_margin = 0.05
    #: fraction of its side the square box is moved up (FER2013 framing, docs/detectors.md)
    shift_up = 0.02

    def __init__(self, *, threads: int | None = None, **opts):
        super().__init__(**opts)
        # no busy-waiting between operators: on a shared 2-core machine (and in the web
        # server next to the classifier) spinning threads only steal CPU from others
        self._session = open_session(MODEL_FILE, threads=threads or _threads(), spin=False,
                                     what="the RetinaFace model")
        self._anchor_cache: dict[tuple[int, int], np.ndarray] = {}

    # -- which resolutions ----------------------------------------------------------------
    def search_min_face(self) -> float:
        """The smallest face looked for: ``min_face_size`` when given (lower = slower),
        else the sensitivity's."""
        return float(self.requested_min_face or SEARCH_MIN_FACE[self.sensitivity])

    def passes(self, width: int, height: int) -> list[Pass]:
        """Finest first: the scale at which the smallest searched face is findable, then
        every PYRAMID_STEP times smaller until a face as large as the image's short side
        is within the network's range. Passes above TILE_SIDE^2 pixels are tiled; tiles
        overlap by the largest face that pass alone must find."""
        s = pyramid_scale(width, height, self.search_min_face(), SMALLEST_INPUT_FACE)
        out = []
        while True:
            last = s * min(width, height) <= LARGEST_INPUT_FACE
            tiled = width * height * s * s > 1.5 * TILE_SIDE ** 2
            overlap = (int(min(LARGEST_INPUT_FACE, s * min(width, height))) if last
                       else int(PYRAMID_STEP * SMALLEST_INPUT_FACE * 1.25))
            out.append(Pass(s, TILE_SIDE if tiled else None, overlap if tiled else 0))
            if last:
                return out
            s /= PYRAMID_STEP

    def min_face_px(self, width: int, height: int) -> int:
        fine = self.passes(width, height)[0].scale
        return max(self.min_face_size, int(math.ceil(SMALLEST_INPUT_FACE / fine)))

    # -- the network ----------------------------------------------------------------------
    def _anchors(self, h: int, w: int) -> np.ndarray:
        key = (h, w)
        if key not in self._anchor_cache:
            parts = []
            for stride, sizes in STRIDES:
                ny, nx = math.ceil(h / stride), math.ceil(w / stride)
                ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
                centres = np.stack([(xs.ravel() + 0.5) * stride,
                                    (ys.ravel() + 0.5) * stride], axis=1)
                for_cell = [np.column_stack([centres, np.full((len(centres), 2), s)])
                            for s in sizes]
                parts.append(np.stack(for_cell, axis=1).reshape(-1, 4))
            if len(self._anchor_cache) > 16:
                self._anchor_cache.clear()
            self._anchor_cache[key] = np.concatenate(parts).astype(np.float32)
        return self._anchor_cache[key]

    def _run(self, bgr: np.ndarray, scale: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x0, y0, x1, y1) and landmarks (N, 10) in image pixels, and scores, of every
        anchor above the candidate floor, with the image resized by ``scale``."""
        small = _resized(bgr, scale)
        sh, sw = small.shape[:2]
        # pad to multiples of 32 (the feature pyramid's coarsest stride) with the mean
        # colour, which the network sees as zero
        ph, pw = max(32, math.ceil(sh / 32) * 32), max(32, math.ceil(sw / 32) * 32)
        blob = np.zeros((ph, pw, 3), np.float32)
        blob[:sh, :sw] = small.astype(np.float32) - MEAN_BGR
        blob = blob.transpose(2, 0, 1)[None]
        loc, conf, landm = self._session.run(None, {"input": blob})
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= min(VERIFY_FLOOR, self.score_threshold))
        anchors = self._anchors(ph, pw)[keep]
        boxes, points = _decode(anchors, loc[0, keep], landm[0, keep])
        return boxes / scale, points / scale, scores[keep]

    def _verify(self, bgr: np.ndarray, boxes: np.ndarray, context: float = VERIFY_CONTEXT
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Look again at each candidate: a square of ``context`` x its side around it,
        from the full-resolution image, resized to VERIFY_SIZE, all run as one batch.
        Returns the best box, landmarks and score found near each candidate's centre
        (score 0 when none)."""
        n = len(boxes)
        size = VERIFY_SIZE
        batch = np.empty((n, size, size, 3), np.float32)
        geo = np.empty((n, 3), np.float64)   # x0, y0, scale of each crop
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            side = max(x1 - x0, y1 - y0) * context
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            scale = size / side
            m = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]])
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            batch[k] = cv2.warpAffine(bgr, m, (size, size), flags=interp,
                                      borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=tuple(float(v) for v in MEAN_BGR))
            geo[k] = (cx - size / 2 / scale, cy - size / 2 / scale, scale)
        batch -= MEAN_BGR
        loc, conf, landm = self._session.run(None, {"input": batch.transpose(0, 3, 1, 2)})
        anchors = self._anchors(size, size)
        out_b, out_p, out_s = np.zeros((n, 4)), np.zeros((n, 10)), np.zeros(n)
        for k in range(n):
            sc = conf[k, :, 1]
            centre = anchors[:, :2] + loc[k, :, :2] * VARIANCES[0] * anchors[:, 2:]
            near = np.all(np.abs(centre - size / 2) < size / context / 2, axis=1)
            if not near.any():
                continue
            i = int(np.flatnonzero(near)[np.argmax(sc[near])])
            box, pts = _decode(anchors[i:i + 1], loc[k, i:i + 1], landm[k, i:i + 1])
            ox, oy, scale = geo[k]
            out_b[k] = box[0] / scale + (ox, oy, ox, oy)
            out_p[k] = pts[0] / scale + np.tile((ox, oy), 5)
            out_s[k] = sc[i]
        return out_b, out_p, out_s

    def _pass(self, bgr: np.ndarray, p: Pass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if p.tile is None:
            return self._run(bgr, p.scale)
        small = _resized(bgr, p.scale)
        sh, sw = small.shape[:2]
        parts = []
        for x, y, tw, th in tiles(sw, sh, p.tile, p.overlap):
            b, pts, sc = self._run(small[y:y + th, x:x + tw], 1.0)
            parts.append((b + (x, y, x, y), pts + np.tile((x, y), 5), sc))
        b, pts, sc = (np.concatenate(q) for q in zip(*parts))
        return b / p.scale, pts / p.scale, sc

    def _candidates(self, image: np.ndarray) -> list[Detection]:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        h, w = bgr.shape[:2]
        parts = [self._pass(bgr, p) for p in self.passes(w, h)]
        boxes, points, scores = (np.concatenate(p) for p in zip(*parts))
        if len(boxes):
            first = nms(boxes, scores, NMS_IOU)
            unsure = first[scores[first] < VERIFY_SURE][:VERIFY_MAX]
            if len(unsure):
                vb, vp, vs = self._verify(bgr, boxes[unsure])
                # a closer look for a candidate the first look accepted and the second
                # would drop: tight-cropped faces (hairline to chin) are found up close
                first_s = scores[unsure]
                dropped = np.where(first_s >= VERIFY_LIKELY, vs < VERIFY_VETO,
                                   vs < self.score_threshold)
                close = dropped & (first_s >= self.score_threshold)
                if self.score_threshold < VERIFY_CLOSE_MIN:
                    close &= vs < VERIFY_CLOSE_SECOND_MAX
                vetoed = np.flatnonzero(close)
                if len(vetoed):
                    cb, cp, cs = self._verify(bgr, boxes[unsure[vetoed]],
                                              VERIFY_CLOSE_CONTEXT)
                    # as sure as an accepted first look, and never below CLOSE_MIN
                    better = cs >= max(self.score_threshold, VERIFY_CLOSE_MIN)
                    vb[vetoed[better]], vp[vetoed[better]] = cb[better], cp[better]
                    vs[vetoed[better]] = cs[better]
                # confident first looks keep their box and score unless the second look
                # finds no face there (a veto); the others take the second look's
                likely = (scores[unsure] >= VERIFY_LIKELY) & (vs >= VERIFY_VETO)
                take = unsure[~likely]
                boxes[take], points[take], scores[take] = vb[~likely], vp[~likely], vs[~likely]
            boxes, points, scores = boxes[first], points[first], scores[first]
        found = []
        for i in nms(boxes, scores, NMS_IOU):
            # square, moved up: FER2013's framing (docs/detectors.md)
            side = (boxes[i, 2] - boxes[i, 0] + boxes[i, 3] - boxes[i, 1]) / 2
            cx = (boxes[i, 0] + boxes[i, 2]) / 2
            cy = (boxes[i, 1] + boxes[i, 3]) / 2 - self.shift_up * side
            d = Detection.clipped(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2,
                                  w, h, scores[i], points[i].reshape(5, 2))
            if d is not None:
                found.append(d)
        return found


__all__ = ["RetinaFaceDetector"]
