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
  torchvision's ResNet50 is "v1.5" (stride 2 in the 3x3 conv of each first bottleneck, no
  conv biases: 23,575,495 parameters with a 7-class head); Keras' ResNet50 (paper 2) is v1
  (stride in the first 1x1 conv, convs with biases: 23,602,055). The weights file decides
  which one can be loaded, so ours is v1.5; the difference is documented, not emulated.

Freezing: ``freeze_first: N`` counts the backbone's blocks (MobileNetV2: its 18 feature
stages). With ``freeze_units="keras"`` MobileNetV2 counts Keras' layers instead (input,
each conv, batch-norm, ReLU, padding and add layer of ``keras.applications.MobileNetV2``),
so ``freeze_first: 15`` freezes what paper 1's ``for layer in model.layers[:15]`` froze:
Conv1 .. block_1_depthwise_BN, 4,608 trainable parameters.

ImageNet weights come from :mod:`ekspresi.models.weights` (offline only).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torchvision
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from ekspresi.errors import ModelError
from ekspresi.models.base import FERModel, classifier
from ekspresi.models.weights import load_state_dict
from ekspresi.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec


def _input_spec(size: int, normalization: str) -> InputSpec:
    """``imagenet`` = torchvision's statistics; ``unit`` = pixel/255 only (what paper 1 did
    with its Keras MobileNetV2)."""
    if normalization == "imagenet":
        return InputSpec(size=size, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if normalization == "unit":
        return InputSpec(size=size, channels=3, mean=(0.0,), std=(1.0,))
    raise ModelError(f"model.options.normalization must be 'imagenet' or 'unit', "
                      f"got {normalization!r}")


def _torchvision(ctor, weights: Path | None) -> nn.Module:
    net = ctor(weights=None)
    if weights is not None:
        try:
            net.load_state_dict(load_state_dict(weights))
        except RuntimeError as exc:
            raise ModelError(f"{weights}: does not match torchvision's {ctor.__name__} "
                             f"({str(exc).splitlines()[0]})") from None
    return net


def keras_layer_blocks(backbone: nn.Sequential, prefix: str = "backbone") -> list[str]:
    """Module names of a torchvision MobileNetV2 feature stack, one per layer of Keras'
    MobileNetV2 in Keras' order (index 0 = the input layer -> our parameterless adapter).
    Keras layers without parameters and without a torch module of their own (the
    ZeroPadding2D before a stride-2 depthwise conv, the residual Add) repeat the name of
    the layer before them, so the first N names cover exactly Keras' first N layers."""
    names = ["adapter"]

    def units(seq: nn.Sequential, where: str) -> None:
        for j, c in enumerate(seq):
            q = f"{where}.{j}"
            if isinstance(c, Conv2dNormActivation):
                conv = c[0]
                if conv.groups > 1 and conv.stride[0] == 2:
                    names.append(names[-1])  # Keras' block_N_pad
                names.extend(f"{q}.{k}" for k in range(len(c)))
            else:  # the projection conv and its batch-norm
                names.append(q)

    for i, m in enumerate(backbone):
        where = f"{prefix}.{i}"
        if isinstance(m, torchvision.models.mobilenetv2.InvertedResidual):
            units(m.conv, f"{where}.conv")
            if m.use_res_connect:
                names.append(names[-1])  # Keras' block_N_add
        elif isinstance(m, Conv2dNormActivation):
            names.extend(f"{where}.{k}" for k in range(len(m)))
        else:  # head a's tap: a partial inverted residual (expand, depthwise, project conv)
            units(m, where)
    return names


def build_mobilenetv2(num_classes: int, input_size: int, weights: Path | None,
                      head: str = "gap", dropout: float = 0.2,
                      normalization: str = "imagenet", freeze_units: str = "blocks") -> FERModel:
    feats = _torchvision(torchvision.models.mobilenet_v2, weights).features
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
        raise ModelError(f"model.options.head must be a, b, c or gap, got {head!r}")
    if freeze_units == "blocks":
        blocks = [f"backbone.{i}" for i in range(len(backbone))]
    elif freeze_units == "keras":
        blocks = keras_layer_blocks(backbone)
    else:
        raise ModelError(f"model.options.freeze_units must be 'blocks' or 'keras', "
                          f"got {freeze_units!r}")
    model = FERModel("mobilenetv2", spec, backbone, top, blocks=blocks, num_classes=num_classes)
    if head == "c":
        model.freeze(backbone=True)
    return model


def build_resnet50(num_classes: int, input_size: int, weights: Path | None) -> FERModel:
    net = _torchvision(torchvision.models.resnet50, weights)
    backbone = nn.Sequential(OrderedDict(
        stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
        layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4))
    return FERModel("resnet50", _input_spec(input_size, "imagenet"), backbone,
                    classifier(2048, num_classes),
                    blocks=[f"backbone.{n}" for n in ("stem", "layer1", "layer2", "layer3",
                                                       "layer4")],
                    num_classes=num_classes)


def build_vgg19(num_classes: int, input_size: int, weights: Path | None) -> FERModel:
    if input_size < 32:
        raise ModelError(f"vgg19 needs inputs of at least 32 px, got {input_size}")
    feats = _torchvision(torchvision.models.vgg19, weights).features
    return FERModel("vgg19", _input_spec(input_size, "imagenet"), feats,
                    classifier(512, num_classes),
                    blocks=[f"backbone.{i}" for i in range(len(feats))], num_classes=num_classes)

