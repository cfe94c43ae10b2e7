"""Videos: opening them, following faces across frames with a simple IoU tracker, and writing
annotated clips that browsers can play (the frame loop is :mod:`ekspresi.infer.stream`):
H.264 MP4 where this OpenCV build can encode it, else WebM (VP8). The pip OpenCV wheels'
FFmpeg has no software H.264 encoder (only ``h264_v4l2m2m``, which needs a hardware device),
and their MPEG-4 Part 2 (``mp4v``) files are refused by Chromium and Firefox.

The tracker is deliberately simple (greedy matching of boxes by overlap): for a webcam or a
talking-head clip faces move little between analysed frames, and anything smarter would need
appearance features the expression model does not provide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ekspresi.errors import BadInputError
from ekspresi.infer.types import Face

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                              ".wmv", ".flv", ".3gp"})


log = logging.getLogger("ekspresi.video")

#: Codec (FourCC) for each container the annotated clip may be written in.
WRITER_CODECS = {".mp4": "avc1", ".m4v": "avc1", ".mov": "avc1", ".webm": "VP80",
                 ".mkv": "VP80", ".avi": "MJPG"}
#: MIME type of each container, for serving a clip to a browser.
VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
              ".webm": "video/webm", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo"}


@contextlib.contextmanager
def _quiet_stderr():
    """FFmpeg prints its encoder probing straight to file descriptor 2; hide that."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.lru_cache(maxsize=None)
def can_write(suffix: str) -> bool:
    """Whether this OpenCV build can encode ``suffix``'s codec (WRITER_CODECS), found by
    writing a two-frame clip once per process."""
    codec = WRITER_CODECS.get(suffix.lower())
    if codec is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"probe{suffix}"
        with _quiet_stderr():
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10.0, (64, 48))
            ok = writer.isOpened()
            if ok:
                for _ in range(2):
                    writer.write(np.zeros((48, 64, 3), np.uint8))
            writer.release()
        return ok and path.is_file() and path.stat().st_size > 0


def browser_video_suffix() -> str:
    """``.mp4`` (H.264) where it can be written here, else ``.webm`` (VP8): both play in
    every current browser."""
    return ".mp4" if can_write(".mp4") else ".webm"


def open_writer(path: str | Path, fps: float, size: tuple[int, int]
                ) -> tuple[cv2.VideoWriter, Path]:
    """A writer for ``path`` in a codec browsers play (WRITER_CODECS). When that codec
    cannot be encoded here (H.264 on the pip wheels), the clip is written as WebM (VP8)
    next to it instead; the path actually written is returned."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in WRITER_CODECS:
        raise BadInputError(str(target), f"cannot write {suffix or 'a file without extension'}"
                                         f"; use one of {', '.join(sorted(WRITER_CODECS))}")
    if not can_write(suffix):
        fallback = target.with_suffix(".webm")
        log.warning("%s: this OpenCV has no %s encoder (the pip wheels have none for H.264, "
                    "and browsers refuse their MPEG-4 Part 2); writing WebM (VP8) to %s "
                    "instead", target, WRITER_CODECS[suffix], fallback)
        target, suffix = fallback, ".webm"
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*WRITER_CODECS[suffix]),
                             fps, size)
    if not writer.isOpened():
        raise BadInputError(str(target), "cannot write a video here")
    return writer, target


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class IouTracker:
    """Gives each face the id of the live track it overlaps most (IoU >= ``min_iou``);
    unmatched faces start new tracks; tracks unseen for ``max_age`` updates end."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 5):
        self.min_iou, self.max_age = min_iou, max_age
        self._tracks: dict[int, tuple[tuple[int, int, int, int], int]] = {}  # id -> (box, age)
        self._next = 1

    @classmethod
    def for_video(cls, fps: float, every: int) -> IouTracker:
        """The tracker every video path uses (``stream`` and the Ray engine's assembly, so
        both give the same track ids): a track unseen for about one second of video ends
        (``fps`` 0 = unknown counts as 25), after at least two analysed frames."""
        return cls(max_age=max(2, int(round((fps or 25) / every))))

    def update(self, faces: list[Face]) -> list[Face]:
        pairs = sorted(((iou(f.box, box), i, tid) for i, f in enumerate(faces)
                        for tid, (box, _) in self._tracks.items()), reverse=True)
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for overlap, i, tid in pairs:
            if overlap < self.min_iou:
                break
            if i not in assigned and tid not in used:
                assigned[i] = tid
                used.add(tid)
        for i in range(len(faces)):
            if i not in assigned:
                assigned[i] = self._next
                self._next += 1
        self._tracks = {tid: (box, age + 1) for tid, (box, age) in self._tracks.items()
                        if tid not in used and age + 1 <= self.max_age}
        out = []
        for i, f in enumerate(faces):
            self._tracks[assigned[i]] = (f.box, 0)
            out.append(dataclasses.replace(f, track_id=assigned[i]))
        return out


def open_video(path: str | Path) -> cv2.VideoCapture:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(str(p), "no such file")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise BadInputError(str(p), "cannot open as a video (corrupt file or unsupported codec)")
    return cap


def video_info(path: str | Path) -> tuple[float, int, int, int]:
    """Frame rate (0 when unknown), width, height and frame count (0 when unknown) of the
    video at ``path``, without decoding it."""
    cap = open_video(path)
    try:
        return (float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()
