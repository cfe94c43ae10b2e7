"""Selections a paper made on its datasets before splitting, so its protocol can be re-run.

Paper 3 (the UII thesis) pooled FER2013, CK+ and KDEF like this, and each step changes its
figures:

- **CK+: one frame per sequence.** CK+48 holds the last three frames of each of the 327
  sequences (981 images); the thesis used 327 images, one per sequence. Three near-identical
  frames of one sequence in a random split put copies of test faces into training.
  :func:`last_frames` keeps the last ``n`` frames (the expression's apex) of each sequence.
- **CK+ contempt counted as neutral.** The thesis' 18 CK+ "netral" images are the 18
  contempt sequences (CK+ has no neutral class). :func:`relabel` maps classes before the
  class selection, so ``{contempt: neutral}`` keeps them as neutral instead of dropping them.
- **KDEF frontal images.** 490 images = 70 people x 7 expressions, one session, straight
  view. :func:`kdef_subset` keeps the given views (``S`` = straight) and sessions (``A``).
- **Pooled undersampling, then the split** (in ``ekspresi.train.data`` with
  ``balance_scope: pooled``): every class is cut to the smallest pooled class (676 with
  KDEF: 547 FER2013 + 59 CK+ + 70 KDEF disgust faces) and only then split 80/10/10, so
  validation and test are balanced too (a constant predictor scores 1/7 there).

Every step counts what it removes in the returned notes, and a step that is configured but
matches no sample is reported too (e.g. no KDEF folder given), so nothing changes silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath

import numpy as np

from ekspresi.data.coded import KDEF_NAME
from ekspresi.data.records import SampleSet
from ekspresi.errors import ConfigError
from ekspresi.labels import ALL_CLASSES, canonical

log = logging.getLogger(__name__)

#: CK+ file names: subject, sequence, frame (``S005_001_00000011.png``).
CKPLUS_FRAME = re.compile(r"^(S\d{3})_(\d{3})_(\d+)\.[A-Za-z]+$")

KDEF_VIEWS = ("S", "HL", "HR", "FL", "FR")
KDEF_SESSIONS = ("A", "B")


def _names(ss: SampleSet) -> list[str]:
    return [PurePath(str(p)).name for p in ss.paths]


def last_frames(ss: SampleSet, n: int) -> tuple[SampleSet, int]:
    """Keep the last ``n`` frames of every CK+ sequence (file names ``S005_001_00000011``);
    samples whose names do not follow the CK+ scheme are kept as they are. Returns the set
    and the number of frames removed."""
    if n < 1:
        raise ConfigError(f"data.frames_per_sequence must be >= 1, got {n}")
    frames: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    keep = np.ones(len(ss), bool)
    for i, (name, src) in enumerate(zip(_names(ss), ss.sources)):
        m = CKPLUS_FRAME.match(name)
        if m:
            frames.setdefault((str(src), m.group(1), m.group(2)), []).append((int(m.group(3)), i))
    for members in frames.values():
        for _, i in sorted(members)[:-n]:
            keep[i] = False
    removed = int((~keep).sum())
    if frames:
        log.info("one frame per sequence: %d sequences, kept the last %d frame(s) of each, "
                 "removed %d", len(frames), n, removed)
    return (ss.subset(keep) if removed else ss), removed


def relabel(ss: SampleSet, mapping: Mapping[str, str]) -> tuple[SampleSet, dict[str, int]]:
    """Map classes (any synonym, e.g. ``{contempt: neutral}``); returns the set and the
    number of samples moved per ``"from -> to"``."""
    moved: dict[str, int] = {}
    if not mapping:
        return ss, moved
    labels = ss.labels.copy()
    for src, dst in mapping.items():
        a, b = ALL_CLASSES.index(canonical(str(src))), ALL_CLASSES.index(canonical(str(dst)))
        hit = ss.labels == a
        labels[hit] = b
        moved[f"{ALL_CLASSES[a]} -> {ALL_CLASSES[b]}"] = int(hit.sum())
    out = SampleSet(ss.images, labels, ss.sources, ss.splits, ss.subjects, ss.paths, ss.soft,
                    ss.report)
    for what, n in moved.items():
        log.info("relabelled %d samples %s", n, what)
    return out, moved


def kdef_subset(ss: SampleSet, views: Sequence[str] | None = None,
                sessions: Sequence[str] | None = None) -> tuple[SampleSet, int, int]:
    """Keep KDEF images (file names ``AF01ANS.JPG``) of the given views and sessions; other
    samples are kept. Returns the set, the KDEF images kept and the KDEF images removed."""
    views_u = None if views is None else {v.upper() for v in views}
    sessions_u = None if sessions is None else {s.upper() for s in sessions}
    for given, valid, key in ((views_u, KDEF_VIEWS, "kdef_views"),
                              (sessions_u, KDEF_SESSIONS, "kdef_sessions")):
        bad = sorted((given or set()) - set(valid))
        if bad:
            raise ConfigError(f"data.{key}: unknown {bad}; use {', '.join(valid)}")
    keep = np.ones(len(ss), bool)
    kdef = 0
    for i, name in enumerate(_names(ss)):
        m = KDEF_NAME.match(name)
        if not m:
            continue
        kdef += 1
        session, view = m.group(1).upper(), m.group(5).upper()
        if (views_u is not None and view not in views_u) or (
                sessions_u is not None and session not in sessions_u):
            keep[i] = False
    removed = int((~keep).sum())
    return (ss.subset(keep) if removed else ss), kdef - removed, removed


def apply_protocol(ss: SampleSet, *, relabel_map: Mapping[str, str] | None = None,
                   frames_per_sequence: int | None = None,
                   kdef_views: Sequence[str] | None = None,
                   kdef_sessions: Sequence[str] | None = None) -> tuple[SampleSet, dict]:
    """All pre-split selections in a fixed order (frames, KDEF subset, relabel); returns the
    set and notes for ``final_metrics.json`` (only the configured steps appear)."""
    notes: dict[str, object] = {}
    if frames_per_sequence is not None:
        ss, removed = last_frames(ss, frames_per_sequence)
        notes["frames_per_sequence"] = {"kept_per_sequence": frames_per_sequence,
                                        "removed": removed}
        if not removed:
            log.warning("data.frames_per_sequence is set but no CK+ sequence had more frames")
    if kdef_views is not None or kdef_sessions is not None:
        ss, kept, removed = kdef_subset(ss, kdef_views, kdef_sessions)
        notes["kdef"] = {"views": list(kdef_views or KDEF_VIEWS),
                         "sessions": list(kdef_sessions or KDEF_SESSIONS),
                         "kept": kept, "removed": removed}
        if not kept and not removed:
            log.info("data.kdef_views/kdef_sessions: no KDEF images among the sources")
    if relabel_map:
        ss, moved = relabel(ss, relabel_map)
        notes["relabel"] = moved
    return ss, notes
