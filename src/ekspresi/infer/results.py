"""Typed results that draw themselves (as ultralytics' ``Results``): what
:class:`~ekspresi.infer.recognizer.Recognizer` returns for an image (:class:`ImageResult`), a
video (:class:`VideoResult`) and the step-by-step trace of one image (:class:`Trace`). Each
has ``to_dict()`` (the JSON shape of :mod:`ekspresi.infer.schema`), ``plot()`` (a BGR numpy
picture) and ``save(path)`` (``.json``: the dict; any image extension: the picture)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ekspresi.detect.types import Detection
from ekspresi.errors import BadInputError
from ekspresi.infer import schema
from ekspresi.infer.draw import colour_of, draw_candidates, draw_faces, hex_to_bgr
from ekspresi.infer.types import Face
from ekspresi.preprocess import InputSpec


def _save(path: str | Path, as_dict: dict[str, Any], picture) -> Path:
    """``.json`` -> the dict, else the picture ``picture()`` in the format of the suffix."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps(as_dict, indent=2) + "\n")
    else:
        try:
            ok = cv2.imwrite(str(p), picture())
        except cv2.error:   # no encoder for this extension
            ok = False
        if not ok:
            raise BadInputError(str(p), "cannot write the picture here (use .png, .jpg or "
                                        ".json)")
    return p


@dataclass
class ImageResult(Sequence[Face]):
    """The faces of one image (or one video frame) in reading order, numbered from 1; a
    sequence of :class:`Face` (``len(result)``, ``result[0]``, ``for face in result``).

    ``image`` is the decoded upright BGR/gray image :meth:`plot` draws on (``None`` once
    dropped, e.g. for the frames a :class:`VideoResult` keeps); ``frame`` / ``time`` place
    a video frame; ``timings_ms`` holds the milliseconds per stage."""

    faces: list[Face]
    width: int
    height: int
    file: str | None = None
    min_face_px: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    frame: int | None = None
    time: float | None = None

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index):  # type: ignore[override]
        return self.faces[index]

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    def to_dict(self) -> dict[str, Any]:
        """``{"file"?, "faces", "width", "height", "min_face_px"?, "timings_ms"}``."""
        return schema.ImageResultModel(
            file=self.file, faces=[f.to_dict() for f in self.faces], width=self.width,
            height=self.height, min_face_px=self.min_face_px, timings_ms=self.timings_ms,
        ).model_dump(exclude_none=True)

    def frame_dict(self) -> dict[str, Any]:
        """This frame in a video's timeline: ``{"frame", "time", "faces"}``."""
        return schema.FrameModel(frame=self.frame or 0, time=round(self.time or 0.0, 3),
                                 faces=[f.to_dict() for f in self.faces]).model_dump(
            exclude_none=True)

    def plot(self, image: np.ndarray | None = None, *, bars: bool = True) -> np.ndarray:
        """The image (``image``, else the one analysed) with every face's box, tag and, when
        ``bars``, its probabilities drawn in the palette."""
        base = self.image if image is None else image
        if base is None:
            raise ValueError("this result keeps no image; pass the one it was made from")
        return draw_faces(base, self.faces, bars=bars)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`plot` (an image extension) or :meth:`to_dict` (``.json``)."""
        return _save(path, self.to_dict(), self.plot)


@dataclass
class VideoResult:
    """A video: every analysed frame (``frames``, images dropped), one summary per face
    track (``tracks``: first box, mean probabilities, frame counts in ``extra``), and the
    path of the annotated clip when one was written."""

    frames: list[ImageResult]
    frames_read: int
    fps: float
    width: int
    height: int
    file: str | None = None
    annotated: Path | None = None
    detect_every: int | None = None
    smoothing_s: float | None = None

    @property
    def frames_analyzed(self) -> int:
        return len(self.frames)

    @property
    def tracks(self) -> list[Face]:
        return summarize_tracks(self.frames)

    def info(self) -> dict[str, Any]:
        out = {"frames_read": self.frames_read, "frames_analyzed": self.frames_analyzed,
               "fps": self.fps, "width": self.width, "height": self.height}
        if self.detect_every is not None:
            out.update(detect_every=self.detect_every, smoothing_s=self.smoothing_s)
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{"file"?, "faces" (per track), "video" (counts, fps, size), "timeline"}``."""
        return schema.VideoResultModel(
            file=self.file, faces=[f.to_dict() for f in self.tracks], video=self.info(),
            timeline=[r.frame_dict() for r in self.frames]).model_dump(exclude_none=True)

    def plot(self, width: int = 640, height: int = 240) -> np.ndarray:
        """Each emotion's probability over time (mean over the faces of each analysed
        frame), one line per class in its palette colour, on a white chart."""
        out = np.full((height, width, 3), 255, np.uint8)
        pad = 10
        cv2.rectangle(out, (pad, pad), (width - pad, height - pad), (200, 200, 200), 1)
        rows = [r for r in self.frames if r.faces]
        if not rows:
            return out
        last = max(self.frames_read - 1, 1)
        classes = list(rows[0].faces[0].scores)
        for c in classes:
            pts = [(pad + (width - 2 * pad) * (r.frame or 0) / last,
                    height - pad - (height - 2 * pad)
                    * float(np.mean([f.scores.get(c, 0.0) for f in r.faces])))
                   for r in rows]
            cv2.polylines(out, [np.round(np.array(pts)).astype(np.int32)], False,
                          hex_to_bgr(colour_of(c)), 2, cv2.LINE_AA)
        return out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`plot` (an image extension) or :meth:`to_dict` (``.json``)."""
        return _save(path, self.to_dict(), self.plot)


def summarize_tracks(frames: Sequence[ImageResult]) -> list[Face]:
    """One Face per track: its first box, its mean class probabilities over the frames it
    appears in, and ``extra`` = first/last frame and the number of frames."""
    import dataclasses

    acc: dict[int | None, dict[str, Any]] = {}
    for row in frames:
        for f in row.faces:
            a = acc.setdefault(f.track_id, {"face": f, "sum": dict.fromkeys(f.scores, 0.0),
                                            "n": 0, "first": row.frame, "det": 0.0})
            a["n"] += 1
            a["det"] += f.detection_score
            a["last"] = row.frame
            for k, v in f.scores.items():
                a["sum"][k] += v
    return [dataclasses.replace(a["face"], scores={k: v / a["n"] for k, v in a["sum"].items()},
                                detection_score=a["det"] / a["n"],
                                extra={"frames": a["n"], "first_frame": a["first"],
                                       "last_frame": a["last"]})
            for _, a in sorted(acc.items(), key=lambda kv: kv[0] or 0)]


@dataclass
class Trace:
    """Every intermediate stage of one image, for the web app's step-by-step page.

    ``original`` (BGR uint8), ``gray``, ``candidates`` (every detector candidate and whether
    it was kept), ``crops`` (eye-levelled, source resolution), ``rotations`` (degrees),
    ``model_inputs`` (uint8 (N, size, size), exactly what ONNX Runtime receives as float32
    0..255), ``probabilities`` (N, C), ``result`` (the :class:`ImageResult`), ``saliency``
    (float32 (size, size) maps in 0..1, for the first faces), ``classes``, ``input_spec``,
    ``detector``. Detections and everything after them are in reading order."""

    original: np.ndarray = field(repr=False)
    gray: np.ndarray = field(repr=False)
    candidates: list[tuple[Detection, bool]]
    crops: list[np.ndarray] = field(repr=False)
    rotations: list[float]
    model_inputs: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    result: ImageResult
    saliency: list[np.ndarray] = field(repr=False)
    classes: tuple[str, ...]
    input_spec: InputSpec
    detector: str

    @property
    def faces(self) -> list[Face]:
        return self.result.faces

    @property
    def detections(self) -> list[Detection]:
        return [d for d, kept in self.candidates if kept]

    def to_dict(self) -> dict[str, Any]:
        """The numbers of every stage (:class:`ekspresi.infer.schema.TraceModel`)."""
        return schema.TraceModel(
            width=self.result.width, height=self.result.height, detector=self.detector,
            classes=list(self.classes),
            candidates=[{"box": [int(v) for v in d.box], "score": round(float(d.score), 4),
                         "accepted": bool(kept)} for d, kept in self.candidates],
            faces=[f.to_dict() for f in self.faces], min_face_px=self.result.min_face_px or 0,
            timings_ms=self.result.timings_ms).model_dump(exclude_none=True)

    def plot(self) -> np.ndarray:
        """The detection stage: every candidate with its score, kept ones with landmarks."""
        return draw_candidates(self.original, self.candidates)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`plot` (an image extension) or :meth:`to_dict` (``.json``)."""
        return _save(path, self.to_dict(), self.plot)


@dataclass
class FailedInput:
    """An input `ekspresi predict` could not use: reported beside the others' results."""

    file: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return schema.FailedInputModel(file=self.file, error=self.error).model_dump()
