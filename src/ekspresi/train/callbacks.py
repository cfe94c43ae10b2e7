"""Early stopping and the wall-clock budget (the two reasons a run ends before its epochs),
a stop request from outside (the campaign's ``stop``), and the reduce-on-plateau
learning-rate rule. All keep their state in plain dicts so
checkpoints can restore them exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


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


class Plateau:
    """Keras' ``ReduceLROnPlateau``, rule for rule, because paper 1's result depends on it.

    torch's ``ReduceLROnPlateau`` differs in three ways that matter there: it cuts after
    ``patience + 1`` bad epochs (Keras after ``patience``), its default threshold is relative,
    and it skips cuts smaller than 1e-8 instead of stopping at ``min_lr``. Here an epoch
    improves when the monitor beats the best by more than ``min_delta`` (absolute); after
    ``patience`` epochs in a row without improvement every learning rate is multiplied by
    ``factor`` (not below ``min_lr``, and only while it is above ``min_lr``), the count
    restarts, and the next ``cooldown`` epochs are not counted. ``step(value)`` is called
    once per epoch with the monitored value (``mode`` ``max`` for accuracy).
    """

    def __init__(self, optimizer, *, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.min_delta = abs(float(min_delta))
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0
        self.cuts: list[int] = []      # epochs (1-based) after which the rate was cut
        self.epochs_seen = 0

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > self.best
        return value + self.min_delta < self.best

    def step(self, value: float) -> bool:
        """Record one epoch's monitored value; True when the learning rate was cut."""
        self.epochs_seen += 1
        value = float(value)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(value):
            self.best, self.wait = value, 0
            return False
        if self.cooldown_counter > 0:
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        cut = False
        for group in self.optimizer.param_groups:
            old = float(group["lr"])
            if old > self.min_lr:  # Keras compares with float32(min_lr); same for our values
                group["lr"] = max(old * self.factor, self.min_lr)
                cut = True
        if cut:
            self.cuts.append(self.epochs_seen)
            self.cooldown_counter, self.wait = self.cooldown, 0
        return cut

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            setattr(self, k, list(v) if k == "cuts" else v)


class TimeBudget:
    """Stop after an epoch when the next one would not fit in ``minutes`` (time spent in
    this process only: a resumed run gets a fresh budget)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else float(minutes) * 60.0

    def exhausted(self, elapsed: float, last_epoch: float) -> bool:
        return self.seconds is not None and elapsed + last_epoch > self.seconds


class StopRequest:
    """A request to stop a training at its next checkpoint, from outside the loop.

    Set in-process by :meth:`set` (the campaign's SIGTERM/SIGINT handler), or by another
    process creating ``file`` (``ekspresi campaign stop``), so a stop never waits for the end
    of a CPU epoch that can take a quarter of an hour, and never loses more than one step.
    """

    def __init__(self, file: Path | None = None):
        self.file = file
        self._set = False

    def set(self) -> None:
        self._set = True

    def __call__(self) -> bool:
        return self._set or (self.file is not None and self.file.exists())


class TrainingInterrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by :func:`ekspresi.train.loop.run_training` after a :class:`StopRequest`: a
    checkpoint of the exact position (epoch, step) was saved and ``--resume`` continues it."""

    def __init__(self, run_dir: Path, epoch: int, step: int, steps: int):
        super().__init__(f"{run_dir}: stopped on request in epoch {epoch + 1} at step "
                         f"{step}/{steps}; the checkpoint continues it exactly")
        self.run_dir, self.epoch, self.step, self.steps = run_dir, epoch, step, steps
