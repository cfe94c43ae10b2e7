"""Checkpoints (:mod:`ekspresi.train.checkpoint`): the random states they keep replay the
same draws, a failed write leaves the previous checkpoint intact, and a missing or broken
file is a clear error naming it."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ekspresi.errors import ModelError
from ekspresi.train import checkpoint as ckpt


def _draws(gen: torch.Generator, np_rng: np.random.Generator) -> tuple:
    return (torch.rand(3).tolist(), torch.rand(3, generator=gen).tolist(),
            np_rng.random(3).tolist(), [random.random() for _ in range(3)])


def test_restored_random_states_replay_the_same_draws(tmp_path):
    """Every source of randomness the training loop draws from (torch's global RNG, the
    data generator, numpy's and Python's) continues where the checkpoint left it, also
    after the state went through a file."""
    gen = torch.Generator().manual_seed(1)
    np_rng = np.random.default_rng(2)
    ckpt.save(tmp_path / "last.pt", {"rng": ckpt.rng_state(gen, np_rng)})
    want = _draws(gen, np_rng)
    _draws(gen, np_rng)                                   # the RNGs move on
    other_gen, other_np = torch.Generator().manual_seed(99), np.random.default_rng(99)
    ckpt.restore_rng(ckpt.load(tmp_path / "last.pt")["rng"], other_gen, other_np)
    assert _draws(other_gen, other_np) == want
    # each of the four sources is restored, not just one of them
    assert len({str(d) for d in want}) == 4


def test_save_creates_the_folder_and_a_failed_write_keeps_the_old_checkpoint(tmp_path,
                                                                              monkeypatch):
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.save(path, {"epoch": 1})
    assert ckpt.load(path) == {"epoch": 1}
    ckpt.save(path, {"epoch": 2})
    assert ckpt.load(path) == {"epoch": 2}
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]   # no temporary left

    def killed_mid_write(state, f):
        with open(f, "wb") as out:
            out.write(b"\x80\x02half a pickle")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(path, {"epoch": 3})
    monkeypatch.undo()
    assert ckpt.load(path) == {"epoch": 2}                 # the previous one is intact


def test_missing_or_unreadable_checkpoint_is_a_model_error_naming_it(tmp_path):
    missing = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(ModelError, match="checkpoint not found") as err:
        ckpt.load(missing)
    assert str(missing) in str(err.value)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read checkpoint") as err:
        ckpt.load(broken)
    assert str(broken) in str(err.value)
