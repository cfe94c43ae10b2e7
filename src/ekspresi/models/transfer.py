"""torchvision ImageNet backbones with the heads the source papers used.

- ``mobilenetv2`` head ``a`` (paper 1): cut at Keras' ``block_15_project``, i.e. torchvision
  ``features[:16]`` plus the 16th inverted residual up to its projection conv (before its BN
  and residual add, exactly where Keras' ``layers[-14]`` taps), GlobalMaxPool, Dense(n).
  With 3 classes this has the paper's 1,364,707 parameters (BN moving statistics included,
  as Keras counts them). Head ``b`` (paper 5): all features, Flatten -> Dense 128 -> Dense 64
  -> Dense(n) (3,741,383 parameters at 96x96, 7 classes). Head ``c`` (paper 5's variant):
  GlobalAvgPool -> Dense(n) on a frozen backbone. Head ``gap`` (default): GlobalAvgPool ->
  Dropout 0.2 -> Dense(n), torchvision's own classifier shape.
- ``resnet50`` and ``vgg19`` (paper 2): GlobalAvgPool -> Dense(n), everything trainable.

ImageNet weights come from :mod:`ekspresi.models.weights` (offline only).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torchvision
from torch import nn

from ekspresi.errors import ConfigError
from ekspresi.models.base import FERModel, classifier
from ekspresi.models.registry import register
from ekspresi.models.weights import load_state_dict, resolve_weights
from ekspresi.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
RESNET50_FILE = "resnet50-0676ba61.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"


def _input_spec(size: int, normalization: str) -> InputSpec:
    """``imagenet`` = torchvision's statistics; ``unit`` = pixel/255 only (what paper 1 did
    with its Keras MobileNetV2)."""
    if normalization == "imagenet":
        return InputSpec(size=size, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if normalization == "unit":
        return InputSpec(size=size, channels=3, mean=(0.0,), std=(1.0,))
    raise ConfigError(f"model.options.normalization must be 'imagenet' or 'unit', "
                      f"got {normalization!r}")


def _torchvision(ctor, file_name: str, pretrained: bool, weights: str | None) -> nn.Module:
    net = ctor(weights=None)
    if pretrained:
        path = resolve_weights(file_name, weights)
        try:
            net.load_state_dict(load_state_dict(path))
        except RuntimeError as exc:
            from ekspresi.errors import ModelError

            raise ModelError(f"{path}: does not match torchvision's {ctor.__name__} "
                             f"({str(exc).splitlines()[0]})") from None
    return net


@register("mobilenetv2", summary="torchvision MobileNetV2 (ImageNet) with paper heads a/b/c or gap",
          input_size=48, channels=3, weights_file=MOBILENET_FILE)
def build_mobilenetv2(num_classes: int, input_size: int, pretrained: bool, weights: str | None,
                      head: str = "gap", dropout: float = 0.2,
                      normalization: str = "imagenet") -> FERModel:
    feats = _torchvision(torchvision.models.mobilenet_v2, MOBILENET_FILE, pretrained,
                         weights).features
    spec = _input_spec(input_size, normalization)
    if head == "a":
        tap = feats[16].conv[:3]  # expand, depthwise, projection conv: Keras block_15_project
        backbone = nn.Sequential(*feats[:16], tap)
        top: nn.Module = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                                       nn.Linear(160, num_classes))
    elif head == "b":
        backbone = feats
        side = math.ceil(input_size / 32)
        top = nn.Sequential(nn.Flatten(), nn.Linear(1280 * side * side, 128), nn.ReLU(inplace=True),
                            nn.Linear(128, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes))
    elif head in ("c", "gap"):
        backbone = feats
        top = classifier(1280, num_classes, dropout if head == "gap" else 0.0)
    else:
        raise ConfigError(f"model.options.head must be a, b, c or gap, got {head!r}")
    model = FERModel("mobilenetv2", spec, backbone, top,
                     blocks=[f"backbone.{i}" for i in range(len(backbone))],
                     num_classes=num_classes)
    if head == "c":
        model.freeze(backbone=True)
    return model


@register("resnet50", summary="torchvision ResNet50 (ImageNet), GAP -> Dense(n) (paper 2)",
          input_size=48, channels=3, weights_file=RESNET50_FILE)
def build_resnet50(num_classes: int, input_size: int, pretrained: bool,
                   weights: str | None) -> FERModel:
    net = _torchvision(torchvision.models.resnet50, RESNET50_FILE, pretrained, weights)
    backbone = nn.Sequential(OrderedDict(
        stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
        layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4))
    return FERModel("resnet50", _input_spec(input_size, "imagenet"), backbone,
                    classifier(2048, num_classes),
                    blocks=[f"backbone.{n}" for n in ("stem", "layer1", "layer2", "layer3",
                                                       "layer4")],
                    num_classes=num_classes)


@register("vgg19", summary="torchvision VGG19 (ImageNet), GAP -> Dense(n) (paper 2)",
          input_size=48, channels=3, weights_file=VGG19_FILE)
def build_vgg19(num_classes: int, input_size: int, pretrained: bool,
                weights: str | None) -> FERModel:
    if input_size < 32:
        raise ConfigError(f"vgg19 needs inputs of at least 32 px, got {input_size}")
    feats = _torchvision(torchvision.models.vgg19, VGG19_FILE, pretrained, weights).features
    return FERModel("vgg19", _input_spec(input_size, "imagenet"), feats,
                    classifier(512, num_classes),
                    blocks=[f"backbone.{i}" for i in range(len(feats))], num_classes=num_classes)

