"""ekspresi: facial expression recognition, from datasets and training to a fast
photo/video/webcam engine with a web app and an HTTP API.

``from ekspresi import Recognizer`` needs only the base install (numpy, OpenCV, ONNX Runtime);
training and evaluation live behind ``pip install ekspresi[train]``.
"""

from __future__ import annotations

from ekspresi._version import __version__
from ekspresi.labels import ALL_CLASSES, CLASSES

__all__ = ["CLASSES", "ALL_CLASSES", "Recognizer", "__version__"]


def __getattr__(name: str):
    # Lazy so that importing ekspresi (e.g. for the CLI's --help) does not load ONNX Runtime.
    if name == "Recognizer":
        from ekspresi.infer.recognizer import Recognizer

        return Recognizer
    raise AttributeError(name)
