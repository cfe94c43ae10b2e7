"""``Recognizer``: photo -> faces -> expressions, the engine behind the CLI, API and web app.

One object holds a detector and a classifier and can be shared between threads (the
detector serialises its own calls; ONNX Runtime sessions are thread-safe), so a server
builds it once. Every input form goes through :func:`ekspresi.imaging.read_image`, every
face through :func:`ekspresi.detect.align_face` and therefore through the same
:func:`ekspresi.preprocess.prepare_face` that made the training data.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ekspresi.detect import (
    Detector,
    align_crop,
    canonical_detector,
    get_detector,
    reading_order,
)
from ekspresi.detect.types import Detection
from ekspresi.imaging import ImageSource, read_image
from ekspresi.infer.bundle import Bundle
from ekspresi.infer.classifier import Classifier
from ekspresi.infer.results import ImageResult, Trace
from ekspresi.infer.types import Face
from ekspresi.preprocess import crop, prepare_face, to_gray


class Recognizer:
    """``Recognizer().analyze(image_or_path)`` -> :class:`ImageResult`, the :class:`Face`
    list in reading order (rows top to bottom, left to right), numbered from 1.

    ``model``: a :class:`Bundle`, a :class:`Classifier` or any MODEL argument (a bundle or
    run directory, a bundled model's name; ``None`` = ``default``, see
    :mod:`ekspresi.infer.resolve`). ``detector``: a name (``default``, ``retinaface``, ``haar``,
    ``blazeface``, ``blazeface-fast``, ``blazeface-full``, ``blazeface-tiled``) or a
    :class:`Detector`. Detector options (``min_face_size``, ``score_threshold``,
    ``max_faces``, ``margin``, ``sensitivity``) are passed through; ``margin=None`` uses the
    backend's calibrated crop margin. ``align`` levels the eyes when the detector gives
    landmarks. ``analyze`` and ``trace`` also take ``detector`` / ``sensitivity`` per call
    (the web API's query parameters), built with the same other options.
    """

    def __init__(self, model: str | Path | Bundle | Classifier | None = None,
                 detector: str | Detector = "default", *, threads: int | None = None,
                 min_face_size: int | None = None, score_threshold: float | None = None,
                 max_faces: int | None = None, margin: float | None = None,
                 sensitivity: str = "normal", align: bool = True):
        if isinstance(model, Classifier):
            self.classifier = model
        else:
            self.classifier = Classifier(model, threads=threads)
        self._detector_opts = {"min_face_size": min_face_size, "score_threshold": score_threshold,
                               "max_faces": max_faces, "margin": margin}
        if isinstance(detector, Detector):
            self.detector = detector
        else:
            self.detector = get_detector(detector, sensitivity=sensitivity,
                                         **self._detector_opts)
        self._detector_name = canonical_detector(detector) if isinstance(detector, str) else None
        self._others: dict[tuple[str, str], Detector] = {}
        self._others_lock = threading.Lock()
        self.align = align

    def detector_for(self, detector: str | None = None, sensitivity: str | None = None
                     ) -> Detector:
        """The recogniser's detector, or (cached) another backend and/or sensitivity with
        the same other options. Unknown names raise :class:`ConfigError`, unknown
        sensitivities :class:`ValueError`."""
        detector = None if detector is None else canonical_detector(detector)
        same_name = detector is None or detector == self._detector_name
        same_level = sensitivity is None or sensitivity == self.detector.sensitivity
        if same_name and same_level:
            return self.detector
        name = detector or self._detector_name
        if name is None:
            raise ValueError("this Recognizer was given a Detector object; pass a detector "
                             "name to change the sensitivity")
        key = (name, sensitivity or self.detector.sensitivity)
        with self._others_lock:
            if key not in self._others:
                if len(self._others) >= 16:
                    self._others.clear()
                self._others[key] = get_detector(name, sensitivity=key[1],
                                                 **self._detector_opts)
            return self._others[key]

    def min_face_px(self, width: int, height: int, *, detector: str | None = None,
                    sensitivity: str | None = None) -> int:
        """The smallest face (pixels) the detector finds in a ``width`` x ``height`` image:
        what a "no face found" message should state."""
        return self.detector_for(detector, sensitivity).min_face_px(width, height)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    @property
    def size(self) -> int:
        return self.classifier.input_spec.size

    # -- steps ------------------------------------------------------------------------------
    def crop_faces(self, image: np.ndarray, detections: list[Detection],
                   margin: float | None = None
                   ) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
        """Model inputs uint8 (N, size, size), the crops at source resolution, the rotation
        applied to each (degrees). ``margin``: the detector's calibrated one by default."""
        margin = self.detector.margin if margin is None else margin
        if self.align:
            pairs = [align_crop(image, d, margin) for d in detections]
        else:
            gray = to_gray(image)
            pairs = [(crop(gray, d.box, margin), 0.0) for d in detections]
        crops, angles = [c for c, _ in pairs], [a for _, a in pairs]
        faces = [prepare_face(c, self.size) for c in crops]
        batch = np.stack(faces) if faces else np.zeros((0, self.size, self.size), np.uint8)
        return batch, crops, angles

    def classify_faces(self, faces: np.ndarray | list[np.ndarray]) -> list[dict[str, float]]:
        """Class -> probability for already-cropped faces (any size; resized as in training)."""
        proba = self.classifier.predict_proba(faces)
        return [self._scores(p) for p in proba]

    def _scores(self, p: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.classes, p)}

    def analyze(self, source: ImageSource, *, name: str | None = None,
                detector: str | None = None, sensitivity: str | None = None) -> ImageResult:
        """The faces in ``source`` (path, bytes, numpy gray/BGR/BGRA/16-bit array, PIL
        image), in reading order and numbered from 1, as an :class:`ImageResult` (a sequence
        of :class:`Face` that can ``plot()`` and ``save()`` itself). No face gives an empty
        result; an undecodable input raises :class:`BadInputError`. ``detector`` /
        ``sensitivity``: see :meth:`detector_for`."""
        clock = _Clock()
        image = read_image(source, name=name)
        clock.lap("decode")
        det = self.detector_for(detector, sensitivity)
        detections = in_reading_order(det.detect(image))
        clock.lap("detect")
        batch, _, angles = self.crop_faces(image, detections, det.margin)
        proba = self.classifier.predict_proba(batch)
        clock.lap("classify")
        return self._result(image, det, detections, proba, angles, name, clock)

    def _result(self, image: np.ndarray, det: Detector, detections: list[Detection],
                proba: np.ndarray, angles: list[float], name: str | None,
                clock: _Clock) -> ImageResult:
        h, w = image.shape[:2]
        return ImageResult(self.make_faces(detections, proba, angles), width=int(w),
                           height=int(h), file=name, min_face_px=det.min_face_px(w, h),
                           timings_ms=clock.ms, image=image)

    def make_faces(self, detections: list[Detection], proba: np.ndarray,
                   angles: list[float]) -> list[Face]:
        """:class:`Face` objects numbered from 1 for ``detections`` (in reading order), their
        class probabilities and rotations: what :meth:`analyze` returns, and what the Ray
        engine builds from its batched classifier call."""
        return [self._face(d, p, a, n) for n, (d, p, a)
                in enumerate(zip(detections, proba, angles), start=1)]

    def _face(self, det: Detection, p: np.ndarray, angle: float, number: int) -> Face:
        extra = {"rotation": round(angle, 2)} if angle else {}
        return Face(box=tuple(int(v) for v in det.box), detection_score=float(det.score),
                    scores=self._scores(p), landmarks=det.landmarks, number=number,
                    extra=extra)

    def trace(self, source: ImageSource, *, name: str | None = None,
              saliency: bool = True, saliency_max: int | None = None,
              detector: str | None = None, sensitivity: str | None = None) -> Trace:
        """Every intermediate stage (:class:`Trace`), for the web app's step-by-step page.
        ``saliency_max`` caps the faces saliency is computed for (the first ones in reading
        order): each costs dozens of model runs."""
        from ekspresi.infer.saliency import occlusion_saliency

        clock = _Clock()
        image = read_image(source, name=name)
        gray = to_gray(image)
        original = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        clock.lap("decode")
        det = self.detector_for(detector, sensitivity)
        candidates = det.detect(image, return_all=True)
        detections = in_reading_order(det.select(candidates))
        clock.lap("detect")
        batch, crops, angles = self.crop_faces(image, detections, det.margin)
        clock.lap("align")
        proba = self.classifier.predict_proba(batch)
        clock.lap("classify")
        salient = batch if saliency_max is None else batch[:max(0, saliency_max)]
        maps = [occlusion_saliency(self.classifier, f) for f in salient] if saliency else []
        clock.lap("saliency")
        accepted = set(detections)
        # accepted candidates first, in reading order: candidate k is face k everywhere
        ordered = [(d, True) for d in detections] + [(c, False) for c in candidates
                                                     if c not in accepted]
        return Trace(original=original, gray=gray, candidates=ordered, crops=crops,
                     rotations=angles, model_inputs=batch, probabilities=proba,
                     result=self._result(image, det, detections, proba, angles, name, clock),
                     saliency=maps, classes=self.classes, input_spec=self.classifier.input_spec,
                     detector=det.name)

    def __repr__(self) -> str:
        return f"Recognizer({self.classifier!r}, detector={self.detector!r}, align={self.align})"


class _Clock:
    """Milliseconds per stage, for ``timings_ms``."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round((now - self._t) * 1000, 3)
        self._t = now


def in_reading_order(detections: list[Detection]) -> list[Detection]:
    """``detections`` re-ordered into reading order (see :func:`ekspresi.detect.reading_order`)."""
    return [detections[i] for i in reading_order([d.box for d in detections])]
