"""Early stopping and the wall-clock budget: the two reasons a run ends before its epochs.
Both keep their state in plain dicts so checkpoints can restore them exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Monitor:
    """Tracks the best value of ``val_acc`` (higher is better) or ``val_loss``; an epoch
    improves when it beats the best by more than ``min_delta``."""

    metric: str = "val_acc"
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        sign = 1.0 if self.metric == "val_acc" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            setattr(self, k, v)


class TimeBudget:
    """Stop after an epoch when the next one would not fit in ``minutes`` (time spent in
    this process only: a resumed run gets a fresh budget)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else float(minutes) * 60.0

    def exhausted(self, elapsed: float, last_epoch: float) -> bool:
        return self.seconds is not None and elapsed + last_epoch > self.seconds
