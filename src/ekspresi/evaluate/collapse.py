"""Spotting a collapsed model: one that predicts (nearly) the same class for every face.

A short or unlucky run can end as a constant predictor (paper 3's CNN after two epochs said
*disgust* for all 3,679 test faces). Its accuracy is the share of that class in the test
set -- a property of the data, not a result -- so final_metrics.json, reports and
``ekspresi compare`` flag it instead of presenting the number. The rule is deliberately
simple: the most predicted class takes at least :data:`COLLAPSE_SHARE` of the predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: A model is flagged when one class gets at least this share of its predictions.
COLLAPSE_SHARE = 0.95


def collapse_check(predicted: np.ndarray, classes: Sequence[str], *,
                   threshold: float = COLLAPSE_SHARE) -> dict[str, Any]:
    """``{"collapsed", "top_class", "top_share", "classes_predicted", "n", "threshold"}``
    for predicted class indices (into ``classes``). An empty set is not flagged."""
    pred = np.asarray(predicted, dtype=np.int64).ravel()
    counts = np.bincount(pred, minlength=len(classes)) if pred.size else np.zeros(len(classes))
    n = int(counts.sum())
    top = int(np.argmax(counts)) if n else 0
    share = float(counts[top] / n) if n else 0.0
    return {"collapsed": bool(n and share >= threshold), "top_class": classes[top],
            "top_share": round(share, 4), "classes_predicted": int((counts > 0).sum()),
            "n": n, "threshold": threshold}


def collapse_from_proba(proba: np.ndarray, classes: Sequence[str], **kw) -> dict[str, Any]:
    return collapse_check(np.asarray(proba).argmax(axis=1), classes, **kw)


def collapse_message(check: dict[str, Any], where: str = "test set") -> str:
    """One sentence for logs and reports, e.g. ``collapsed model: predicts 'disgust' for
    100.0 % of the 3,679 test images -- a constant predictor; its accuracy is not a result``."""
    return (f"collapsed model: predicts {check['top_class']!r} for "
            f"{100 * check['top_share']:.1f} % of the {check['n']:,} {where} images "
            f"({check['classes_predicted']} of the classes ever predicted) -- a (near-)constant "
            "predictor; its accuracy reflects the class mix, not a result")


def run_collapse(splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Combine per-split checks (``{"val": check, "test": check}``) into final_metrics'
    ``collapse`` entry: flagged when any split collapsed, with the message of the first."""
    flagged = [name for name, c in splits.items() if c["collapsed"]]
    out: dict[str, Any] = {"collapsed": bool(flagged), **splits}
    if flagged:
        out["message"] = collapse_message(splits[flagged[0]], f"{flagged[0]}")
    return out
