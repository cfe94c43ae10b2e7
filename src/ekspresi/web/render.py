"""Turning arrays into pictures for the browser: data URIs, display-sized previews, and the
annotated images of the step-by-step page (drawn with OpenCV on the server so that every
stage shows exactly the pixels the engine worked on)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from ekspresi.infer.annotate import OTHER, PALETTE, ink

CANDIDATE_BGR = (0, 200, 255)
REJECTED_BGR = (140, 140, 140)


def data_uri(image: np.ndarray, fmt: str = "png", quality: int = 88) -> str:
    """uint8 gray/BGR array -> ``data:image/...;base64,...`` for an ``<img src>``."""
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise ValueError(f"cannot encode an array of shape {image.shape} as {fmt}")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink (never enlarge) so the longer side is at most ``max_side``; returns the
    image and the scale applied (display pixels per image pixel)."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def preview(image: np.ndarray, max_side: int = 1280) -> tuple[str, float]:
    """JPEG data URI of the decoded, EXIF-upright image at display size, and its scale.
    The browser draws boxes on this, not on the file it sent, so TIFFs, 16-bit PNGs and
    rotated phone photos all show the same pixels the engine saw."""
    small, scale = fit(image, max_side)
    return data_uri(small, "jpeg"), scale


def upscale_nearest(image: np.ndarray, target: int = 240) -> np.ndarray:
    """Blow a tiny model input up with nearest-neighbour so each input pixel stays a
    visible square (no smoothing that would hide what the network really sees)."""
    factor = max(1, target // max(image.shape[:2]))
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()


def _label(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int],
           scale: float) -> None:
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y_top = max(0, y - th - base - 4)
    cv2.rectangle(canvas, (x, y_top), (x + tw + 6, y_top + th + base + 4), colour, -1)
    cv2.putText(canvas, text, (x + 3, y_top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)


def draw_boxes(image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]],
               labels: Sequence[str], colours: Sequence[tuple[int, int, int]],
               landmarks: Iterable[Sequence[tuple[float, float]]] = ()) -> np.ndarray:
    """A BGR copy of ``image`` with one labelled rectangle per box (line width and font
    scale follow the image size so small and huge images both stay legible)."""
    canvas = to_bgr(image)
    side = max(canvas.shape[:2])
    width = max(1, side // 300)
    scale = max(0.4, side / 1000)
    for (x, y, w, h), text, colour in zip(boxes, labels, colours):
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), colour, width)
        if text:
            _label(canvas, text, int(x), int(y), colour, scale)
    for points in landmarks:
        for px, py in points:
            cv2.circle(canvas, (int(round(px)), int(round(py))), max(2, width + 1),
                       (0, 255, 0), -1)
    return canvas


def heatmap_overlay(face: np.ndarray, saliency: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a 0..1 (or any range) saliency map, resized to the face, as a JET heat map."""
    base = to_bgr(face)
    sal = np.asarray(saliency, dtype=np.float32)
    lo, hi = float(np.min(sal)), float(np.max(sal))
    norm = (sal - lo) / (hi - lo) if hi > lo else np.zeros_like(sal)
    norm = cv2.resize(norm, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap(np.clip(norm * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


def palette_css() -> str:
    """The emotion palette as CSS custom properties (``--happy`` and its text colour
    ``--happy-ink``), put in every page's <head> so CSS, JavaScript and the pictures drawn
    on the server all use one set of colours."""
    rules = [f"--{name}: {colour}; --{name}-ink: {ink(colour)};"
             for name, colour in PALETTE.items()]
    return ":root { " + " ".join(rules) + f" --other: {OTHER}; }}"
