"""The model a config describes, and its freezing schedule (shared by the loop, teachers
and anything else that rebuilds a run's network from its config)."""

from __future__ import annotations

from ekspresi.models import build_model
from ekspresi.models.base import FERModel
from ekspresi.train.config import TrainConfig


def make_model(cfg: TrainConfig, num_classes: int) -> FERModel:
    m = cfg.model
    return build_model(m.name, num_classes, input_size=m.input_size, pretrained=m.pretrained,
                       weights=m.weights, **m.options)


def apply_freeze(model: FERModel, cfg: TrainConfig, epoch: int) -> None:
    """Freezing for the epoch about to start (0-based): the configured freeze until
    ``unfreeze_after`` epochs have passed, then everything trainable."""
    m = cfg.model
    if m.unfreeze_after is not None and epoch >= m.unfreeze_after:
        model.freeze(0)
    elif m.freeze_backbone or m.freeze_first:
        model.freeze(m.freeze_first, backbone=m.freeze_backbone)
