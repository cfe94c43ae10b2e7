"""Figures for reports, each saved as PNG (embedded in the HTML report) and SVG (for papers).

Figures are built with the object-oriented :class:`matplotlib.figure.Figure` API, never
pyplot, so no GUI backend or global state is involved: plotting is safe in a headless
server, in tests and in threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ekspresi.evaluate.gallery import GalleryItem

FORMATS: tuple[str, ...] = ("png", "svg")
DPI = 110


def save(fig: Figure, stem: str | Path) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.svg``; returns {format: path}."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=DPI, bbox_inches="tight", format=fmt)
        out[fmt] = path
    return out


def confusion_matrix_figure(cm: Sequence[Sequence[float]], classes: Sequence[str], *,
                            normalized: bool, title: str = "") -> Figure:
    """Rows = true class, columns = predicted class, both in ``classes`` order."""
    cm = np.asarray(cm, dtype=float)
    k = len(classes)
    side = 1.2 + 0.62 * k
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalized else max(1.0, cm.max()))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalized
                           else "confusion matrix (counts)"))
    top = cm.max() if cm.size else 0
    for i in range(k):
        for j in range(k):
            v = cm[i, j]
            text = f"{v:.2f}" if normalized else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if v > (0.5 if normalized else top / 2) else "black")
    return fig


def learning_curves_figure(history: Sequence[Mapping[str, Any]], *,
                           best_epoch: int | None = None, title: str = "") -> Figure:
    """Loss and accuracy per epoch (train vs validation), learning rate on a twin axis."""
    from matplotlib.ticker import MaxNLocator

    epochs = [int(h["epoch"]) for h in history]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            pts = [(e, h[key]) for e, h in zip(epochs, history) if h.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), style, marker="o", markersize=3,
                        label=f"{'train' if split == 'train' else 'validation'}")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        lrs = [(e, h["lr"]) for e, h in zip(epochs, history) if h.get("lr") is not None]
        if lrs:
            ax2 = ax.twinx()
            ax2.plot(*zip(*lrs), color="tab:red", alpha=0.5, linewidth=1, drawstyle="steps-mid",
                     label="learning rate")
            ax2.set_ylabel("learning rate", color="tab:red")
            if max(v for _, v in lrs) > 0 and min(v for _, v in lrs) > 0:
                ax2.set_yscale("log")
            lines = ax.get_legend_handles_labels()
            lines2 = ax2.get_legend_handles_labels()
            ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="best")
        else:
            ax.legend(fontsize=8, loc="best")
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    if title:
        fig.suptitle(title)
    return fig


def per_class_figure(per_class: Mapping[str, Mapping[str, Any]], classes: Sequence[str], *,
                     title: str = "") -> Figure:
    """Grouped precision / recall / F1 bars per class, support in the tick labels."""
    k = len(classes)
    fig = Figure(figsize=(max(6.0, 1.1 * k + 2), 4))
    ax = fig.add_subplot()
    x = np.arange(k)
    width = 0.26
    for n, key in enumerate(("precision", "recall", "f1")):
        vals = [per_class[c].get(key) for c in classes]
        ax.bar(x + (n - 1) * width, [v if v is not None else 0 for v in vals], width,
               label=key)
    ax.set_xticks(x, labels=[f"{c}\n(n={per_class[c]['support']})" for c in classes])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title(title or "per-class precision, recall and F1")
    return fig


def reliability_figure(calibration: Mapping[str, Sequence], *, ece: float,
                       title: str = "") -> Figure:
    """Accuracy vs confidence per bin (top-label), with the bin counts below."""
    edges = np.asarray(calibration["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    width = np.diff(edges)
    acc = np.array([a if a is not None else 0 for a in calibration["accuracy"]])
    conf = np.array([c if c is not None else 0 for c in calibration["confidence"]])
    counts = np.asarray(calibration["count"])
    fig = Figure(figsize=(5, 6))
    ax, axc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    filled = counts > 0
    ax.bar(centers[filled], acc[filled], width[filled], edgecolor="black", label="accuracy")
    ax.bar(centers[filled], conf[filled] - acc[filled], width[filled], bottom=acc[filled],
           color="tab:red", alpha=0.3, edgecolor="tab:red", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or f"reliability diagram (ECE {ece:.3f})")
    axc.bar(centers, counts, width, color="grey", edgecolor="black")
    axc.set_xlabel("confidence (probability of the predicted class)")
    axc.set_ylabel("samples")
    return fig


def gallery_figure(faces: np.ndarray, items: Mapping[int, Sequence[GalleryItem]],
                   classes: Sequence[str], *, title: str) -> Figure | None:
    """One row per true class; each face titled "true / predicted (p)". ``faces`` are the
    uint8 images indexed by ``GalleryItem.index``. None when there is nothing to show."""
    rows = [c for c in range(len(classes)) if items.get(c)]
    if not rows:
        return None
    cols = max(len(items[c]) for c in rows)
    fig = Figure(figsize=(1.45 * cols + 0.4, 1.6 * len(rows) + 0.4), layout="constrained")
    grid = fig.subplots(len(rows), cols, squeeze=False)
    for r, c in enumerate(rows):
        for j in range(cols):
            ax = grid[r][j]
            ax.set_axis_off()
            if j >= len(items[c]):
                continue
            it = items[c][j]
            ax.imshow(faces[it.index], cmap="gray", vmin=0, vmax=255)
            ok = it.true == it.pred
            ax.set_title(f"{classes[it.true]} / {classes[it.pred]} ({it.confidence:.2f})",
                         fontsize=7, color="darkgreen" if ok else "darkred")
    fig.suptitle(f"{title}  —  titles: true / predicted (p)", fontsize=10)
    return fig


def comparison_figure(names: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
                      errors: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
                      title: str = "") -> Figure:
    """Grouped bars per run (e.g. test accuracy and macro F1); ``errors`` gives optional
    (low, high) intervals drawn as error bars."""
    k, s = len(names), max(1, len(series))
    fig = Figure(figsize=(max(6.0, 0.9 * k * s / 2 + 3), 4.5))
    ax = fig.add_subplot()
    x = np.arange(k)
    width = 0.8 / s
    for n, (label, vals) in enumerate(series.items()):
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        pos = x + (n - (s - 1) / 2) * width
        yerr = None
        if errors and label in errors:
            lo = [0 if e is None or np.isnan(val) else val - e[0]
                  for e, val in zip(errors[label], v)]
            hi = [0 if e is None or np.isnan(val) else e[1] - val
                  for e, val in zip(errors[label], v)]
            yerr = np.array([lo, hi])
        bars = ax.bar(pos, np.nan_to_num(v), width, yerr=yerr, capsize=3, label=label)
        tops = v if yerr is None else v + yerr[1]
        for b, val, top in zip(bars, v, tops):
            if not np.isnan(val):
                ax.annotate(f"{val:.3f}", (b.get_x() + b.get_width() / 2, top),
                            textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=7)
    ax.set_xticks(x, labels=names, rotation=30 if k > 3 else 0,
                  ha="right" if k > 3 else "center")
    ax.set_ylim(0, 1.08)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "test accuracy and macro F1 per run")
    return fig
