"""Make the example pictures and clip shipped in ``src/ekspresi/assets/examples/``.

    python scripts/make_examples.py [--hopper PATH] [-o src/ekspresi/assets/examples]

Sources (both public domain; SOURCES.md beside the outputs says so in full):

* ``tests/fixtures/photos/astronaut.jpg``: NASA portrait of Eileen Collins, from
  scikit-image's sample data;
* matplotlib's ``mpl-data/sample_data/grace_hopper.jpg`` (``pip install matplotlib``, part
  of ``ekspresi[train]``): US Navy portrait of Grace Hopper.

Outputs: ``astronaut.jpg`` and ``hopper.jpg`` (the portraits), ``group.jpg`` (both side by
side plus a small face cut at the hairline and chin pinned on the wall, the case of issue
22), ``clip.mp4`` (a 4 s, 15 frames/s, 640x360 pan across ``group.jpg``: H.264 through
PyAV when it is installed, else MJPG in an AVI named ``clip.avi``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "tests" / "fixtures" / "photos" / "astronaut.jpg"
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 85]
CLIP_SIZE, CLIP_FPS, CLIP_SECONDS = (640, 360), 15, 4


def _hopper_default() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def group(astronaut: np.ndarray, hopper: np.ndarray) -> np.ndarray:
    """The two portraits side by side (1000x560), and the astronaut's face cut at the
    hairline and chin, 60 px wide, pinned on the blue wall behind Grace Hopper."""
    left = cv2.resize(astronaut[0:448, 40:440], (500, 560), interpolation=cv2.INTER_CUBIC)
    right = cv2.resize(hopper[0:448, 56:456], (500, 560), interpolation=cv2.INTER_CUBIC)
    out = np.concatenate([left, right], axis=1)
    tight = cv2.resize(astronaut[78:160, 183:263], (60, 62), interpolation=cv2.INTER_AREA)
    x, y = 900, 40
    cv2.rectangle(out, (x - 4, y - 4), (x + 64, y + 66), (245, 245, 245), -1)  # a print
    out[y:y + 62, x:x + 60] = tight
    return out


def pan_frames(picture: np.ndarray) -> list[np.ndarray]:
    """A slow pan from the left face to the right one, zooming out mid-way so that both
    are in view."""
    w, h = CLIP_SIZE
    H, W = picture.shape[:2]
    n = CLIP_FPS * CLIP_SECONDS
    frames = []
    for i in range(n):
        t = 0.5 - 0.5 * np.cos(np.pi * i / (n - 1))        # ease in and out
        vw = W * (0.62 + 0.33 * np.sin(np.pi * t))          # wider mid-way
        vh = vw * h / w
        cx = vw / 2 + t * (W - vw)
        cy = H * 0.40
        x0 = int(round(min(max(cx - vw / 2, 0), W - vw)))
        y0 = int(round(min(max(cy - vh / 2, 0), H - vh)))
        view = picture[y0:y0 + int(vh), x0:x0 + int(vw)]
        frames.append(cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA))
    return frames


def write_clip(frames: list[np.ndarray], folder: Path) -> Path:
    try:
        import av
    except ImportError:
        out = folder / "clip.avi"
        vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, CLIP_SIZE)
        for f in frames:
            vw.write(f)
        vw.release()
        return out
    out = folder / "clip.mp4"
    with av.open(str(out), "w", options={"movflags": "+faststart"}) as box:
        stream = box.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height = CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "26", "preset": "slow"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hopper", type=Path, default=None)
    p.add_argument("-o", "--out", type=Path, default=ROOT / "src" / "ekspresi" / "assets"
                                                      / "examples")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    astronaut = cv2.imread(str(ASTRONAUT))
    hopper = cv2.imread(str(args.hopper or _hopper_default()))
    cv2.imwrite(str(args.out / "astronaut.jpg"), astronaut, JPEG)
    cv2.imwrite(str(args.out / "hopper.jpg"), hopper, JPEG)
    picture = group(astronaut, hopper)
    cv2.imwrite(str(args.out / "group.jpg"), picture, JPEG)
    clip = write_clip(pan_frames(picture), args.out)
    for f in sorted(args.out.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1024:.0f} KB")
    print(f"clip: {clip}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
