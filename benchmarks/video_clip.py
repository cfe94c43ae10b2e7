"""A synthetic 1280x720 clip with known face boxes, for ``benchmarks/video.py``: three face
photos (the committed public-domain one, and JAFFE faces when ``data/jaffe_dev`` is present;
nothing from a dataset is written into the repository) drift across a moving textured
background; the third leaves the frame for about a second and comes back, so a tracker that
keeps one track per person gives exactly three tracks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "fixtures" / "photos" / "astronaut.jpg"
JAFFE = ROOT / "data" / "jaffe_dev"
HEAD = (120, 10, 330, 250)      # head and shoulders in PHOTO (x0, y0, x1, y1)


def _faces(size: int) -> list[np.ndarray]:
    photo = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    x0, y0, x1, y1 = HEAD
    heads = [cv2.resize(photo[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)]
    jaffe = sorted(JAFFE.glob("*.tiff"))[::17][:2] if JAFFE.is_dir() else []
    for p in jaffe:
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if g is not None:
            g = cv2.resize(g[20:236, 20:236], (size, size), interpolation=cv2.INTER_AREA)
            heads.append(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))
    while len(heads) < 3:
        heads.append(heads[0][:, ::-1].copy())
    return heads[:3]


def paths(n: int, width: int, height: int, size: int, fps: float) -> list[list]:
    """Top-left corner of each face per frame (None: out of frame)."""
    out = []
    for i in range(n):
        t = i / fps
        a = (int(120 + 260 * (1 - np.cos(0.5 * t)) / 2), int(180 + 60 * np.sin(0.9 * t)))
        b = (int(560 + 80 * np.sin(0.7 * t)), int(120 + 200 * (1 - np.cos(0.4 * t)) / 2))
        # the third walks right, is out of frame from 4.0 s to 5.0 s, and walks back in
        if 4.0 <= t < 5.0:
            c = None
        else:
            x = 900 + 60 * t if t < 4.0 else width - size - 40 * (t - 5.0)
            c = (int(min(x, width - size)), int(300 + 40 * np.sin(1.3 * t)))
        out.append([a, b, c])
    return out


def frames(seconds: float = 10.0, fps: float = 25.0, width: int = 1280, height: int = 720,
           size: int = 200):
    """Yield ``(bgr_frame, truth)`` where truth lists each visible face's (x, y, w, h) box
    of the pasted head square, ``None`` for a face out of frame."""
    heads = _faces(size)
    n = int(round(seconds * fps))
    yy, xx = np.mgrid[0:height + 64, 0:width + 64]
    texture = ((np.sin(xx / 23.0) + np.cos(yy / 17.0) + np.sin((xx + yy) / 41.0)) * 30 + 110)
    texture = cv2.cvtColor(np.clip(texture, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    texture[..., 0] = np.clip(texture[..., 0].astype(int) + 25, 0, 255)
    for i, where in enumerate(paths(n, width, height, size, fps)):
        dx, dy = int(32 + 30 * np.sin(i / 40)), int(32 + 30 * np.cos(i / 50))
        frame = texture[dy:dy + height, dx:dx + width].copy()
        truth = []
        for head, pos in zip(heads, where):
            if pos is None:
                truth.append(None)
                continue
            x, y = pos
            frame[y:y + size, x:x + size] = head
            truth.append((x, y, size, size))
        yield frame, truth


def write(path: Path, seconds: float = 10.0, fps: float = 25.0, width: int = 1280,
          height: int = 720, crf: int = 18) -> list[list]:
    """Encode the clip as H.264 (PyAV; ``crf`` 18, a camera-like quality) and return the
    truth."""
    import av

    truth = []
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=int(fps))
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for frame, t in frames(seconds, fps, width, height):
            truth.append(t)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return truth
