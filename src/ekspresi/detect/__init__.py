"""Face detectors behind one interface.

``get_detector("retinaface" | "haar" | "blazeface" | "blazeface-fast" | "blazeface-full" |
"blazeface-tiled" | "default", **options)`` returns a :class:`Detector`;
``detector.detect(image)`` gives :class:`~ekspresi.detect.types.Detection` objects sorted by
score, and ``detector.min_face_px(width, height)`` the smallest face it can find in an image
of that size. Which backend ``default`` means was decided by measurement (recall per face
and image size, false boxes on face-free images, ms per image:
``benchmarks/detection.py``, docs/detectors.md). Faces are put in reading order by
:func:`reading_order`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ekspresi.errors import ConfigError

if TYPE_CHECKING:
    from ekspresi.detect.base import Detector

#: ``sensitivity`` levels every backend accepts: ``low`` looks for larger faces only and/or
#: asks for more evidence (fast, fewest false boxes: live video), ``high`` for smaller and
#: fainter faces (slower, more false boxes). What each level means per backend is in
#: docs/detectors.md.
SENSITIVITIES = ("low", "normal", "high")

#: Names handed on from the submodules when first used, so that the CLI can read the
#: registry (``--detector`` choices) without importing OpenCV and numpy for ``--help``.
_LAZY = {"align_crop": "align", "align_face": "align", "eye_angle": "align",
         "Detector": "base", "reading_order": "order"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: What ``default`` resolves to (see docs/detectors.md for the measurements).
DEFAULT_DETECTOR = "retinaface"


def _haar(**opts) -> Detector:
    from ekspresi.detect.haar import HaarDetector
    return HaarDetector(**opts)


def _retinaface(**opts) -> Detector:
    from ekspresi.detect.retinaface import RetinaFaceDetector
    return RetinaFaceDetector(**opts)


def _blazeface(name: str, variant: str, input_sizes: tuple[int, ...] | None = None,
               thresholds: dict[str, float] | None = None) -> Callable[..., Detector]:
    def make(**opts) -> Detector:
        from ekspresi.detect.blazeface import BlazeFaceDetector
        det = BlazeFaceDetector(variant, input_sizes=input_sizes, thresholds=thresholds,
                                **opts)
        det.name = name
        return det
    return make


def _blazeface_tiled(**opts) -> Detector:
    from ekspresi.detect.blazeface import BlazeFaceDetector
    from ekspresi.detect.tiled import TiledDetector
    inner = BlazeFaceDetector("short", input_sizes=(128, 256), thresholds=_BLAZE_THRESHOLDS,
                              margin=opts.get("margin"))
    # the 128+256 pass finds faces of ~11-80 % of the square it is given
    det = TiledDetector(inner, (0.11, 0.8), {"low": 64, "normal": 32, "high": 24}, **opts)
    det.name = "blazeface-tiled"
    return det


# 0.75 for the 256x256 pass: at MediaPipe's 0.5 texture gets through, 0.75 removed every
# false positive on our face-free images (docs/detectors.md); low/high one step either side
_BLAZE_THRESHOLDS = {"low": 0.85, "normal": 0.75, "high": 0.65}


BACKENDS: dict[str, Callable[..., Detector]] = {
    # RetinaFace (MobileNet-0.25) at the resolution the smallest searched face needs, plus a
    # coarse pass for large faces: faces from ~32 px to the whole frame in any image size
    "retinaface": _retinaface,
    "haar": _haar,
    # short-range model at 128x128 (large faces) and 256x256 (faces down to ~70 px in a
    # 640x480 frame), merged
    "blazeface": _blazeface("blazeface", "short", (128, 256), _BLAZE_THRESHOLDS),
    # short-range model at its native 128x128: fastest, faces above ~90 px (webcam selfies)
    "blazeface-fast": _blazeface("blazeface-fast", "short",
                                 thresholds={"low": 0.65, "normal": 0.5, "high": 0.4}),
    "blazeface-full": _blazeface("blazeface-full", "full",
                                 thresholds={"low": 0.7, "normal": 0.6, "high": 0.5}),
    # the 128+256 model over a pyramid of overlapping tiles (detect/tiled.py)
    "blazeface-tiled": _blazeface_tiled,
}


def available_detectors() -> list[str]:
    return ["default", *BACKENDS]


def canonical_detector(name: str) -> str:
    """The backend a ``--detector`` name means (case and spaces ignored, ``default``
    resolved): what ``get_detector`` builds, and the key callers cache detectors by."""
    name = name.strip().lower()
    return DEFAULT_DETECTOR if name == "default" else name


def get_detector(name: str = "default", **opts) -> Detector:
    """A new detector. Options: ``min_face_size`` (pixels), ``score_threshold`` (backend's
    scale; ``None`` = its default for the sensitivity), ``max_faces``, ``margin`` (crop
    margin, fraction), ``sensitivity`` (``low``, ``normal``, ``high``)."""
    key = canonical_detector(name)
    if key not in BACKENDS:
        raise ConfigError(f"unknown face detector {name!r}; choose one of "
                         f"{', '.join(available_detectors())}")
    return BACKENDS[key](**opts)


__all__ = ["BACKENDS", "DEFAULT_DETECTOR", "SENSITIVITIES", "Detector", "align_crop",
           "align_face", "available_detectors", "canonical_detector", "eye_angle",
           "get_detector", "reading_order"]
