"""MediaPipe BlazeFace, run by OpenCV's TFLite importer: a modern DNN detector, fully offline.

The two ``.tflite`` files in ``ekspresi/assets/detectors`` are Google's MediaPipe face
detection models (Apache-2.0, see the licence file there). ``short`` (128x128 input) is for
faces that fill a good part of the frame (webcams, portraits); it is fully convolutional, so
running it also at a larger input (``input_sizes=(128, 256)``) finds faces half as large
relative to the frame; candidates of all sizes are merged by one suppression step. ``full``
(192x192 only) is MediaPipe's model for faces a few metres away. The network outputs, per
anchor, a score and a box plus six keypoints relative to that anchor; decoding follows
MediaPipe's own graph (SsdAnchorsCalculator, TensorsToDetectionsCalculator, weighted
non-maximum suppression).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ekspresi.detect.base import Detector
from ekspresi.detect.types import Detection
from ekspresi.errors import ModelError

MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "detectors"
#: Candidates below this score are never reported, not even with ``return_all``.
CANDIDATE_FLOOR = 0.1
NMS_IOU = 0.3


@dataclass(frozen=True)
class _Variant:
    file: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int   # 2: aspect ratio 1 + the interpolated scale; 1: only ratio 1
    score_threshold: float   # MediaPipe's own default for this model
VARIANTS = {
    "short": _Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": _Variant("face_detection_full_range.tflite", 192, (4,), 1, 0.6),
}

#: Calibration to FER2013's framing per (variant, input size), measured on 400 FER2013 test
#: faces (docs/detectors.md): BlazeFace boxes sit lower (brows to chin) than FER2013 crops,
#: so boxes are moved up by ``shift_up`` x their height, and crops get ``margin`` per side.
#: Other input sizes use the nearest calibrated one.
CALIBRATION: dict[tuple[str, int], tuple[float, float]] = {
    ("short", 128): (0.10, 0.10),
    ("short", 256): (0.071, 0.12),
    ("full", 192): (0.045, 0.075),
}

#: Smallest face found, as a fraction of the letterboxed square's side, per (variant,
#: largest input size): faces of ~73 px in a 640x480 frame were found and ~44 px missed by
#: the 128+256 model, ~90 px is the limit at 128 alone (docs/detectors.md).
MIN_FACE_FRACTION = {("short", 128): 0.14, ("short", 256): 0.11, ("full", 192): 0.1}


def _anchors(v: _Variant) -> np.ndarray:
    """Anchor centres (A, 2) in 0..1, in the network's output order. Layers sharing a
    stride share a feature map, so their anchors are emitted together per cell."""
    centres = []
    i = 0
    while i < len(v.strides):
        stride, n = v.strides[i], 0
        while i < len(v.strides) and v.strides[i] == stride:
            n += v.anchors_per_layer
            i += 1
        side = int(np.ceil(v.size / stride))
        ys, xs = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side,
                             indexing="ij")
        cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell, n, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: overlapping boxes are averaged (weighted by score)
    instead of dropped, which makes boxes steadier from frame to frame."""
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    x0, y0, x1, y1 = boxes.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        iw = np.clip(np.minimum(x1[i], x1) - np.maximum(x0[i], x0), 0, None)
        ih = np.clip(np.minimum(y1[i], y1) - np.maximum(y0[i], y0), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        group = alive & (iou > NMS_IOU)
        group[i] = True
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(), (points[group] * w).sum(0) / w.sum(),
                    float(scores[i])))
        alive &= ~group
    return out


class BlazeFaceDetector(Detector):
    """BlazeFace. Landmarks: the person's right eye, left eye, nose tip, mouth centre, right
    ear tragion, left ear tragion (so the right eye is on the image's left side). Boxes are
    moved up slightly to match FER2013's framing (see :data:`CALIBRATION`)."""

    has_landmarks = True
    landmark_names = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear",
                      "left_ear")

    def __init__(self, variant: str = "short", *, input_sizes: tuple[int, ...] | None = None,
                 thresholds: dict[str, float] | None = None, **opts):
        if variant not in VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}; use one of "
                             f"{sorted(VARIANTS)}")
        self._v = VARIANTS[variant]
        sizes = tuple(input_sizes or (self._v.size,))
        if sizes != (self._v.size,) and (variant != "short" or any(n % 16 for n in sizes)):
            raise ValueError("other input sizes apply to the short-range model only and must "
                             f"be multiples of 16, got {sizes}")
        self.name = f"blazeface-{variant}-{'+'.join(map(str, sizes))}"
        self.default_score_threshold = self._v.score_threshold
        self.sensitivity_thresholds = dict(thresholds or {})
        # the smallest face found, as a fraction of the letterboxed square's side
        self._min_fraction = MIN_FACE_FRACTION.get((variant, max(sizes)),
                                                   0.11 * 256 / max(sizes))
        # per input size: (anchors, shift_up); the crop margin averages the sizes' margins
        self._scales = []
        margins = []
        for n in sizes:
            shift, margin = min((abs(size - n), cal) for (var, size), cal in CALIBRATION.items()
                                if var == variant)[1]
            self._scales.append((n, _anchors(dataclasses.replace(self._v, size=n)), shift))
            margins.append(margin)
        self.default_margin = float(np.mean(margins))
        super().__init__(**opts)
        model = MODEL_DIR / self._v.file
        try:
            self._net = cv2.dnn.readNetFromTFLite(str(model))
        except cv2.error as exc:
            raise ModelError(f"{model}: cannot load the BlazeFace model ({exc})") from None
        self._outputs = self._net.getUnconnectedOutLayersNames()

    def min_face_px(self, width: int, height: int) -> int:
        # the whole image is letterboxed into the network's square input
        return max(self.min_face_size, int(np.ceil(self._min_fraction * max(width, height))))

    def _raw(self, square: np.ndarray, size: int, anchors: np.ndarray, shift_up: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x0, y0, x1, y1) and keypoints in the letterboxed unit square, and scores,
        of every anchor above the candidate floor at one input size."""
        blob = cv2.dnn.blobFromImage(square, 1 / 127.5, (size, size), (127.5, 127.5, 127.5),
                                     swapRB=True)
        self._net.setInput(blob)
        scores_raw, regress = self._net.forward(self._outputs)
        logits = np.clip(scores_raw.reshape(-1).astype(np.float64), -100, 100)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= min(CANDIDATE_FLOOR, self.score_threshold)
        reg = regress.reshape(-1, 16)[keep] / size
        anchors, scores = anchors[keep], scores[keep]
        cx, cy = reg[:, 0] + anchors[:, 0], reg[:, 1] + anchors[:, 1]
        bw, bh = reg[:, 2], reg[:, 3]
        cy = cy - shift_up * bh
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        points = reg[:, 4:16] + np.tile(anchors, 6)
        return boxes, points, scores

    def _candidates(self, image: np.ndarray) -> list[Detection]:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        h, w = bgr.shape[:2]
        side = max(h, w)
        # Letterbox to a square (as MediaPipe does) so faces keep their aspect ratio.
        top, left = (side - h) // 2, (side - w) // 2
        square = cv2.copyMakeBorder(bgr, top, side - h - top, left, side - w - left,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        parts = [self._raw(square, *scale) for scale in self._scales]
        boxes, points, scores = (np.concatenate(p) for p in zip(*parts))
        found = []
        for box, pts, score in _weighted_nms(boxes, points, scores):
            # From the letterboxed unit square back to image pixels.
            box = box * side - np.array([left, top, left, top])
            pts = pts.reshape(6, 2) * side - np.array([left, top])
            d = Detection.clipped(*box, w, h, score, pts)
            if d is not None:
                found.append(d)
        return found
