"""Matching a model's classes to a test set's classes, with nothing mixed silently.

Cross-dataset tests meet three cases: the data has classes the model cannot output (CK+
contempt for a FER2013 model, or six classes for a 3-class model); the model has classes the
data lacks (neutral on CK+48); or the user narrows the evaluation to a subset. Samples of a
class outside the evaluated classes are excluded and counted per class; evaluated classes
with no samples stay in the output space (predicting them is an error) and are listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ekspresi.errors import LabelError
from ekspresi.labels import ALL_CLASSES


@dataclass
class ClassMapping:
    """How one test set is scored against one model."""

    model_classes: tuple[str, ...]
    classes: tuple[str, ...]          # evaluated output space, in the model's order
    columns: np.ndarray               # model output columns of ``classes``
    keep: np.ndarray                  # bool mask over the data's samples
    y: np.ndarray                     # labels of kept samples, indices into ``classes``
    excluded: dict[str, int]          # data class -> samples excluded
    absent: tuple[str, ...]           # evaluated classes with no samples in the data
    notes: list[str] = field(default_factory=list)

    @property
    def restricted(self) -> bool:
        """True when the model's decision is narrowed to a subset of its outputs."""
        return len(self.classes) < len(self.model_classes)

    def to_dict(self) -> dict:
        return {"model_classes": list(self.model_classes), "classes": list(self.classes),
                "excluded_samples": dict(self.excluded),
                "n_excluded": int(sum(self.excluded.values())),
                "classes_absent_from_data": list(self.absent),
                "decision_restricted": self.restricted, "notes": list(self.notes)}


def map_classes(labels: np.ndarray, model_classes: Sequence[str],
                only: Sequence[str] | None = None) -> ClassMapping:
    """Score data ``labels`` (indices into :data:`ALL_CLASSES`) against ``model_classes``,
    optionally only on the classes ``only`` (canonical names)."""
    model_classes = tuple(model_classes)
    if only is not None:
        missing = [c for c in only if c not in model_classes]
        if missing:
            raise LabelError(f"--classes {', '.join(missing)}: the model has no such output "
                             f"(its classes: {', '.join(model_classes)})")
        classes = tuple(c for c in model_classes if c in set(only))
    else:
        classes = model_classes
    labels = np.asarray(labels, dtype=np.int64)
    names = np.array(ALL_CLASSES, dtype=object)[labels] if len(labels) else np.array([], object)
    keep = np.isin(names, classes)
    counts = Counter(names[~keep].tolist())
    excluded = {c: int(counts[c]) for c in ALL_CLASSES if counts.get(c)}
    data_classes = set(names.tolist())
    absent = tuple(c for c in classes if c not in data_classes)
    pos = {c: i for i, c in enumerate(classes)}
    y = np.array([pos[n] for n in names[keep]], dtype=np.int64)
    columns = np.array([model_classes.index(c) for c in classes], dtype=np.int64)

    notes: list[str] = []
    if excluded:
        parts = ", ".join(f"{c} {n}" for c, n in excluded.items())
        why = "not evaluated" if only is not None else "the model has no such class"
        notes.append(f"excluded {sum(excluded.values())} samples whose class is outside the "
                     f"evaluated classes ({why}): {parts}")
    if only is not None and len(classes) < len(model_classes):
        notes.append(f"evaluated on {len(classes)} of the model's {len(model_classes)} "
                     f"classes ({', '.join(classes)}); the model's probabilities were "
                     "renormalised over these classes, so it decides among them only")
    elif len(model_classes) < len(data_classes):
        notes.append(f"the model has {len(model_classes)} classes "
                     f"({', '.join(model_classes)}); only samples of these classes are used")
    if absent:
        notes.append(f"the data has no samples of {', '.join(absent)}; predicting "
                     f"{'it' if len(absent) == 1 else 'them'} counts as an error, and "
                     "averages run over the classes present")
    return ClassMapping(model_classes, classes, columns, keep, y, excluded, absent, notes)


def restrict_proba(proba: np.ndarray, mapping: ClassMapping) -> np.ndarray:
    """Model probabilities -> probabilities over ``mapping.classes`` (renormalised when the
    evaluated classes are a subset, so the arg-max is the model's choice among them)."""
    out = np.asarray(proba, dtype=np.float64)[:, mapping.columns]
    if mapping.restricted:
        out = out / np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)
    return out
