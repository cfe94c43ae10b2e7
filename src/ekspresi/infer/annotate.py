"""Drawing results onto images and video frames: boxes, labels and probability bars."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ekspresi.infer.types import Face

#: The one emotion palette (sRGB hex) of everything ekspresi draws: CLI and video
#: annotations, the web pages (served as CSS variables), their charts and bars.
PALETTE: dict[str, str] = {
    "angry": "#e5484d", "disgust": "#30a46c", "fear": "#8e4ec6", "happy": "#f5b400",
    "sad": "#3e63dd", "surprise": "#f76b15", "neutral": "#8b8d98", "contempt": "#ad7f58",
}
#: Colour of anything not in the palette (a bundle with other class names).
OTHER = "#4f46e5"


def hex_to_bgr(colour: str) -> tuple[int, int, int]:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def _luminance(colour: str) -> float:
    lin = [(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
           for v in (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two sRGB hex colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (text on a filled tag)."""
    return "#000000" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "#ffffff"


#: BGR colour per class (OpenCV's order), from PALETTE.
COLOURS: dict[str, tuple[int, int, int]] = {k: hex_to_bgr(v) for k, v in PALETTE.items()}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour) -> None:
    cv2.putText(img, text, org, FONT, scale, (0, 0, 0), max(2, int(3 * scale)), cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, colour, max(1, int(scale)), cv2.LINE_AA)


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _bars(out: np.ndarray, face: Face, box, scale: float, taken: list) -> None:
    """One bar per class on a dark panel below, above, right or left of the box: the first
    place inside the image that covers no other face and no other panel."""
    H, W = out.shape[:2]
    x, y, w, h = box
    row = max(9, int(14 * scale))
    label_w = int(62 * scale) + 8
    bar_w = max(40, int(80 * scale))
    pw, ph = label_w + bar_w + 4, row * len(face.scores) + 4
    places = [(x, y + h + 4), (x, y - ph - int(24 * scale) - 4), (x + w + 6, y),
              (x - pw - 6, y)]
    inside = [(px, py) for px, py in places if px >= 0 and py >= 0 and px + pw <= W
              and py + ph <= H]
    free = [(px, py) for px, py in inside
            if not any(_overlaps((px, py, pw, ph), t) for t in taken)]
    px, py = (free or inside or [(min(max(x, 0), max(W - pw, 0)),
                                  min(max(y, 0), max(H - ph, 0)))])[0]
    taken.append((px, py, pw, ph))
    panel = out[py:py + ph, px:px + pw]
    panel[:] = (panel * 0.35).astype(np.uint8)
    by = py + 2
    for name, p in sorted(face.scores.items(), key=lambda kv: -kv[1]):
        _text(out, name[:8], (px + 2, by + row - 3), 0.35 * scale + 0.1, (255, 255, 255))
        x0 = px + label_w
        cv2.rectangle(out, (x0, by + 2), (x0 + bar_w, by + row - 2), (70, 70, 70), -1)
        cv2.rectangle(out, (x0, by + 2), (x0 + int(round(bar_w * p)), by + row - 2),
                      COLOURS.get(name, hex_to_bgr(OTHER)), -1)
        by += row


def draw_faces(image: np.ndarray, faces: Sequence[Face], *, bars: bool = True) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box, label, landmarks and, when ``bars``,
    one bar per class showing its probability."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    H, W = out.shape[:2]
    scale = max(0.35, min(1.0, max(H, W) / 1200))
    taken = [f.box for f in faces]   # panels must not cover faces
    for face in faces:
        x, y, w, h = face.box
        colour = COLOURS.get(face.label, hex_to_bgr(OTHER))
        thick = max(1, int(round(2 * scale)))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        for px, py in face.landmarks[:2]:
            cv2.circle(out, (int(px), int(py)), thick + 1, (0, 255, 255), -1)
        tag = f"{face.label} {face.confidence:.0%}"
        if face.track_id is not None:
            tag = f"#{face.track_id} {tag}"
        elif face.number is not None:   # the face's number in CLI/JSON/API results
            tag = f"{face.number}. {tag}"
        _text(out, tag, (x, max(12, y - 6)), 0.6 * scale + 0.2, colour)
        if not bars:
            continue
        _bars(out, face, (x, y, w, h), scale, taken)
    return out
