"""Training: configs, the loop, checkpoints/resume, ONNX export of the result.

``run_training(config, out_dir, resume=False, ...) -> Path`` is the Python API behind
``ekspresi train``; it is loaded lazily so that ``ekspresi --help`` does not import torch.
"""

from __future__ import annotations

__all__ = ["run_training", "load_config", "TrainConfig"]


def __getattr__(name: str):
    if name == "run_training":
        from ekspresi.train.loop import run_training

        return run_training
    if name in ("load_config", "TrainConfig"):
        from ekspresi.train import config

        return getattr(config, name)
    raise AttributeError(name)
