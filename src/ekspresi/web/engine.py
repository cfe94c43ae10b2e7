"""The recognisers the web app shares across requests, the model switch between them, and
the "no model" state.

The app must start even when the model can't be loaded (e.g. the bundled default is not
there yet): pages then explain what is wrong and the API answers 503 with the same message,
rather than the server dying at start-up with a traceback.

Model switch: the model ``ekspresi serve --model`` names is loaded at start and used unless
a request chooses another. Every model shipped in the package (``default``, ``accurate``,
...) can be chosen too, by ``?model=NAME`` on any page or API call, which the pages remember
in a cookie (as ``?lang=``), so the Image, Video, Real-time and Step-by-step pages' own API
calls use it. Only those names can be chosen, never a path: a request cannot make the
server load a file. A model is loaded the first time it is chosen and then kept.

Concurrency: ONNX Runtime's ``InferenceSession.run`` is thread-safe and the detectors
serialise their own OpenCV calls, so one :class:`~ekspresi.infer.recognizer.Recognizer` per
model is shared by every request; routes call it through ``run_in_threadpool`` so inference
never blocks the event loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, WebSocket

from ekspresi.errors import EkspresiError
from ekspresi.infer.bundle import Bundle
from ekspresi.metrics_schema import read_metrics
from ekspresi.web.settings import WebSettings

log = logging.getLogger("ekspresi.web")

#: The cookie the pages remember a ``?model=`` choice in.
MODEL_COOKIE = "ekspresi_model"
#: The choice name of a ``--model`` that is a folder, not a bundled model's name.
SERVED = "served"


class LoadedModel:
    """One model of the switch: its recogniser, or why it could not be loaded."""

    def __init__(self, choice: str, model: str | None, settings: WebSettings):
        self.choice = choice
        self.settings = settings
        self.recognizer: Any | None = None
        self.bundle: Bundle | None = None
        self.error: str | None = None
        try:
            from ekspresi.infer.recognizer import Recognizer
        except ImportError as exc:  # the base install lacks a runtime dependency
            self.error = f"the inference engine cannot be imported ({exc})"
            log.error("model not loaded: %s", self.error)
            return
        try:
            self.recognizer = Recognizer(model, detector=settings.detector,
                                         threads=settings.threads)
        except EkspresiError as exc:
            self.error = str(exc)
            log.error("model %s not loaded: %s", choice, self.error)
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
            return {"loaded": False, "error": self.error, "choice": self.choice}
        det = getattr(self.recognizer, "detector", None)
        return {
            "loaded": True,
            "choice": self.choice,
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


def _choices(model: Path | None) -> list[str]:
    """The switch's names: ``--model`` first (a bundled model's own name, else ``served``),
    then ``default``, then the other bundled models."""
    from ekspresi.infer.resolve import DEFAULT_MODEL, bundled_models

    shipped = sorted(bundled_models(), key=lambda n: (n != DEFAULT_MODEL, n))
    if model is None:
        served = DEFAULT_MODEL
    else:
        served = str(model) if str(model) in shipped else SERVED
    return [served] + [n for n in shipped if n != served]


class Engine:
    """The served model (loaded at start) and the bundled models a request may choose.

    ``recognizer``, ``bundle``, ``error``, ``available``, ``model_name``, ``require()`` and
    ``info()`` are the served model's; :meth:`get` gives any choice's."""

    def __init__(self, settings: WebSettings):
        self.settings = settings
        # the package's models do not change while it runs: listed once, not per request
        self._choices = _choices(settings.model)
        self.served = self._choices[0]
        self._lock = threading.Lock()
        model = str(settings.model) if settings.model else None
        self._loaded = {self.served: LoadedModel(self.served, model, settings)}

    # -- the served model ---------------------------------------------------------------
    @property
    def _own(self) -> LoadedModel:
        return self._loaded[self.served]

    @property
    def recognizer(self) -> Any | None:
        return self._own.recognizer

    @property
    def bundle(self) -> Bundle | None:
        return self._own.bundle

    @property
    def error(self) -> str | None:
        return self._own.error

    @property
    def available(self) -> bool:
        return self._own.available

    @property
    def model_name(self) -> str | None:
        return self._own.model_name

    def require(self) -> Any:
        return self._own.require()

    def info(self) -> dict[str, Any]:
        return self._own.info()

    # -- the switch ---------------------------------------------------------------------
    def choices(self) -> list[str]:
        """The names a request may choose: the served model first, then ``default``, then
        the other bundled ones."""
        return list(self._choices)

    def get(self, choice: str | None = None) -> LoadedModel:
        """The model ``choice`` names (``None``: the served one), loaded on first use.
        An unknown name is a 422 that lists the choices."""
        choice = choice or self.served
        if choice not in self._loaded:
            if choice not in self.choices():
                raise HTTPException(422, f"model {choice!r} is not offered here; choose "
                                         f"from: {', '.join(self.choices())}")
            with self._lock:       # two first requests load it once
                if choice not in self._loaded:
                    self._loaded[choice] = LoadedModel(choice, choice, self.settings)
        return self._loaded[choice]

    def choose(self, request: Request | WebSocket, model: str | None = None) -> LoadedModel:
        """The model a request asks for: ``model`` (the route's ``?model=``), else the
        pages' cookie (ignored when it names a model no longer offered), else the served
        one."""
        model = model or request.query_params.get("model")
        if model:
            return self.get(model)
        remembered = request.cookies.get(MODEL_COOKIE)
        return self.get(remembered if remembered in self.choices() else None)

    def catalogue(self) -> list[dict[str, Any]]:
        """``GET /api/v1/models``: every choice with its name and headline test accuracy,
        read from its ``model.json`` (nothing is loaded for this)."""
        from ekspresi.infer.bundle import load_bundle
        from ekspresi.infer.resolve import resolve_model

        out = []
        for choice in self.choices():
            entry: dict[str, Any] = {"choice": choice, "served": choice == self.served,
                                     "loaded": choice in self._loaded}
            loaded = self._loaded.get(choice)
            try:
                bundle = loaded.bundle if loaded and loaded.bundle else load_bundle(
                    resolve_model(self.settings.model if choice == SERVED else choice)
                    .bundle_dir, verify=False)
            except EkspresiError as exc:
                entry["error"] = str(exc)
            else:
                entry.update(name=bundle.name, input_size=bundle.input_spec.size,
                             classes=len(bundle.classes),
                             metrics=_summary_metrics(bundle.metrics))
            out.append(entry)
        return out


def _summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers per test set (the full blocks, with confusion matrices, are on the
    About page)."""
    keys = {"accuracy", "accuracy_ci95", "balanced_accuracy", "macro_f1", "n_samples"}
    return {name: m.model_dump(include=keys, exclude_none=True)
            for name, m in read_metrics(metrics, "model.json").test_sets.items()}
