"""Inference: model bundles, the ONNX Runtime classifier and the photo/video engine.

``Recognizer``, ``Classifier``, ``default_bundle_path`` and the typed results it returns
(``ImageResult``, ``VideoResult``, ``Trace``) are resolved lazily so that
importing a command module (``ekspresi --help``) does not load ONNX Runtime or OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Classifier", "ImageResult", "Recognizer", "Trace", "VideoResult",
           "default_bundle_path"]

if TYPE_CHECKING:  # pragma: no cover
    from ekspresi.infer.classifier import Classifier
    from ekspresi.infer.recognizer import Recognizer, default_bundle_path
    from ekspresi.infer.results import ImageResult, Trace, VideoResult

_LAZY = {"Classifier": "ekspresi.infer.classifier", "Recognizer": "ekspresi.infer.recognizer",
         "default_bundle_path": "ekspresi.infer.recognizer",
         **dict.fromkeys(("ImageResult", "VideoResult", "Trace"), "ekspresi.infer.results")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ekspresi.infer' has no attribute {name!r}")
