"""The About page's plots drawn as inline SVG in the page's language and colours.

The PNGs a bundle ships were drawn by matplotlib in English on white: unreadable in the
Indonesian interface and a white block in dark mode. These SVGs take their text from the
message catalogue and their colours from the page's CSS variables (``currentColor``,
``--primary``, the emotion palette), so they follow the language and the light/dark theme.
Drawn from the numbers the bundle carries: per-epoch metrics (``metrics.csv``) and the test
set's per-class scores.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Callable
from pathlib import Path

from markupsafe import Markup

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 36


def _text(x: float, y: float, s: str, anchor: str = "middle", cls: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">'
            f"{html.escape(str(s))}</text>")


def _axes(ticks_y: list[float], label_y: Callable[[float], str], y_of) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" '
           'class="axis"/>']
    for v in ticks_y:
        y = y_of(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(LEFT - 6, y + 4, label_y(v), "end"))
    return out


def learning_curves_svg(metrics_csv: Path, t) -> Markup | None:
    """Training and validation accuracy per epoch (from the run's ``metrics.csv``)."""
    try:
        rows = list(csv.DictReader(metrics_csv.open(newline="")))
        epochs = [int(r["epoch"]) for r in rows]
        series = {key: [float(r[key]) for r in rows] for key in ("train_acc", "val_acc")}
    except (OSError, KeyError, ValueError):
        return None
    if len(epochs) < 2:
        return None
    x_of = lambda e: LEFT + (e - epochs[0]) / (epochs[-1] - epochs[0]) * (W - LEFT - RIGHT)  # noqa: E731
    y_of = lambda v: TOP + (1 - v) * (H - TOP - BOTTOM)  # noqa: E731
    parts = _axes([0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.0%}", y_of)
    step = max(1, round(len(epochs) / 8))
    for e in epochs[::step] + ([epochs[-1]] if (len(epochs) - 1) % step else []):
        parts.append(_text(x_of(e), H - BOTTOM + 16, str(e)))
    parts.append(_text((LEFT + W - RIGHT) / 2, H - 4, t("svg.epoch")))
    for key, cls in (("train_acc", "s1"), ("val_acc", "s2")):
        pts = " ".join(f"{x_of(e):.1f},{y_of(v):.1f}" for e, v in zip(epochs, series[key]))
        parts.append(f'<polyline points="{pts}" class="line {cls}"/>')
    for i, (key, cls) in enumerate((("svg.train_acc", "s1"), ("svg.val_acc", "s2"))):
        x = LEFT + 10 + i * 200
        parts.append(f'<line x1="{x}" y1="14" x2="{x + 22}" y2="14" class="line {cls}"/>')
        parts.append(_text(x + 28, 18, t(key), "start"))
    return _svg(parts, t("plot.learning_curves.title"))


def per_class_svg(per_class: list[tuple[str, dict]], t, label: Callable[[str], str]
                  ) -> Markup | None:
    """Precision, recall and F1 of each class as grouped bars."""
    if not per_class:
        return None
    y_of = lambda v: TOP + (1 - v) * (H - TOP - BOTTOM)  # noqa: E731
    parts = _axes([0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.0%}", y_of)
    group = (W - LEFT - RIGHT) / len(per_class)
    bar = group * 0.8 / 3
    for i, (name, m) in enumerate(per_class):
        x0 = LEFT + i * group + group * 0.1
        for j, key in enumerate(("precision", "recall", "f1")):
            v = m.get(key)
            if isinstance(v, (int, float)):
                y = y_of(float(v))
                parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" '
                             f'height="{H - BOTTOM - y:.1f}" class="bar b{j}">'
                             f"<title>{html.escape(label(name))} {key}: {v:.3f}</title></rect>")
        parts.append(_text(x0 + group * 0.4, H - BOTTOM + 16, label(name)))
    for j, key in enumerate(("card.col_precision", "card.col_recall", "svg.f1")):
        x = LEFT + 10 + j * 130
        parts.append(f'<rect x="{x}" y="8" width="12" height="10" class="bar b{j}"/>')
        parts.append(_text(x + 18, 18, t(key), "start"))
    return _svg(parts, t("plot.per_class.title"))


def _svg(parts: list[str], title: str) -> Markup:
    return Markup(f'<svg class="plot-svg" viewBox="0 0 {W} {H}" role="img" '
                  f'aria-label="{html.escape(str(title))}" xmlns="http://www.w3.org/2000/svg">'
                  + "".join(parts) + "</svg>")
