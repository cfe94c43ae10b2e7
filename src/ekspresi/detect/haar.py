"""OpenCV's Viola-Jones Haar cascade: what the source papers' apps used.

Kept as a baseline and for comparison; it ships inside opencv-python (``cv2.data``), so it
needs no file of ours. Its "score" is the number of raw detection windows OpenCV merged
into the box (``detectMultiScale2``'s neighbour count): the default threshold of 4 keeps
exactly what OpenCV's default ``minNeighbors=3`` keeps.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ekspresi.detect.base import Detector
from ekspresi.detect.types import Detection
from ekspresi.errors import ModelError
from ekspresi.preprocess import to_gray

CASCADE_FILE = "haarcascade_frontalface_default.xml"


class HaarDetector(Detector):
    name = "haar"
    default_score_threshold = 4.0
    # Measured on 400 FER2013 test faces (docs/detectors.md): FER2013's 48x48 frame is the
    # Haar box plus about 3% on each side.
    default_margin = 0.03
    sensitivity_thresholds = {"low": 6.0, "normal": 4.0, "high": 3.0}
    #: the cascade's window: nothing smaller is found
    WINDOW = 24

    def __init__(self, **opts):
        super().__init__(**opts)
        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"{path}: OpenCV's Haar cascade could not be loaded "
                             "(is opencv-python-headless<5 installed?)")

    def min_face_px(self, width: int, height: int) -> int:
        return max(self.min_face_size, self.WINDOW)

    def _candidates(self, image: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(to_gray(image))
        # minNeighbors=1 keeps weak clusters as candidates; their vote count is the score.
        small = max(8, min(self.min_face_size, 24))
        boxes, votes = self._cascade.detectMultiScale2(
            gray, scaleFactor=1.1, minNeighbors=1, minSize=(small, small))
        return [Detection(box=tuple(int(v) for v in b), score=float(n))
                for b, n in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(votes))]
