"""Inference: model bundles, the MODEL resolver, the ONNX Runtime classifier and the
photo/video engine (the base install, no torch: writing models is :mod:`ekspresi.export`).

``Recognizer``, ``Classifier``, the model resolver and the typed results it returns
(``ImageResult``, ``VideoResult``, ``Trace``) are resolved lazily so that
importing a command module (``ekspresi --help``) does not load ONNX Runtime or OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Classifier", "ImageResult", "Recognizer", "Trace", "VideoResult",
           "default_bundle_path", "load_model", "resolve_model"]

if TYPE_CHECKING:  # pragma: no cover
    from ekspresi.infer.classifier import Classifier
    from ekspresi.infer.recognizer import Recognizer
    from ekspresi.infer.resolve import default_bundle_path, load_model, resolve_model
    from ekspresi.infer.results import ImageResult, Trace, VideoResult

_LAZY = {"Classifier": "ekspresi.infer.classifier", "Recognizer": "ekspresi.infer.recognizer",
         "default_bundle_path": "ekspresi.infer.resolve", "load_model": "ekspresi.infer.resolve",
         "resolve_model": "ekspresi.infer.resolve",
         **dict.fromkeys(("ImageResult", "VideoResult", "Trace"), "ekspresi.infer.results")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ekspresi.infer' has no attribute {name!r}")
