"""Turning arrays into pictures for the browser: data URIs, display-sized previews, and the
palette as CSS (what is drawn, and in which colours, is :mod:`ekspresi.infer.draw`)."""

from __future__ import annotations

import base64
import functools

import cv2
import numpy as np

from ekspresi.infer.draw import OTHER, PALETTE, ink


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


@functools.cache
def palette_css() -> str:
    """The emotion palette as CSS custom properties (``--happy`` and its text colour
    ``--happy-ink``), put in every page's <head> so CSS, JavaScript and the pictures drawn
    on the server all use one set of colours. The palette is a constant: built once, not
    on every page view."""
    rules = [f"--{name}: {colour}; --{name}-ink: {ink(colour)};"
             for name, colour in PALETTE.items()]
    return ":root { " + " ".join(rules) + f" --other: {OTHER}; }}"
