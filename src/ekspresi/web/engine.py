"""The one recogniser the web app shares across requests, and its "no model" state.

The app must start even when the model can't be loaded (e.g. the bundled default is not
there yet): pages then explain what is wrong and the API answers 503 with the same message,
rather than the server dying at start-up with a traceback.

Concurrency: ONNX Runtime's ``InferenceSession.run`` is thread-safe and the detectors
serialise their own OpenCV calls, so one :class:`~ekspresi.infer.recognizer.Recognizer` is
shared by every request; routes call it through ``run_in_threadpool`` so inference never
blocks the event loop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from ekspresi.errors import EkspresiError
from ekspresi.infer.bundle import Bundle
from ekspresi.metrics_schema import read_metrics
from ekspresi.web.settings import WebSettings

log = logging.getLogger("ekspresi.web")


class Engine:
    def __init__(self, settings: WebSettings):
        self.settings = settings
        self.recognizer: Any | None = None
        self.bundle: Bundle | None = None
        self.error: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            from ekspresi.infer.recognizer import Recognizer
        except ImportError as exc:  # the base install lacks a runtime dependency
            self.error = f"the inference engine cannot be imported ({exc})"
            log.error("model not loaded: %s", self.error)
            return
        model = str(self.settings.model) if self.settings.model else None
        try:
            self.recognizer = Recognizer(model, detector=self.settings.detector,
                                         threads=self.settings.threads)
        except EkspresiError as exc:
            self.error = str(exc)
            log.error("model not loaded: %s", self.error)
            return
        self.bundle = self.recognizer.classifier.bundle

    @property
    def available(self) -> bool:
        return self.recognizer is not None

    def require(self) -> Any:
        """The recogniser, or a 503 telling the client why there is none."""
        if self.recognizer is None:
            raise HTTPException(503, f"no model loaded: {self.error}")
        return self.recognizer

    @property
    def model_name(self) -> str | None:
        return self.bundle.name if self.bundle else None

    def info(self) -> dict[str, Any]:
        """``GET /api/v1/model``: what is serving, without local paths beyond the bundle
        folder's name."""
        b = self.bundle
        if b is None:
            return {"loaded": False, "error": self.error}
        det = getattr(self.recognizer, "detector", None)
        return {
            "loaded": True,
            "name": b.name,
            "classes": list(b.classes),
            "input": b.input_spec.to_dict(),
            "sha256": b.sha256,
            "bundle": Path(b.path).name,
            "detector": getattr(det, "name", None) or self.settings.detector,
            "created": b.metadata.get("created"),
            "ekspresi_version": b.metadata.get("ekspresi_version"),
            "metrics": _summary_metrics(b.metrics),
        }


def _summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers per test set (the full blocks, with confusion matrices, are on the
    About page)."""
    keys = {"accuracy", "accuracy_ci95", "balanced_accuracy", "macro_f1", "n_samples"}
    return {name: m.model_dump(include=keys, exclude_none=True)
            for name, m in read_metrics(metrics, "model.json").test_sets.items()}
