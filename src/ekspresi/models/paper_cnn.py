"""The custom CNN of the UII 2021 thesis (paper 3), layer for layer.

Keras ``Sequential`` with 'same' padding: four conv blocks (64 3x3, 128 5x5, 512 3x3,
512 3x3; each Conv -> BN -> ReLU -> MaxPool 2 -> Dropout 0.25), Flatten, two dense blocks
(256, 512; Dense -> BN -> ReLU -> Dropout 0.25), Dense(n). Batch-norm uses Keras' defaults
(eps 1e-3, momentum 0.99 = torch momentum 0.01). At 48x48 and 7 classes it has exactly the
thesis' 4,474,759 trainable parameters. The softmax is left to the loss / the caller: the
model outputs logits like every other registry model. ``init="glorot"`` starts from Keras'
default initialisation (glorot uniform, zero biases) as the thesis did; the default keeps
torch's.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ekspresi.errors import ModelError
from ekspresi.models.base import FERModel, glorot_uniform_
from ekspresi.preprocess import InputSpec

_KERAS_BN = {"eps": 1e-3, "momentum": 0.01}


def _conv_block(cin: int, cout: int, k: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2),
                         nn.BatchNorm2d(cout, **_KERAS_BN), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2), nn.Dropout(dropout))


def _dense_block(fin: int, fout: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fin, fout), nn.BatchNorm1d(fout, **_KERAS_BN),
                         nn.ReLU(inplace=True), nn.Dropout(dropout))


def build_paper_cnn(num_classes: int, input_size: int, weights: Path | None,
                    dropout: float = 0.25, init: str = "torch") -> FERModel:
    if input_size % 16:
        raise ModelError(f"model.input_size: paper-cnn needs a size divisible by 16, got "
                         f"{input_size}")
    if init not in ("torch", "glorot"):
        raise ModelError(f"model.options.init must be 'torch' or 'glorot', got {init!r}")
    backbone = nn.Sequential(_conv_block(1, 64, 3, dropout), _conv_block(64, 128, 5, dropout),
                             _conv_block(128, 512, 3, dropout), _conv_block(512, 512, 3, dropout))
    side = input_size // 16
    head = nn.Sequential(nn.Flatten(), _dense_block(512 * side * side, 256, dropout),
                         _dense_block(256, 512, dropout), nn.Linear(512, num_classes))
    model = FERModel("paper-cnn", InputSpec(size=input_size, channels=1), backbone, head,
                     blocks=[f"backbone.{i}" for i in range(4)], num_classes=num_classes)
    if init == "glorot":
        glorot_uniform_(model)
        model.init = "scratch (glorot uniform)"
    return model
