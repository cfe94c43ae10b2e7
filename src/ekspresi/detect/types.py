"""What a detector returns; it lives with the detectors so that nothing below ``infer``
needs the inference layer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    """One face candidate from a detector. ``landmarks`` are (x, y) points in image pixels,
    empty when the backend gives none. The first three are always the person's right eye
    (on the image's left), left eye and nose tip; the rest depend on the backend
    (``Detector.landmark_names``; BlazeFace: mouth centre, right ear, left ear)."""

    box: tuple[int, int, int, int]          # x, y, w, h
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()

    @classmethod
    def clipped(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int,
                score: float, landmarks: Iterable[tuple[float, float]] = ()
                ) -> Detection | None:
        """The box from (x0, y0) to (x1, y1), in floats that may lie outside the image, cut
        to a ``width`` x ``height`` image and rounded to whole pixels; ``None`` when less
        than a pixel of it is inside."""
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        x1, y1 = min(x1, width), min(y1, height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return cls(box=(int(round(x0)), int(round(y0)), int(round(x1 - x0)),
                        int(round(y1 - y0))),
                   score=float(score), landmarks=tuple((float(x), float(y)) for x, y in landmarks))
