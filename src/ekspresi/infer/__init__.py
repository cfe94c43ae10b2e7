"""Inference: model bundles, the ONNX Runtime classifier and the photo/video engine.

``Recognizer``, ``Classifier`` and ``default_bundle_path`` are resolved lazily so that
importing a command module (``ekspresi --help``) does not load ONNX Runtime or OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Classifier", "Recognizer", "default_bundle_path"]

if TYPE_CHECKING:  # pragma: no cover
    from ekspresi.infer.classifier import Classifier
    from ekspresi.infer.recognizer import Recognizer, default_bundle_path

_LAZY = {"Classifier": "ekspresi.infer.classifier", "Recognizer": "ekspresi.infer.recognizer",
         "default_bundle_path": "ekspresi.infer.recognizer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ekspresi.infer' has no attribute {name!r}")
