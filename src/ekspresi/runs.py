"""The run directory contract: the one place that names the files of a training run.

``ekspresi train`` writes a run directory; evaluation, comparison, export, distillation,
campaigns and the web app's Experiments page read it. All of them take the file names from
here, so a name changes in one place. The module sits at the ground floor (numpy only): the
inference-only install reads runs too (``ekspresi export``, the web app).

    config.resolved.yaml   the validated config the run used (``--resume`` reads it back)
    env.json               versions, git commit, host, threads
    metrics.jsonl / .csv   one row per epoch
    train.log              the run's log
    checkpoints/best.pt    the model selected on validation
    checkpoints/last.pt    the latest epoch, with every random state (``--resume``)
    final_weights.pt       the trained model's weights (a distillation teacher)
    final_metrics.json     headline numbers, counts, notes
    predictions_test.npz   test labels, probabilities, classes, sample paths
    bundle/                the ONNX bundle of the selected model
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ekspresi.errors import BadInputError

CONFIG_NAME = "config.resolved.yaml"
ENV_NAME = "env.json"
HISTORY_JSONL = "metrics.jsonl"
HISTORY_CSV = "metrics.csv"
LOG_NAME = "train.log"
FINAL_NAME = "final_metrics.json"
PREDICTIONS_NAME = "predictions_test.npz"
PROGRESS_NAME = "progress.json"          # epoch/step/speed now (`ekspresi campaign status`)
FINAL_WEIGHTS = "final_weights.pt"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
BUNDLE_DIR = "bundle"

#: Any of these makes a folder a run directory (a run killed early has only some).
RUN_MARKERS = (FINAL_NAME, HISTORY_JSONL, HISTORY_CSV, CONFIG_NAME, PREDICTIONS_NAME,
               BUNDLE_DIR, LOG_NAME, CHECKPOINT_DIR)


def best_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / BEST_CHECKPOINT


def last_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def bundle_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / BUNDLE_DIR


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in RUN_MARKERS)


def slug(name: str) -> str:
    """A dataset's name as a file stem (``ekspresi evaluate --out`` names its plots
    ``plots/{slug}_*.png``; ``ekspresi export --evaluation`` finds them by it)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"


#: Key aliases accepted in predictions_test.npz (first match wins).
_NPZ_KEYS = {
    "labels": ("labels", "y_true", "targets", "y"),
    "proba": ("probabilities", "proba", "probs", "scores"),
    "paths": ("paths", "sample_paths", "files"),
    "classes": ("classes", "class_names"),
    "sources": ("sources",),
}


@dataclass
class Predictions:
    """Stored test-set predictions of a run (labels index ``classes``)."""

    labels: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]
    paths: np.ndarray | None = None
    sources: np.ndarray | None = None   # dataset of each sample (combined test sets)


def read_predictions(path: str | Path, classes: tuple[str, ...] | None = None) -> Predictions:
    """Load predictions_test.npz; ``classes`` is used when the file does not name them."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise BadInputError(str(p), f"cannot read predictions ({exc})") from None

    def pick(kind: str):
        for key in _NPZ_KEYS[kind]:
            if key in data:
                return data[key]
        return None

    labels, proba = pick("labels"), pick("proba")
    if labels is None or proba is None:
        raise BadInputError(str(p), f"needs test labels and probabilities; it has "
                                    f"{sorted(data)}")
    names = pick("classes")
    cls = tuple(str(c) for c in names) if names is not None else classes
    if not cls:
        raise BadInputError(str(p), f"does not name its classes and the run has no bundle "
                                    f"or {FINAL_NAME} that does")
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if proba.ndim != 2 or proba.shape != (len(labels), len(cls)):
        raise BadInputError(str(p), f"probabilities {proba.shape} do not match "
                                    f"{len(labels)} labels x {len(cls)} classes")
    paths, sources = pick("paths"), pick("sources")
    return Predictions(labels, proba, cls,
                       None if paths is None else np.asarray(paths).astype(str),
                       None if sources is None else np.asarray(sources).astype(str))
