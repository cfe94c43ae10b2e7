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

from ekspresi.detect import SENSITIVITIES
from ekspresi.detect.types import Detection
from ekspresi.errors import ConfigError
from ekspresi.imaging import array_to_uint8

#: Faces smaller than this are not reported unless ``min_face_size`` says otherwise.
DEFAULT_MIN_FACE = 20


class Detector(ABC):
    """Finds faces in a uint8 gray (H, W) or BGR (H, W, 3) image.

    ``score_threshold`` is on the backend's own scale (a probability for DNN backends, a
    vote count for Haar); ``margin`` is the fraction of the box side added on each side when
    the face is cropped for the classifier, chosen per backend so that crops are framed like
    the FER2013 training faces (see docs/detectors.md). ``sensitivity`` (one of
    :data:`SENSITIVITIES`) picks the default threshold (and, for backends that look at
    several scales, the smallest face searched for); an explicit ``score_threshold`` wins.
    Instances are safe to share between threads: OpenCV's networks keep per-call state, so
    calls are serialised by a lock.
    """

    name: str = ""
    #: Defaults a backend overrides; ``None`` in the constructor means "use these".
    default_score_threshold: float = 0.5
    default_margin: float = 0.0
    #: Default score threshold per sensitivity level; a level missing here uses
    #: ``default_score_threshold``.
    sensitivity_thresholds: dict[str, float] = {}
    #: True when detections carry eye landmarks (alignment possible), and their names.
    has_landmarks: bool = False
    landmark_names: tuple[str, ...] = ()

    def __init__(self, *, min_face_size: int | None = None,
                 score_threshold: float | None = None,
                 max_faces: int | None = None, margin: float | None = None,
                 sensitivity: str = "normal"):
        if sensitivity not in SENSITIVITIES:
            raise ConfigError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}, "
                              f"got {sensitivity!r}")
        if min_face_size is not None and min_face_size < 1:
            raise ConfigError(f"min_face_size must be >= 1 pixel, got {min_face_size}")
        if max_faces is not None and max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1 or None, got {max_faces}")
        #: as given (``None``: not set; multi-scale backends then search down to their
        #: sensitivity's smallest face, and report faces down to DEFAULT_MIN_FACE)
        self.requested_min_face = None if min_face_size is None else int(min_face_size)
        self.min_face_size = self.requested_min_face or DEFAULT_MIN_FACE
        self.sensitivity = sensitivity
        default = self.sensitivity_thresholds.get(sensitivity, self.default_score_threshold)
        self.score_threshold = float(default if score_threshold is None else score_threshold)
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

    def min_face_px(self, width: int, height: int) -> int:
        """The smallest face (box side, pixels) this detector, as configured, can report in
        a ``width`` x ``height`` image. Backends with a fixed input size override this:
        for them the limit grows with the image."""
        return self.min_face_size

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(min_face_size={self.min_face_size}, "
                f"score_threshold={self.score_threshold}, max_faces={self.max_faces}, "
                f"margin={self.margin}, sensitivity={self.sensitivity!r})")
