"""Face detectors behind one interface.

``get_detector("haar" | "blazeface" | "blazeface-fast" | "blazeface-full" | "default",
**options)`` returns a
:class:`Detector`; ``detector.detect(image)`` gives :class:`~ekspresi.infer.types.Detection`
objects sorted by score. Which backend ``default`` means was decided by measurement
(detection rate on real uncropped photos and speed per 640x480 frame, docs/detectors.md).
"""

from __future__ import annotations

from collections.abc import Callable

from ekspresi.detect.align import align_crop, align_face, eye_angle
from ekspresi.detect.base import Detector
from ekspresi.errors import ConfigError

#: What ``default`` resolves to (see docs/detectors.md for the measurements).
DEFAULT_DETECTOR = "blazeface"


def _haar(**opts) -> Detector:
    from ekspresi.detect.haar import HaarDetector
    return HaarDetector(**opts)


def _blazeface(name: str, variant: str, input_sizes: tuple[int, ...] | None = None,
               threshold: float | None = None) -> Callable[..., Detector]:
    def make(**opts) -> Detector:
        from ekspresi.detect.blazeface import BlazeFaceDetector
        if opts.get("score_threshold") is None and threshold is not None:
            opts["score_threshold"] = threshold
        det = BlazeFaceDetector(variant, input_sizes=input_sizes, **opts)
        det.name = name
        return det
    return make


BACKENDS: dict[str, Callable[..., Detector]] = {
    "haar": _haar,
    # short-range model at 128x128 (large faces) and 256x256 (faces down to ~70 px in a
    # 640x480 frame), merged; at 256 MediaPipe's threshold of 0.5 lets texture through, 0.75
    # removed every false positive on our face-free images (docs/detectors.md)
    "blazeface": _blazeface("blazeface", "short", (128, 256), threshold=0.75),
    # short-range model at its native 128x128: fastest, faces above ~90 px (webcam selfies)
    "blazeface-fast": _blazeface("blazeface-fast", "short"),
    "blazeface-full": _blazeface("blazeface-full", "full"),
}


def available_detectors() -> list[str]:
    return ["default", *BACKENDS]


def get_detector(name: str = "default", **opts) -> Detector:
    """A new detector. Options: ``min_face_size`` (pixels), ``score_threshold`` (backend's
    scale; ``None`` = its default), ``max_faces``, ``margin`` (crop margin, fraction)."""
    key = DEFAULT_DETECTOR if name == "default" else name.strip().lower()
    if key not in BACKENDS:
        raise ConfigError(f"unknown face detector {name!r}; choose one of "
                         f"{', '.join(available_detectors())}")
    return BACKENDS[key](**opts)


__all__ = ["BACKENDS", "DEFAULT_DETECTOR", "Detector", "align_crop", "align_face",
           "available_detectors", "eye_angle", "get_detector"]
