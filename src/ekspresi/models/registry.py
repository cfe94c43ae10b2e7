"""Name -> builder registry. ``build_model("mobilenetv2", 3, head="a")`` and the ``model:``
section of a training config both go through :func:`build_model`, so a name means one
architecture everywhere (CLI, configs, benchmarks, tests).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ekspresi.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: ``pretrained`` value that uses ImageNet weights when the file is found offline and trains
#: from scratch (labelled so in the model's ``init``) when it is not.
IF_AVAILABLE = "if-available"

#: Modules whose import registers builders (kept explicit: no plugin magic).
_BUILDER_MODULES = ("ekspresi.models.paper_cnn", "ekspresi.models.transfer",
                    "ekspresi.models.efficientnet_lite", "ekspresi.models.ours")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    summary: str
    input_size: int          # default square input side in pixels
    channels: int            # channels the backbone sees (ONNX input is always 1)
    weights_file: str | None  # ImageNet weight file it can start from, if any
    builder: Callable

    @property
    def options(self) -> tuple[str, ...]:
        """Builder keyword options a config may set under ``model.options``."""
        skip = {"num_classes", "input_size", "pretrained", "weights"}
        return tuple(p for p in inspect.signature(self.builder).parameters if p not in skip)


_REGISTRY: dict[str, ModelInfo] = {}
_loaded = False


def register(name: str, *, summary: str, input_size: int, channels: int,
             weights_file: str | None = None) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(name, summary, input_size, channels, weights_file, fn)
        return fn
    return deco


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILDER_MODULES:
            importlib.import_module(mod)
        _loaded = True


def model_names() -> list[str]:
    _ensure_loaded()
    return list(_REGISTRY)


def get_info(name: str) -> ModelInfo:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None


def build_model(name: str, num_classes: int = 7, *, input_size: int | None = None,
                pretrained: bool | str = False, weights: str | None = None, **options):
    """Build a :class:`~ekspresi.models.base.FERModel`. ``weights`` (a file path) implies
    ``pretrained``; ``pretrained="if-available"`` uses the ImageNet file when it is found
    offline and otherwise builds from scratch with a warning (the model's ``init`` says
    so); unknown ``options`` are a :class:`ConfigError` naming them."""
    info = get_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {unknown}; "
                          f"its options are {list(info.options)}")
    if pretrained not in (False, True, IF_AVAILABLE):
        raise ConfigError(f"model.pretrained must be true, false or {IF_AVAILABLE!r}, "
                          f"got {pretrained!r}")
    if (pretrained or weights) and info.weights_file is None:
        raise ConfigError(f"model {name!r} has no pre-trained weights; "
                          "set model.pretrained: false")
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = int(input_size or info.input_size)
    use, missing = bool(weights) or pretrained is True, ""
    if pretrained == IF_AVAILABLE and not weights:
        from ekspresi.models.weights import resolve_weights

        try:
            resolve_weights(info.weights_file)
            use = True
        except ModelError:
            missing = f"scratch: ImageNet weights {info.weights_file} not found"
            log.warning("model %s: %s offline; training from random initialisation (the run "
                        "is labelled 'scratch'; pass --set model.weights=PATH to use them)",
                        name, missing.split(": ", 1)[1])
    model = info.builder(num_classes=num_classes, input_size=size, pretrained=use,
                         weights=weights, **options)
    model.pretrained = use
    if use:
        model.init = "imagenet" + (f" ({weights})" if weights else f" ({info.weights_file})")
    elif missing:
        model.init = missing
    return model


def list_models() -> list[dict]:
    """One dict per model at its default size and 7 classes (what `ekspresi models` shows)."""
    from ekspresi.models.base import count_params

    rows = []
    for name in model_names():
        info = _REGISTRY[name]
        model = build_model(name, 7)
        rows.append({"name": name, "summary": info.summary, "input_size": info.input_size,
                     "channels": info.channels, "trainable_params": count_params(model),
                     "total_params": count_params(model, trainable_only=False),
                     "imagenet_weights": info.weights_file, "options": list(info.options)})
    return rows
