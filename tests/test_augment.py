"""Batched augmentation: shapes, ranges, determinism, each transform doing its job."""

from __future__ import annotations

import pytest
import torch

from ekspresi.data.augment import AugmentConfig, BatchAugment, affine_matrices
from ekspresi.errors import ConfigError

torch.set_num_threads(1)


def batch(n=16, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), generator=g).float()


FULL = AugmentConfig(rotation=15, width_shift=0.15, height_shift=0.15, shear=10, zoom=0.15,
                     hflip=True, brightness=0.1, contrast=0.2, erasing=0.5)


def test_shapes_ranges_and_determinism():
    x = batch()
    a = BatchAugment(FULL)(x, torch.Generator().manual_seed(1))
    b = BatchAugment(FULL)(x, torch.Generator().manual_seed(1))
    c = BatchAugment(FULL)(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 255
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a, x)


def test_disabled_is_identity():
    x = batch()
    assert torch.equal(BatchAugment(AugmentConfig())(x, torch.Generator()), x)


def test_zero_ranges_give_identity_matrices():
    theta = affine_matrices(4, AugmentConfig(), torch.Generator().manual_seed(0))
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(4, 2, 3))


def test_flip_only_flips_about_half_exactly():
    x = batch(64)
    y = BatchAugment(AugmentConfig(hflip=True))(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(y[i], x[i].flip(-1)) for i in range(64)])
    same = torch.tensor([torch.equal(y[i], x[i]) for i in range(64)])
    assert (flipped | same).all() and 16 < int(flipped.sum()) < 48


def test_shift_moves_content():
    x = torch.zeros(1, 1, 20, 20)
    x[0, 0, :, 9:11] = 255  # a vertical bar in the middle
    cfg = AugmentConfig(width_shift=0.3)
    moved = [BatchAugment(cfg)(x, torch.Generator().manual_seed(s))[0, 0].sum(0).argmax().item()
             for s in range(8)]
    assert len(set(moved)) > 1


def test_erasing_replaces_a_rectangle():
    x = torch.zeros(8, 1, 16, 16)
    y = BatchAugment(AugmentConfig(erasing=1.0, erasing_area=(0.1, 0.2)))(
        x, torch.Generator().manual_seed(0))
    changed = (y != 0).float().mean(dim=(1, 2, 3))
    assert (changed > 0.03).all() and (changed < 0.3).all()


def test_brightness_contrast_stay_in_range():
    x = batch()
    y = BatchAugment(AugmentConfig(brightness=0.5, contrast=0.9))(x, torch.Generator())
    assert y.min() >= 0 and y.max() <= 255 and not torch.equal(x, y)


@pytest.mark.parametrize("kw", [{"rotation": -1}, {"zoom": 1.5}, {"erasing": 2},
                                {"erasing_area": (0.5, 0.1)}, {"shear": "a"}])
def test_bad_parameters(kw):
    with pytest.raises(ConfigError, match="augment"):
        AugmentConfig(**kw)
