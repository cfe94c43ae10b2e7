"""What a detector returns; it lives with the detectors so that nothing below ``infer``
needs the inference layer."""

from __future__ import annotations

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
