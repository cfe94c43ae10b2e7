"""Everything ekspresi draws on images and video frames (CLI annotations, annotated clips,
the webcam window, the web app's step-by-step pictures) and the one emotion palette, which
the web pages also receive (as CSS variables, ``web/render.py: palette_css``) so their
canvases, bars and charts use the same colours."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from ekspresi.detect.types import Detection
from ekspresi.infer.types import Face

#: The one emotion palette (sRGB hex) of everything ekspresi draws: CLI and video
#: annotations, the web pages (served as CSS variables), their charts and bars.
PALETTE: dict[str, str] = {
    "angry": "#e5484d", "disgust": "#30a46c", "fear": "#8e4ec6", "happy": "#f5b400",
    "sad": "#3e63dd", "surprise": "#f76b15", "neutral": "#8b8d98", "contempt": "#ad7f58",
}
#: Colour of anything not in the palette (a bundle with other class names).
OTHER = "#4f46e5"
#: Detector candidates on the step-by-step page: accepted, rejected; and landmark points.
CANDIDATE = "#ffc800"
REJECTED = "#8c8c8c"
LANDMARK = "#00ff00"


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


def colour_of(label: str) -> str:
    """The palette colour (hex) of a class name, OTHER for names outside the palette."""
    return PALETTE.get(label, OTHER)


#: BGR colour per class (OpenCV's order), from PALETTE.
COLOURS: dict[str, tuple[int, int, int]] = {k: hex_to_bgr(v) for k, v in PALETTE.items()}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR copy of a gray or BGR image (drawing never changes the caller's array)."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()


def _style(canvas: np.ndarray) -> tuple[int, float]:
    """Line width and font scale that follow the image size, so small and huge images
    both stay legible."""
    side = max(canvas.shape[:2])
    return max(1, side // 300), max(0.4, min(1.2, side / 1000))


def _tag_box(canvas: np.ndarray, text: str, x: int, y: int, scale: float
             ) -> tuple[int, int, int, int, int]:
    """(x, y, width, height, text height) of the tag ``text`` above (x, y), moved inside
    the image: a face at the left, right or top edge keeps its whole label readable."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, max(1, round(scale * 2)))
    H, W = canvas.shape[:2]
    w, h = tw + 6, th + base + 4
    x = max(0, min(x, W - w))
    y_top = max(0, min(y - h, H - h))
    return x, y_top, w, h, th


def _tag(canvas: np.ndarray, text: str, x: int, y: int, colour: str, scale: float) -> None:
    """``text`` on a filled tag of ``colour`` above (x, y), in black or white (``ink``)."""
    thickness = max(1, round(scale * 2))
    x, y_top, w, h, th = _tag_box(canvas, text, x, y, scale)
    cv2.rectangle(canvas, (x, y_top), (x + w - 1, y_top + h - 1), hex_to_bgr(colour), -1)
    cv2.putText(canvas, text, (x + 3, y_top + th + 2), FONT, scale, hex_to_bgr(ink(colour)),
                thickness, cv2.LINE_AA)


def draw_boxes(image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]],
               labels: Sequence[str], colours: Sequence[str],
               landmarks: Iterable[Sequence[tuple[float, float]]] = ()) -> np.ndarray:
    """A BGR copy of ``image`` with one rectangle per box in its colour (hex), its label on
    a filled tag above it, and the landmark points: the one box-drawing function."""
    canvas = to_bgr(image)
    width, scale = _style(canvas)
    for (x, y, w, h), text, colour in zip(boxes, labels, colours):
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), hex_to_bgr(colour),
                      width)
        if text:
            _tag(canvas, text, int(x), int(y), colour, scale)
    for points in landmarks:
        for px, py in points:
            cv2.circle(canvas, (int(round(px)), int(round(py))), max(2, width + 1),
                       hex_to_bgr(LANDMARK), -1)
    return canvas


def face_tag(face: Face) -> str:
    """What a face's box says: its track or number, label and confidence (as the web
    pages' ``Ekspresi.tag``)."""
    tag = f"{face.label} {face.confidence:.0%}"
    if face.track_id is not None:
        return f"#{face.track_id} {tag}"
    if face.number is not None:   # the face's number in CLI/JSON/API results
        return f"{face.number}. {tag}"
    return tag


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour) -> None:
    cv2.putText(img, text, org, FONT, scale, (0, 0, 0), max(2, int(3 * scale)), cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, colour, max(1, int(scale)), cv2.LINE_AA)


def panel_size(n_classes: int, scale: float) -> tuple[int, int, int, int]:
    """(width, height, row height, label width) of a probability panel of ``n_classes``."""
    row = max(9, int(14 * scale))
    label_w = int(62 * scale) + 8
    bar_w = max(40, int(80 * scale))
    return label_w + bar_w + 4, row * n_classes + 4, row, label_w


def place_panel(box: tuple[int, int, int, int], size: tuple[int, int],
                image_size: tuple[int, int], taken: list[tuple[int, int, int, int]]
                ) -> tuple[int, int, int, int] | None:
    """Where a face's panel goes: the first of below, above (clear of the tag), right and
    left of ``box`` that lies inside the image and covers nothing in ``taken`` (faces,
    their tags, earlier panels), or None: in a crowded picture a panel that would hide
    another face or panel is left out (the tag still names the top class)."""
    x, y, w, h = box
    pw, ph = size
    W, H = image_size
    places = [(x, y + h + 4), (x, y - ph - 4), (x + w + 6, y), (x - pw - 6, y)]
    for px, py in places:
        rect = (px, py, pw, ph)
        if (px >= 0 and py >= 0 and px + pw <= W and py + ph <= H
                and not any(_overlaps(rect, t) for t in taken)):
            return rect
    return None


def _bars(out: np.ndarray, face: Face, rect: tuple[int, int, int, int], scale: float) -> None:
    """One bar per class, most likely first, on a dark panel at ``rect``."""
    px, py, pw, ph = rect
    _, _, row, label_w = panel_size(len(face.scores), scale)
    bar_w = pw - label_w - 4
    panel = out[py:py + ph, px:px + pw]
    panel[:] = (panel * 0.35).astype(np.uint8)
    by = py + 2
    for name, p in sorted(face.scores.items(), key=lambda kv: -kv[1]):
        _text(out, name[:8], (px + 2, by + row - 3), 0.35 * scale + 0.1, (255, 255, 255))
        x0 = px + label_w
        cv2.rectangle(out, (x0, by + 2), (x0 + bar_w, by + row - 2), (70, 70, 70), -1)
        cv2.rectangle(out, (x0, by + 2), (x0 + int(round(bar_w * p)), by + row - 2),
                      hex_to_bgr(colour_of(name)), -1)
        by += row


def _tag_rect(canvas: np.ndarray, text: str, x: int, y: int) -> tuple[int, int, int, int]:
    """The rectangle ``draw_boxes`` fills for the tag ``text`` above (x, y)."""
    return _tag_box(canvas, text, x, y, _style(canvas)[1])[:4]


def draw_faces(image: np.ndarray, faces: Sequence[Face], *, bars: bool = True) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box and tag in its emotion's colour, its
    eyes, and, when ``bars``, one bar per class showing its probability, on a panel placed
    where it hides no face, tag or other panel (left out where there is no such place)."""
    tags = [face_tag(f) for f in faces]
    out = draw_boxes(image, [f.box for f in faces], tags,
                     [colour_of(f.label) for f in faces], [f.landmarks[:2] for f in faces])
    if bars:
        H, W = out.shape[:2]
        scale = max(0.35, min(1.0, max(H, W) / 1200))
        taken = [tuple(int(v) for v in f.box) for f in faces]
        taken += [_tag_rect(out, t, int(f.box[0]), int(f.box[1])) for f, t in zip(faces, tags)]
        for face in faces:
            pw, ph, _, _ = panel_size(len(face.scores), scale)
            rect = place_panel(tuple(int(v) for v in face.box), (pw, ph), (W, H), taken)
            if rect is not None:
                taken.append(rect)
                _bars(out, face, rect, scale)
    return out


def draw_candidates(image: np.ndarray, candidates: Sequence[tuple[Detection, bool]],
                    scale: float = 1.0) -> np.ndarray:
    """Every detector candidate with its score: accepted ones (and their landmarks) in
    CANDIDATE, tagged with their face number (their rank among the accepted ones, in the
    order given: reading order in a Trace) and score, rejected ones in REJECTED, drawn on
    ``image`` shown at ``scale``."""
    numbered, n = [], 0
    for d, ok in candidates:
        n += ok
        numbered.append((d, ok, f"{n}. {d.score:.2f}" if ok else f"{d.score:.2f}"))
    ordered = sorted(numbered, key=lambda c: c[1])   # rejected first, accepted on top
    return draw_boxes(
        image, [tuple(int(round(v * scale)) for v in d.box) for d, _, _ in ordered],
        [text for _, _, text in ordered],
        [CANDIDATE if ok else REJECTED for _, ok, _ in ordered],
        landmarks=[[(x * scale, y * scale) for x, y in d.landmarks] for d, ok, _ in ordered
                   if ok])


def heatmap_overlay(face: np.ndarray, saliency: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a 0..1 (or any range) saliency map, resized to the face, as a JET heat map."""
    base = to_bgr(face)
    sal = np.asarray(saliency, dtype=np.float32)
    lo, hi = float(np.min(sal)), float(np.max(sal))
    norm = (sal - lo) / (hi - lo) if hi > lo else np.zeros_like(sal)
    norm = cv2.resize(norm, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap(np.clip(norm * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)
