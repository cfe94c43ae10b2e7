"""Videos: every N-th frame through the Recognizer, faces followed across frames by a simple
IoU tracker, a per-frame timeline, and an optional annotated MP4.

The tracker is deliberately simple (greedy matching of boxes by overlap): for a webcam or a
talking-head clip faces move little between analysed frames, and anything smarter would need
appearance features the expression model does not provide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ekspresi.errors import BadInputError
from ekspresi.infer.types import Face

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                              ".wmv", ".flv", ".3gp"})


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


def iter_frames(cap: cv2.VideoCapture) -> Iterator[tuple[int, float, np.ndarray]]:
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        yield index, (index / fps if fps > 0 else 0.0), frame
        index += 1


def analyze_video(recognizer, path: str | Path, *, every: int = 1,
                  annotate: str | Path | None = None,
                  progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Run ``recognizer`` on every ``every``-th frame of ``path``.

    Returns ``{"frames_read", "frames_analyzed", "fps", "width", "height", "timeline":
    [{"frame", "time", "faces": [Face, ...]}], "tracks": {id: summary}}``. With ``annotate``,
    an MP4 of every frame with the latest results drawn on it is written there.
    ``progress(n)`` is called after each frame read (for a progress bar).
    """
    from ekspresi.infer.annotate import draw_faces

    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    cap = open_video(path)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    tracker = IouTracker(max_age=max(2, int(round((fps or 25) / every))))
    writer = None
    timeline: list[dict[str, Any]] = []
    faces: list[Face] = []
    n = 0
    try:
        for n_idx, t, frame in iter_frames(cap):
            n = n_idx + 1
            if n_idx % every == 0:
                faces = tracker.update(recognizer.analyze(frame, name=f"{path}#frame{n_idx}"))
                timeline.append({"frame": n_idx, "time": round(t, 3), "faces": faces})
            if annotate is not None:
                if writer is None:
                    Path(annotate).parent.mkdir(parents=True, exist_ok=True)
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(annotate), cv2.VideoWriter_fourcc(*"mp4v"),
                                             fps or 25.0, (w, h))
                    if not writer.isOpened():
                        raise BadInputError(str(annotate), "cannot write an MP4 video here")
                writer.write(draw_faces(frame, faces))
            if progress:
                progress(1)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if n == 0:
        raise BadInputError(str(path), "no frames could be decoded (corrupt or empty video)")
    return {"frames_read": n, "frames_analyzed": len(timeline), "fps": fps, "width": width,
            "height": height, "timeline": timeline, "tracks": summarize_tracks(timeline)}


def summarize_tracks(timeline: list[dict[str, Any]]) -> list[Face]:
    """One Face per track: its first box, its mean class probabilities over the frames it
    appears in, and ``extra`` = first/last frame and the number of frames."""
    acc: dict[int, dict[str, Any]] = {}
    for row in timeline:
        for f in row["faces"]:
            a = acc.setdefault(f.track_id, {"face": f, "sum": dict.fromkeys(f.scores, 0.0),
                                            "n": 0, "first": row["frame"], "det": 0.0})
            a["n"] += 1
            a["det"] += f.detection_score
            a["last"] = row["frame"]
            for k, v in f.scores.items():
                a["sum"][k] += v
    return [dataclasses.replace(a["face"], scores={k: v / a["n"] for k, v in a["sum"].items()},
                                detection_score=a["det"] / a["n"],
                                extra={"frames": a["n"], "first_frame": a["first"],
                                       "last_frame": a["last"]})
            for _, a in sorted(acc.items())]
