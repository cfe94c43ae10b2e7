"""The pieces every registry model shares: the input adapter and the model wrapper.

A registry model is ``adapter -> backbone -> head``. The adapter turns the shared model input
(float32 ``(N, 1, H, W)``, pixels 0..255, see :mod:`ekspresi.preprocess`) into what the
backbone was designed or pre-trained for, so that normalisation is part of the ONNX graph and
no caller can get it wrong. The wrapper also knows which backbone blocks can be frozen, so
transfer-learning recipes ("freeze the first N layers", "freeze the backbone, unfreeze after
K epochs") work the same way for every architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ekspresi.preprocess import InputSpec


class InputAdapter(nn.Module):
    """pixels 0..255, 1 channel -> ``(x/255 - mean)/std`` with ``spec.channels`` channels.

    Folded into one multiply-add (``x * scale + shift``) so it costs nothing at inference."""

    def __init__(self, spec: InputSpec):
        super().__init__()
        c = spec.channels
        mean = torch.tensor(spec.mean, dtype=torch.float32).expand(c).clone()
        std = torch.tensor(spec.std, dtype=torch.float32).expand(c).clone()
        self.channels = c
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, c, 1, 1), persistent=False)
        self.register_buffer("shift", (-mean / std).view(1, c, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels != 1:
            x = x.expand(-1, self.channels, -1, -1)
        return x * self.scale + self.shift


class FERModel(nn.Module):
    """``head(backbone(adapter(x)))`` plus the metadata training and export need.

    ``blocks`` names the backbone's freezable units in input-to-output order (qualified
    module names); "freeze the first N layers" means the first N of them. Frozen blocks
    keep batch-norm statistics fixed (eval mode), like Keras' ``trainable=False``. A name
    may repeat (a parameterless Keras layer such as padding is listed as the module before
    it), so that block counts can follow another framework's layer numbering.

    ``pretrained`` / ``init`` say where the weights started (ImageNet or from scratch, and
    why), so a run trained from scratch is labelled as such in its metrics and reports.
    """

    def __init__(self, name: str, input_spec: InputSpec, backbone: nn.Module, head: nn.Module,
                 blocks: Sequence[str] = (), num_classes: int = 7):
        super().__init__()
        self.name = name
        self.input_spec = input_spec
        self.num_classes = num_classes
        self.adapter = InputAdapter(input_spec)
        self.backbone = backbone
        self.head = head
        self.block_names: tuple[str, ...] = tuple(blocks)
        self.frozen_blocks = 0
        self.pretrained = False
        self.init = "scratch"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.adapter(x)))

    def blocks(self) -> list[nn.Module]:
        return [self.get_submodule(n) for n in self.block_names]

    def freeze(self, first_n: int = 0, *, backbone: bool = False) -> None:
        """Freeze the first ``first_n`` backbone blocks (all of them with ``backbone=True``);
        every later block becomes trainable again."""
        blocks = self.blocks()
        n = len(blocks) if backbone else max(0, min(int(first_n), len(blocks)))
        if backbone and not blocks:  # a backbone without named blocks: freeze it whole
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        frozen = set(self.block_names[:n])  # a repeated name is frozen if any copy is
        for name in dict.fromkeys(self.block_names):
            for p in self.get_submodule(name).parameters():
                p.requires_grad_(name not in frozen)
        self.frozen_blocks = n
        self.train(self.training)

    def train(self, mode: bool = True) -> "FERModel":
        super().train(mode)
        if mode:
            for block in self.blocks()[: self.frozen_blocks]:
                block.eval()
        return self


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 eps: float = 1e-5, momentum: float = 0.1) -> nn.Sequential:
    """The conv -> BN -> ReLU unit our own nets are made of ('same' padding, no conv bias)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=eps, momentum=momentum),
        nn.ReLU(inplace=True),
    )


def glorot_uniform_(module: nn.Module) -> nn.Module:
    """Keras' default initialisation: glorot (Xavier) uniform weights for every conv and
    dense layer (fans include the kernel area, as in Keras) and zero biases. torch's default
    (Kaiming uniform with a = sqrt(5), uniform biases) differs per layer: in paper 3's CNN
    its weights are 3x larger in the first conv and 1.1-2.5x smaller in every later layer,
    which changes how a Keras recipe trains."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def classifier(features: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pool -> dropout -> linear: the head of every modern backbone here."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
