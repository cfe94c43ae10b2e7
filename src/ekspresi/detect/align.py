"""Eye alignment: rotate a face so that its eyes are level before it is classified.

FER2013 faces are roughly upright; a tilted head in a photo is a different input for the
classifier than the same face upright. When the detector gives eye landmarks we rotate the
crop around the box centre in ONE affine warp at the source resolution, then shrink it with
:func:`ekspresi.preprocess.prepare_face` exactly as training does. Faces that are already
level (under :data:`MIN_ANGLE` degrees) take the plain crop path, so their pixels are
bit-identical to the training preprocessing.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ekspresi.detect.types import Detection
from ekspresi.preprocess import crop, prepare_face, to_gray

#: Tilts below this (degrees) are not corrected: the interpolation would cost more than the
#: rotation gains.
MIN_ANGLE = 1.0


def eye_angle(detection: Detection) -> float | None:
    """Angle in degrees of the line from the right eye to the left eye (0 = level;
    positive when the left eye, on the image's right, is lower). ``None`` without landmarks."""
    if len(detection.landmarks) < 2:
        return None
    (rx, ry), (lx, ly) = detection.landmarks[0], detection.landmarks[1]
    if (rx, ry) == (lx, ly):
        return None
    return math.degrees(math.atan2(ly - ry, lx - rx))


def align_crop(image: np.ndarray, detection: Detection, margin: float = 0.0
               ) -> tuple[np.ndarray, float]:
    """uint8 gray crop at the image's own resolution (the box grown by ``margin`` on each
    side, eyes levelled) and the rotation applied in degrees (0 when none was needed)."""
    gray = to_gray(image)
    angle = eye_angle(detection)
    if angle is None or abs(angle) < MIN_ANGLE:
        return crop(gray, detection.box, margin), 0.0
    x, y, w, h = (int(round(v)) for v in detection.box)
    mx, my = int(round(w * margin)), int(round(h * margin))
    rot = cv2.getRotationMatrix2D((x + w / 2.0, y + h / 2.0), angle, 1.0)
    rot[0, 2] -= x - mx   # move the crop's top-left corner to the origin
    rot[1, 2] -= y - my
    out = cv2.warpAffine(gray, rot, (w + 2 * mx, h + 2 * my), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out, angle


def align_face(image: np.ndarray, detection: Detection, size: int,
               margin: float = 0.0) -> np.ndarray:
    """uint8 gray (size, size) face: the detection's box grown by ``margin`` on each side,
    rotated so the eyes are level when landmarks exist. Ready for the classifier; for a
    level face it equals ``prepare_face(image, size, detection.box, margin)``."""
    return prepare_face(align_crop(image, detection, margin)[0], size)
