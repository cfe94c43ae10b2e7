"""Canonical emotion classes, the synonyms datasets use for them, and class subsets.

Every dataset names emotions its own way (CK+ says ``anger``/``sadness``, FER+ says
``happiness``, JAFFE codes them as ``AN``/``SA``, the Indonesian papers say ``marah``).
All of that is mapped here, once, to one canonical vocabulary so that a label index means
the same thing in every reader, model and report. Unknown names are an error, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ekspresi.errors import LabelError

#: The seven FER2013 classes, in FER2013's own index order (emotion 0-6 in fer2013.csv).
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Classes that exist in some datasets but not in FER2013 (FER+ and CK+ have contempt).
EXTRA_CLASSES: tuple[str, ...] = ("contempt",)

#: Every class ekspresi knows; indices 0-6 coincide with :data:`CLASSES`.
ALL_CLASSES: tuple[str, ...] = CLASSES + EXTRA_CLASSES

#: FER+ vote columns, in the order of ``label.csv`` / ``fer2013new.csv``.
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)

#: Name used by some dataset or paper -> canonical class. Keys are lower case.
SYNONYMS: dict[str, str] = {
    # English variants
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt",
    # Indonesian (the source papers)
    "marah": "angry", "jijik": "disgust", "takut": "fear", "ketakutan": "fear",
    "senang": "happy", "bahagia": "happy", "sedih": "sad", "terkejut": "surprise",
    "kaget": "surprise", "netral": "neutral",
    # JAFFE file codes
    "an": "angry", "di": "disgust", "fe": "fear", "ha": "happy", "sa": "sad", "su": "surprise",
    "ne": "neutral",
}

#: KDEF file codes (the two letters after the subject id in e.g. ``AF01ANS.JPG``).
KDEF_CODES: dict[str, str] = {
    "AF": "fear", "AN": "angry", "DI": "disgust", "HA": "happy", "NE": "neutral",
    "SA": "sad", "SU": "surprise",
}

#: Named subsets used by the papers (``--classes three`` or an explicit list).
SUBSETS: dict[str, tuple[str, ...]] = {
    "fer7": CLASSES,
    "ferplus8": ALL_CLASSES,
    "three": ("happy", "sad", "surprise"),
    "ckplus6": ("angry", "disgust", "fear", "happy", "sad", "surprise"),
}


def canonical(name: str) -> str:
    """Map any known emotion name (any case, surrounding spaces) to its canonical class."""
    key = name.strip().lower()
    try:
        return SYNONYMS[key]
    except KeyError:
        known = ", ".join(sorted(set(SYNONYMS.values())))
        raise LabelError(f"unknown emotion label {name!r}; known classes: {known} "
                         f"(and synonyms such as anger, sadness, happiness)") from None


def is_known(name: str) -> bool:
    """True when :func:`canonical` would accept ``name``."""
    return name.strip().lower() in SYNONYMS


def class_index(name: str) -> int:
    """Index of a class in :data:`ALL_CLASSES` (FER2013 order, contempt last)."""
    return ALL_CLASSES.index(canonical(name))


def parse_classes(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Resolve a class selection: ``None`` -> the 7 FER2013 classes, a subset name
    (``three``), or a comma list / sequence of names in any synonym.

    The result keeps canonical FER2013 order, so ``sad,happy`` and ``happy,sad`` give the
    same model outputs order.
    """
    if spec is None:
        return CLASSES
    if isinstance(spec, str):
        if spec.strip().lower() in SUBSETS:
            return SUBSETS[spec.strip().lower()]
        names: Iterable[str] = [s for s in spec.split(",") if s.strip()]
    else:
        names = spec
    chosen = {canonical(n) for n in names}
    if not chosen:
        raise LabelError("empty class selection")
    return tuple(c for c in ALL_CLASSES if c in chosen)
