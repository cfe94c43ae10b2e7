"""Paper-fidelity training settings: Keras' ReduceLROnPlateau rule on synthetic metric
sequences, and the optimiser options (RMSprop rho, eps) reaching torch."""

from __future__ import annotations

import pytest
import torch

from ekspresi.errors import ConfigError
from ekspresi.train.callbacks import Plateau
from ekspresi.train.config import parse_config
from ekspresi.train.optim import build_optimizer, build_scheduler


def _opt(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _cuts(values, **kw) -> tuple[list[int], list[float]]:
    opt = _opt()
    p = Plateau(opt, **kw)
    lrs = []
    for v in values:
        p.step(v)
        lrs.append(opt.param_groups[0]["lr"])
    return p.cuts, lrs


PAPER1 = {"mode": "max", "factor": 0.25, "patience": 4, "min_delta": 1e-4, "min_lr": 1e-7}


def test_cut_after_patience_bad_epochs_like_keras():
    # epoch 1 sets the best, epochs 2-5 are four bad epochs -> Keras cuts after epoch 5
    # (torch's ReduceLROnPlateau with patience 4 would wait for a fifth)
    seq = [0.50, 0.50, 0.49, 0.50, 0.45, 0.45, 0.45, 0.45, 0.45]
    cuts, lrs = _cuts(seq, **PAPER1)
    assert cuts == [5, 9]
    assert lrs[3] == pytest.approx(1e-3) and lrs[4] == pytest.approx(2.5e-4)
    assert lrs[-1] == pytest.approx(6.25e-5)


def test_min_delta_is_absolute():
    # +0.00005 is below min_delta 1e-4: not an improvement, so the count goes on
    seq = [0.5, 0.50005, 0.50009, 0.50003, 0.50008]
    assert _cuts(seq, **PAPER1)[0] == [5]
    # +0.0002 per epoch is an improvement every time: no cut
    assert _cuts([0.5 + 2e-4 * i for i in range(10)], **PAPER1)[0] == []
    # a relative threshold would have treated val_loss 10.0 -> 9.9995 differently; in min
    # mode the absolute rule needs a drop of more than min_delta
    assert _cuts([10.0, 9.99995, 9.99992, 9.99999, 9.99991], mode="min", patience=4,
                 min_delta=1e-4)[0] == [5]


def test_min_lr_floor_and_no_cut_at_the_floor():
    cuts, lrs = _cuts([0.5] * 60, **PAPER1)
    # 1e-3 * 0.25^k reaches the floor 1e-7 on the 7th cut; no cuts after that
    assert min(lrs) == pytest.approx(1e-7)
    assert len(cuts) == 7 and cuts == [5 + 4 * i for i in range(7)]


def test_cooldown_skips_counting():
    cuts, _ = _cuts([0.5] * 12, mode="max", factor=0.5, patience=2, cooldown=3)
    # Keras' order: cut after epoch 3 (counter 3); epochs 4 and 5 count the cooldown down
    # and are skipped; epoch 6 brings it to 0 and counts as bad again -> cut after epoch 7
    assert cuts == [3, 7, 11]


def test_state_dict_round_trip_continues_identically():
    seq = [0.5, 0.6, 0.6, 0.59, 0.6, 0.6, 0.61, 0.61, 0.6, 0.6, 0.6, 0.6]
    full, _ = _cuts(seq, **PAPER1)
    opt = _opt()
    p = Plateau(opt, **PAPER1)
    for v in seq[:6]:
        p.step(v)
    state, lr = p.state_dict(), opt.param_groups[0]["lr"]
    opt2 = _opt(lr)
    q = Plateau(opt2, **PAPER1)
    q.load_state_dict(state)
    for v in seq[6:]:
        q.step(v)
    assert q.cuts == full


def _cfg(**train) -> dict:
    return {"data": {"sources": ["data/x"]}, "train": train}


def test_config_reaches_plateau_and_optimizers():
    cfg = parse_config(_cfg(optimizer={"name": "rmsprop", "lr": 1e-4, "momentum": 0.0,
                                       "rho": 0.9, "eps": 1e-7},
                            scheduler={"name": "plateau", "monitor": "val_acc", "factor": 0.25,
                                       "patience": 4, "min_delta": 1e-4, "min_lr": 1e-7}))
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, cfg.train)
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.param_groups[0]["alpha"] == pytest.approx(0.9)
    assert opt.param_groups[0]["eps"] == pytest.approx(1e-7)
    assert opt.param_groups[0]["momentum"] == 0.0
    sched, per_step = build_scheduler(opt, cfg.train, 10)
    assert isinstance(sched, Plateau) and not per_step
    assert (sched.mode, sched.factor, sched.patience, sched.min_delta, sched.min_lr) == (
        "max", 0.25, 4, 1e-4, 1e-7)
    for name in ("adam", "adamw"):
        c = parse_config(_cfg(optimizer={"name": name, "eps": 1e-7}))
        assert build_optimizer(model, c.train).param_groups[0]["eps"] == pytest.approx(1e-7)
    # defaults stay torch's
    c = parse_config(_cfg(optimizer={"name": "rmsprop"}))
    g = build_optimizer(model, c.train).param_groups[0]
    assert g["alpha"] == pytest.approx(0.99) and g["eps"] == pytest.approx(1e-8)


@pytest.mark.parametrize("train, match", [
    ({"optimizer": {"rho": 1.0}}, "rho"),
    ({"optimizer": {"eps": 0}}, "eps"),
    ({"optimizer": {"eps": "tiny"}}, "eps"),
    ({"scheduler": {"name": "plateau", "factor": 1.5}}, "plateau"),
    ({"scheduler": {"name": "plateau", "min_delta": -1}}, "plateau"),
])
def test_bad_values_name_the_key(train, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(_cfg(**train))
