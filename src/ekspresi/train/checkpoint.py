"""Checkpoints that make a resumed run identical to an uninterrupted one.

Besides model/optimiser/scheduler/EMA state a checkpoint holds every random state the loop
draws from (torch's global RNG for dropout, the data generator for shuffling and
augmentation, numpy's and Python's), the epoch, the history and the early-stopping state.
Files are written to a temporary name and renamed, so a kill during the write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ekspresi.errors import ModelError


def rng_state(gen: torch.Generator, np_rng: np.random.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": gen.get_state(),
             "numpy": np_rng.bit_generator.state, "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()  # dropout masks drawn on GPUs
    return state


def restore_rng(state: dict[str, Any], gen: torch.Generator, np_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    np_rng.bit_generator.state = state["numpy"]
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)  # else (resumed on a CPU or other GPUs): new draws


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found (cannot resume this run)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ModelError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
