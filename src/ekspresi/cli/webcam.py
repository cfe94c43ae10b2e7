"""`ekspresi webcam`: a live window with faces, labels and probability bars.

It needs a display, an OpenCV build with GUI support (``opencv-python``, not the headless
wheel the base install uses) and a camera; when one is missing it says which and what to do
instead (the web app's webcam page works in any browser).
"""

from __future__ import annotations

import argparse
import os
import sys

from ekspresi.cli.options import (
    add_detector,
    add_engine,
    add_model,
    make_recognizer,
    positive_int,
)

WINDOW = "ekspresi webcam (q or Esc quits)"


def register(subparsers) -> None:
    p = subparsers.add_parser("webcam", help="live webcam window with expression overlays")
    p.add_argument("--camera", default="0",
                   help="camera index or video device/file/URL for cv2.VideoCapture (default 0)")
    p.add_argument("--every", type=positive_int, default=1, metavar="N",
                   help="analyse every N-th frame, drawing the last result in between")
    add_model(p)
    add_engine(p)
    add_detector(p)
    p.set_defaults(func=run)


def unavailable_reason() -> str | None:
    """Why no live window can be shown here, or None when it can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display (DISPLAY/WAYLAND_DISPLAY unset). On a machine without a screen use "
                "`ekspresi serve` and open the webcam page in a browser, or "
                "`ekspresi predict VIDEO --annotate out.mp4`")
    import cv2

    info = cv2.getBuildInformation()
    gui = [line for line in info.splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() in ("NONE", "NO", ""):
        return ("this OpenCV build has no GUI support (opencv-python-headless). Install the "
                "GUI build with `pip install opencv-python` (same version) or use "
                "`ekspresi serve` and its webcam page")
    return None


def run(args: argparse.Namespace) -> int:
    reason = unavailable_reason()
    if reason:
        print(f"ekspresi webcam: cannot open a live window: {reason}", file=sys.stderr)
        return 2
    import time

    import cv2

    from ekspresi.errors import BadInputError
    from ekspresi.infer.stream import stream

    recognizer = make_recognizer(args)
    source = int(args.camera) if str(args.camera).isdigit() else args.camera
    fps, last, quit_ = 0.0, time.perf_counter(), False
    try:
        for frame, result in stream(recognizer, source, every=args.every):
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6)
            last = now
            shown = result.plot(frame)
            cv2.putText(shown, f"{fps:4.1f} fps", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (0, 255, 0), 1, cv2.LINE_AA)
            cv2.imshow(WINDOW, shown)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                quit_ = True
                break
    except BadInputError as exc:
        print(f"ekspresi webcam: cannot open camera {args.camera!r} ({exc.problem}); try "
              "--camera 1", file=sys.stderr)
        return 2
    finally:
        cv2.destroyAllWindows()
    if not quit_:
        print("ekspresi webcam: the camera stopped sending frames", file=sys.stderr)
    return 0
