"""The one face-detector interface every backend implements.

Backends only turn an image into raw candidates (:meth:`Detector._candidates`); the
options users set (minimum face size, score threshold, maximum number of faces) are applied
here, once, so that they mean the same thing for every backend. The unfiltered candidates
stay available (``return_all=True``) for the web app's step-by-step page.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np

from ekspresi.imaging import array_to_uint8
from ekspresi.infer.types import Detection


class Detector(ABC):
    """Finds faces in a uint8 gray (H, W) or BGR (H, W, 3) image.

    ``score_threshold`` is on the backend's own scale (a probability for DNN backends, a
    vote count for Haar); ``margin`` is the fraction of the box side added on each side when
    the face is cropped for the classifier, chosen per backend so that crops are framed like
    the FER2013 training faces (see docs/detectors.md). Instances are safe to share between
    threads: OpenCV's networks keep per-call state, so calls are serialised by a lock.
    """

    name: str = ""
    #: Defaults a backend overrides; ``None`` in the constructor means "use these".
    default_score_threshold: float = 0.5
    default_margin: float = 0.0
    #: True when detections carry eye landmarks (alignment possible), and their names.
    has_landmarks: bool = False
    landmark_names: tuple[str, ...] = ()

    def __init__(self, *, min_face_size: int = 20, score_threshold: float | None = None,
                 max_faces: int | None = None, margin: float | None = None):
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1 pixel, got {min_face_size}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces}")
        self.min_face_size = int(min_face_size)
        self.score_threshold = float(self.default_score_threshold if score_threshold is None
                                     else score_threshold)
        self.max_faces = max_faces
        self.margin = float(self.default_margin if margin is None else margin)
        self._lock = threading.Lock()

    @abstractmethod
    def _candidates(self, image: np.ndarray) -> list[Detection]:
        """Every candidate the backend finds (before the user's options), any order."""

    def detect(self, image: np.ndarray, return_all: bool = False) -> list[Detection]:
        """Faces sorted by score, best first. ``return_all`` skips the score threshold,
        minimum size and maximum count, so callers can show what was rejected."""
        image = array_to_uint8(np.asarray(image))
        with self._lock:
            found = self._candidates(image)
        found = sorted(found, key=lambda d: d.score, reverse=True)
        return found if return_all else self.select(found)

    def select(self, candidates: list[Detection]) -> list[Detection]:
        """Apply the user's options to candidates sorted by score."""
        kept = [d for d in candidates if d.score >= self.score_threshold
                and min(d.box[2], d.box[3]) >= self.min_face_size]
        return kept[: self.max_faces] if self.max_faces else kept

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(min_face_size={self.min_face_size}, "
                f"score_threshold={self.score_threshold}, max_faces={self.max_faces}, "
                f"margin={self.margin})")
