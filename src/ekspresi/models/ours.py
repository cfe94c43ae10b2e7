"""Our own architectures, sized for 48-64 px grey faces and a CPU budget.

FER2013 faces are tiny and grey: ImageNet backbones spend most of their compute at
resolutions and channel counts the data cannot fill. These two nets put their compute where
48 px faces have information (3x3 convs at 48/24/12/6 px) and end in global average pooling,
so they export to small, fast ONNX graphs.

- ``fer-vgg``: VGG-style stages of ``convs`` 3x3 conv-BN-ReLU layers and a 2x2 max-pool;
  the recipe of the best single FER2013 nets (VGG variants at ~73 %), slimmed down.
- ``fer-resnet``: a ResNet-style net (basic residual blocks, stride-2 stage entries) with a
  two-conv stem that halves the resolution early, for the most accuracy per millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ekspresi.errors import ModelError
from ekspresi.models.base import FERModel, classifier, conv_bn_relu
from ekspresi.preprocess import InputSpec

#: Inputs are centred around FER2013's mean grey (~0.5) so BN-free early activations behave.
_GREY = InputSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))


def _spec(size: int) -> InputSpec:
    return InputSpec(size=size, channels=1, mean=_GREY.mean, std=_GREY.std)


def build_fer_vgg(num_classes: int, input_size: int, weights: Path | None,
                  widths: Sequence[int] = (32, 64, 128, 256), convs: int = 2,
                  dropout: float = 0.3) -> FERModel:
    stages, cin = [], 1
    for w in widths:
        layers = [conv_bn_relu(cin if i == 0 else w, w) for i in range(convs)]
        stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        cin = w
    backbone = nn.Sequential(*stages)
    return FERModel("fer-vgg", _spec(input_size), backbone,
                    classifier(cin, num_classes, dropout),
                    blocks=[f"backbone.{i}" for i in range(len(stages))], num_classes=num_classes)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs, identity or 1x1-projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                    nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.short(x))


def build_fer_resnet(num_classes: int, input_size: int, weights: Path | None,
                     widths: Sequence[int] = (32, 64, 128, 256),
                     depths: Sequence[int] = (1, 2, 2, 1), stem_stride: int = 2,
                     dropout: float = 0.2) -> FERModel:
    if len(widths) != len(depths):
        raise ModelError(f"model.options: fer-resnet needs as many widths as depths, got "
                         f"{len(widths)} widths and {len(depths)} depths")
    stem = nn.Sequential(conv_bn_relu(1, widths[0] // 2), conv_bn_relu(widths[0] // 2, widths[0],
                                                                       stride=stem_stride))
    stages, cin = [stem], widths[0]
    for i, (w, d) in enumerate(zip(widths, depths)):
        blocks = [BasicBlock(cin if j == 0 else w, w, 2 if (j == 0 and i > 0) else 1)
                  for j in range(d)]
        stages.append(nn.Sequential(*blocks))
        cin = w
    backbone = nn.Sequential(*stages)
    return FERModel("fer-resnet", _spec(input_size), backbone,
                    classifier(cin, num_classes, dropout),
                    blocks=[f"backbone.{i}" for i in range(len(stages))], num_classes=num_classes)
