"""From a config's ``data:`` section to in-memory uint8 arrays per split.

The whole dataset is held as one uint8 array per split (FER2013 at 48 px: 83 MB), made by
:func:`ekspresi.data.cache.faces_array` (the same ``prepare_face`` inference uses), and
labels are re-indexed to the run's class list. Balancing touches the training part only,
after the split, so validation and test keep their real class mix -- unless a paper's
protocol is re-run with ``balance_scope: pooled`` (balance everything, then split). The
other pre-split selections of paper protocols live in :mod:`ekspresi.data.protocol`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ekspresi.errors import ConfigError
from ekspresi.labels import ALL_CLASSES, parse_classes
from ekspresi.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Split:
    images: np.ndarray       # uint8 (N, size, size)
    labels: np.ndarray       # int64 indices into the run's classes
    paths: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class PreparedData:
    classes: tuple[str, ...]
    splits: dict[str, Split]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> n
    notes: dict[str, object] = field(default_factory=dict)          # balancing, drops


def prepare_data(cfg: TrainConfig, size: int) -> PreparedData:
    from ekspresi.data import load_many
    from ekspresi.data.balance import balance
    from ekspresi.data.cache import faces_array
    from ekspresi.data.loading import parse_spec, select_classes
    from ekspresi.data.protocol import apply_protocol
    from ekspresi.data.splits import make_splits

    d = cfg.data
    classes = parse_classes(d.classes)
    optional = [s for s in d.optional_sources if parse_spec(s)[1].exists()]
    # all classes first: a relabel (CK+ contempt -> neutral) must happen before selection
    ss = load_many([*d.sources, *optional], skip_bad=d.skip_bad)
    ss, protocol_notes = apply_protocol(ss, relabel_map=d.relabel,
                                        frames_per_sequence=d.frames_per_sequence,
                                        kdef_views=d.kdef_views, kdef_sessions=d.kdef_sessions)
    ss = select_classes(ss, classes)
    notes: dict[str, object] = {"loaded": len(ss), "dropped": dict(ss.report.dropped),
                                "bad_inputs": len(ss.report.bad)}
    if d.optional_sources:
        notes["optional_sources"] = {s: ("used" if s in optional else "not found, left out")
                                     for s in d.optional_sources}
        for s in d.optional_sources:
            if s not in optional:
                log.warning("optional source %s not found: left out", s)
    notes.update(protocol_notes)
    if d.use_splits:
        keep = np.isin(ss.splits, d.use_splits)
        notes["official_splits_used"] = list(d.use_splits)
        ss = ss.subset(keep)
        if d.split != "official":  # re-split: the official names no longer mean anything
            ss.splits[:] = ""
    pooled = d.balance_scope == "pooled" and d.balance not in (None, "none")
    if pooled:
        pooled_before = ss.class_counts(classes)
        ss = balance(ss, d.balance, per_class=d.per_class, seed=cfg.seed, classes=classes)
    parts = make_splits(ss, d.split, ratios=d.ratios, seed=d.split_seed, k=d.k, fold=d.fold,
                        val_fraction=d.val_fraction)
    for name in ("train", "val", "test"):
        if not len(parts[name]):
            raise ConfigError(f"data: the {name} split is empty (sources {d.sources}, "
                              f"split {d.split!r})")
    before = parts["train"].class_counts(classes)
    if d.balance not in (None, "none") and not pooled:
        parts["train"] = balance(parts["train"], d.balance, per_class=d.per_class,
                                 seed=cfg.seed, classes=classes)
    notes["balance"] = {"method": d.balance or "none", "per_class": d.per_class,
                        "scope": d.balance_scope, "train_before": before}
    if pooled:
        notes["balance"]["pooled_before"] = pooled_before
    if d.val_per_class:
        parts["val"] = balance(parts["val"], "undersample", per_class=d.val_per_class,
                               seed=cfg.seed)
        notes["val_per_class"] = d.val_per_class
    index = np.full(len(ALL_CLASSES), -1, np.int64)
    for i, c in enumerate(classes):
        index[ALL_CLASSES.index(c)] = i
    splits, counts = {}, {}
    for name in ("train", "val", "test"):
        part = parts[name]
        labels = index[part.labels]
        if (labels < 0).any():
            raise ConfigError(f"data: {name} split has labels outside {classes}")
        splits[name] = Split(faces_array(part, size), labels, part.paths.astype(str),
                             part.sources.astype(str))
        counts[name] = part.class_counts(classes)
        log.info("%s: %d images %s", name, len(part), counts[name])
    missing = [c for c, n in counts["train"].items() if n == 0]
    if missing:
        log.warning("classes without training images: %s", ", ".join(missing))
    return PreparedData(classes, splits, counts, notes)
