"""The one metrics vocabulary: what a run, a bundle and an evaluation call their numbers.

Every score of a set of faces is a :class:`SplitMetrics` block with the key names
``ekspresi evaluate`` uses (``accuracy``, ``n_samples``, ``macro_recall``, ``macro_f1``,
``log_loss``, ``confusion_matrix``, ...). Documents hold blocks by the name of the split or
test set:

- ``final_metrics.json`` of a run and the ``metrics`` of a bundle's ``model.json`` are a
  :class:`Metrics`: ``splits`` maps ``train`` / ``val`` / ``test`` (the run's own splits),
  ``val+test`` (official splits pooled, paper 2's protocol) and any evaluated test set
  (``fer2013 test``, folded in by ``ekspresi export --evaluation``) to its block, beside the
  run-level collapse flags, timings and device;
- ``metrics.json`` of ``ekspresi evaluate`` (``ekspresi.metrics/1``) holds the same blocks
  under ``datasets``.

Writers build these models and readers read their fields, so nobody guesses between
``test_acc``, ``test_accuracy`` and ``accuracy``. The module sits on the ground floor
(pydantic only): training, export, evaluation and the web app all import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ekspresi.errors import BadInputError

#: The run's own splits, in training order; any other split name is an evaluated test set.
TRAIN, VAL, TEST = "train", "val", "test"
#: Validation and test pooled (official splits only).
VAL_PLUS_TEST = "val+test"
RUN_SPLITS = (TRAIN, VAL, TEST, VAL_PLUS_TEST)


class SplitMetrics(BaseModel):
    """Scores of one split or test set. ``ekspresi evaluate`` blocks carry more keys
    (per-class table, calibration, ``schema``, ...); they are kept as they are."""

    model_config = ConfigDict(extra="allow")

    n_samples: int | None = None
    accuracy: float | None = None
    #: Percentile bootstrap interval of ``accuracy`` (``ekspresi evaluate``).
    accuracy_ci95: list[float | None] | None = None
    #: The int8 bundle's float graph on the same faces (``ekspresi export --int8``).
    fp32_accuracy: float | None = None
    #: Cross-entropy of the model's probabilities on these faces.
    log_loss: float | None = None
    #: The training objective averaged over an epoch's (augmented) batches: the train split.
    loss: float | None = None
    balanced_accuracy: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    confusion_matrix: list[list[int]] | None = None
    #: A (near-)constant predictor on these faces (:mod:`ekspresi.evaluate.collapse`).
    collapsed: bool | None = None
    #: Test-time augmentation of an evaluation (``mode``, and the gain when used).
    tta: dict[str, Any] | None = None
    #: The same scores per source dataset of a combined test set.
    by_source: dict[str, SplitMetrics] = Field(default_factory=dict)
    note: str | None = None


class Metrics(BaseModel):
    """Blocks by split name: the ``metrics`` of a bundle's ``model.json``, and the core of
    a run's ``final_metrics.json`` (:class:`RunMetrics`)."""

    model_config = ConfigDict(extra="allow")

    splits: dict[str, SplitMetrics] = Field(default_factory=dict)

    def split(self, name: str) -> SplitMetrics:
        """The block of ``name``, empty (every score None) when the document lacks it."""
        return self.splits.get(name) or SplitMetrics()

    @property
    def test(self) -> SplitMetrics:
        return self.split(TEST)

    @property
    def test_sets(self) -> dict[str, SplitMetrics]:
        """The held-out results to show first: the evaluated test sets when there are
        any, else the run's own ``test`` split (when it was scored)."""
        evaluated = {k: v for k, v in self.splits.items() if k not in RUN_SPLITS}
        if evaluated:
            return evaluated
        return {TEST: self.splits[TEST]} if TEST in self.splits else {}

    def to_dict(self) -> dict[str, Any]:
        """The object to write as JSON: only what was set, so no null noise."""
        return self.model_dump(exclude_unset=True)


class RunMetrics(Metrics):
    """A run's ``final_metrics.json``: the splits plus the run's collapse flags, timings,
    device and the facts readers show beside them. Dataset counts, notes and the rest of
    what training records are kept as they are (extra keys)."""

    name: str | None = None
    model: str | None = None
    classes: list[str] | None = None
    #: ``{"collapsed", "val": check, "test": check, "message"?}`` (the final check).
    collapse: dict[str, Any] | None = None
    train_time_seconds: float | None = None
    train_img_per_s: float | None = None
    device: str | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    stop_reason: str | None = None
    #: ``imagenet...``, ``scratch`` or ``scratch: why`` (ImageNet weights missing).
    init: str | None = None
    #: ``paper: ...`` or ``ours: ...`` (the config's ``data.protocol``).
    protocol: str | None = None
    #: Images per class per split: ``{split: {class: n}}``.
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    #: What data preparation did (balancing, drops, sources), for the report.
    data_notes: dict[str, Any] = Field(default_factory=dict)

    @property
    def collapsed(self) -> bool:
        return bool((self.collapse or {}).get("collapsed"))


M = TypeVar("M", bound=Metrics)

#: Flat keys of the files ekspresi wrote before this vocabulary (``final_metrics.json`` up
#: to 0.x: ``val_acc``...; bundle ``metrics``: ``test_accuracy``...) -> (split, field).
_LEGACY_KEYS = {
    "train_acc": (TRAIN, "accuracy"), "train_loss": (TRAIN, "loss"),
    "val_acc": (VAL, "accuracy"), "val_loss": (VAL, "log_loss"),
    "val_macro_recall": (VAL, "macro_recall"),
    "test_acc": (TEST, "accuracy"), "test_loss": (TEST, "log_loss"),
    "test_macro_recall": (TEST, "macro_recall"), "test_confusion": (TEST, "confusion_matrix"),
    "val_accuracy": (VAL, "accuracy"), "test_accuracy": (TEST, "accuracy"),
    "fp32_test_accuracy": (TEST, "fp32_accuracy"),
}
_LEGACY_BLOCK = {"n": "n_samples", "acc": "accuracy", "confusion": "confusion_matrix"}


def _legacy_block(block: dict[str, Any]) -> dict[str, Any]:
    return {_LEGACY_BLOCK.get(k, k): v for k, v in block.items()}


def upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """A document in the flat vocabulary of earlier versions, rewritten into ``splits``
    (a current document is returned as it is). The one place old key names are read, so
    runs and bundles made by earlier versions still show their scores everywhere."""
    if "splits" in data:
        return data
    out = dict(data)
    splits: dict[str, dict[str, Any]] = {}
    for key, (split, field) in _LEGACY_KEYS.items():
        value = out.pop(key, None)
        if value is not None:
            splits.setdefault(split, {})[field] = value
    by_source = out.pop("test_by_source", None)
    if isinstance(by_source, dict) and by_source:
        splits.setdefault(TEST, {})["by_source"] = {
            src: _legacy_block(b) for src, b in by_source.items() if isinstance(b, dict)}
    pooled = out.pop("val_plus_test", None)
    if isinstance(pooled, dict):
        splits[VAL_PLUS_TEST] = _legacy_block(pooled)
    for key, value in list(out.items()):  # evaluated test sets folded into bundle metrics
        if isinstance(value, dict) and "accuracy" in value:
            splits[key] = out.pop(key)
    out["splits"] = splits
    return out


def read_metrics(data: Any, where: str, kind: type[M] = Metrics) -> M:
    """Parse a bundle's ``metrics`` (or with ``kind=RunMetrics`` a ``final_metrics.json``);
    a shape that is not one is a :class:`BadInputError` naming ``where``."""
    if not isinstance(data, dict):
        raise BadInputError(where, f"a JSON {type(data).__name__}, not an object")
    try:
        return kind.model_validate(upgrade_legacy(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadInputError(where, f"metrics field {loc}: {first['msg']}") from None


def load_metrics(path: str | Path) -> RunMetrics:
    """Read a run's ``final_metrics.json`` (unreadable JSON is a :class:`BadInputError`)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise BadInputError(str(p), f"{exc.__class__.__name__}: {exc}") from None
    return read_metrics(data, str(p), RunMetrics)


def split_metrics(block: Any, where: str) -> SplitMetrics:
    """One block (e.g. a test set of an ``ekspresi evaluate`` ``metrics.json``)."""
    try:
        return SplitMetrics.model_validate(block)
    except ValidationError as exc:
        raise BadInputError(where, f"metrics block: {exc.errors()[0]['msg']}") from None
