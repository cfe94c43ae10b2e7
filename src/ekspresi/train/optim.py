"""Optimisers and learning-rate schedules named in configs (all from ``torch.optim``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ekspresi.train.callbacks import Plateau
from ekspresi.train.config import TrainSection


def build_optimizer(model: nn.Module, t: TrainSection) -> torch.optim.Optimizer:
    """Weight decay goes to weights only (not to biases and norm parameters, where it only
    fights the normalisation). Frozen parameters are included so that unfreezing later
    needs no new optimiser (they get no gradient, so no update, while frozen)."""
    o = t.optimizer
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    eps = {} if o.eps is None else {"eps": o.eps}
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=tuple(o.betas), **eps)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), **eps)
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov)
    # Keras' RMSprop (rho 0.9, eps 1e-7) and torch's (alpha 0.99, eps 1e-8) share the update
    # rule lr * g / (sqrt(mean_sq) + eps); only the defaults differ, so both are settable.
    return torch.optim.RMSprop(groups, lr=o.lr, alpha=o.rho, momentum=o.momentum, **eps)


def build_scheduler(opt: torch.optim.Optimizer, t: TrainSection, steps_per_epoch: int
                    ) -> tuple[object | None, bool]:
    """(scheduler, steps per batch?). Plateau (Keras' rule, :class:`Plateau`) steps once per
    epoch on its monitor; cosine (with linear warm-up) and one-cycle step every batch."""
    s = t.scheduler
    total = t.epochs * steps_per_epoch
    if s.name == "none":
        return None, False
    if s.name == "plateau":
        mode = "max" if s.monitor == "val_acc" else "min"
        return Plateau(opt, mode=mode, factor=s.factor, patience=s.patience,
                       min_delta=s.min_delta, cooldown=s.cooldown, min_lr=s.min_lr), False
    if s.name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=t.optimizer.lr, total_steps=total, pct_start=s.pct_start), True
    warm = min(int(math.ceil(s.warmup_epochs * steps_per_epoch)), total - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm),
                                                        eta_min=s.min_lr)
    if warm <= 0:
        return cosine, True
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, total_iters=warm)
    return torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[warm]), True
