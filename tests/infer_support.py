"""Shared pieces of the detector/inference/predict tests: face images built from the
committed public-domain photo (test bundles: ``tests/bundles.py`` and the ``make_bundle``
fixture). No tests here; imported by the detection, inference, CLI, results and batch tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ekspresi.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
PHOTO = FIXTURES / "photos" / "astronaut.jpg"
#: Where the face is in PHOTO (x0, y0, x1, y1), read off the picture by eye: brows to chin.
FACE_REGION = (170, 60, 280, 180)


def photo_bgr() -> np.ndarray:
    img = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    assert img is not None, PHOTO
    return img


#: Head and shoulders around the face in PHOTO (x0, y0, x1, y1).
HEAD = (120, 10, 330, 250)


def collage(n: int = 4, tile: int = 200) -> np.ndarray:
    """n copies of the photo's head (some mirrored) on a grid: n faces."""
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    out = np.full((rows * tile, cols * tile, 3), 90, np.uint8)
    x0, y0, x1, y1 = HEAD
    small = cv2.resize(photo_bgr()[y0:y1, x0:x1], (tile, tile), interpolation=cv2.INTER_AREA)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = small[:, ::-1] if i % 2 else small
    return out


def no_face_image(h: int = 360, w: int = 480) -> np.ndarray:
    """Smooth gradients and stripes: texture, but no face."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) % 64) * 4], axis=2)
    return img.astype(np.uint8)


def in_face_region(box, region=FACE_REGION) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_clip(path: Path, frames: int = 12, size=(320, 240), fps: float = 10.0,
               fourcc: str = "mp4v") -> Path:
    """A short clip (MPEG-4 Part 2 by default): the face photo moving slowly right across
    a grey background, so one face is tracked through every frame."""
    w, h = size
    face = cv2.resize(photo_bgr()[10:250, 120:330], (150, 170), interpolation=cv2.INTER_AREA)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert vw.isOpened()
    for i in range(frames):
        frame = np.full((h, w, 3), 100, np.uint8)
        x = 40 + 4 * i
        frame[30:200, x:x + 150] = face
        vw.write(frame)
    vw.release()
    return path
