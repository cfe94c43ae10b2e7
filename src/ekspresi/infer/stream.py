"""The one frame loop: ``stream(recognizer, source)`` yields ``(frame, ImageResult)`` for an
image file, a video file, a camera (index, device or URL) or frames pushed by the caller (the
web app's WebSocket), so `ekspresi predict`, `ekspresi webcam`, the Video page and the
real-time page analyse frames the same way.

Every frame read is yielded; with ``every`` > 1 the frames in between carry the latest
result (the same object, so ``result is previous`` tells a skipped frame), which is what an
annotated clip or a live window draws. Unless ``track=False``, faces are followed across
frames by :class:`~ekspresi.infer.tracking.FaceFollower` (``track_id``): the detector runs
on some frames (``detect_every``), optical flow carries the faces in between, every
analysed frame is classified, and each track's probabilities are smoothed over
``smoothing`` seconds (:data:`~ekspresi.infer.tracking.SMOOTHING_S`; 0 = off). With
``track=False`` every analysed frame is detected afresh and nothing is smoothed.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ekspresi.errors import BadInputError
from ekspresi.imaging import read_image
from ekspresi.infer.results import ImageResult, VideoResult
from ekspresi.infer.sources import IMAGE_EXTENSIONS
from ekspresi.infer.tracking import SMOOTHING_S, FaceFollower, auto_detect_every
from ekspresi.infer.video import H264Writer, VideoFrames, open_video, open_writer, probe_video

#: Where frames come from: an image or video path, a camera index, a device or URL string,
#: or an iterable of decoded frames (:class:`PushedFrames` for frames arriving one by one).
Source = str | Path | int | Iterable[np.ndarray]


class PushedFrames:
    """Frames handed in one at a time (``push(frame, t)``, then read the stream's next item):
    the WebSocket's frames, which arrive asynchronously, through the same loop.

    ``t`` is the frame's capture time in seconds on the sender's clock (any origin); without
    one, the time it was pushed counts. ``time`` is the latest frame's time since the first
    one, never going backwards, so :func:`stream` smooths over real time however unevenly
    frames come. ``fps`` is the rate the frames are expected at (it sets how often faces are
    detected and how long a lost face's track is kept, see
    :class:`~ekspresi.infer.tracking.FaceFollower`)."""

    def __init__(self, fps: float = 0.0) -> None:
        self.fps = fps
        self.time: float | None = None
        self._queue: queue.SimpleQueue[tuple[np.ndarray, float] | None] = queue.SimpleQueue()
        self._origin: dict[bool, float] = {}    # first time seen on each clock

    def push(self, frame: np.ndarray, t: float | None = None) -> None:
        sender = t is not None and math.isfinite(t)
        now = float(t) if sender else time.monotonic()
        since = now - self._origin.setdefault(sender, now)
        self._queue.put((frame, since))

    def close(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[np.ndarray]:
        while (item := self._queue.get()) is not None:
            frame, since = item
            self.time = max(since, self.time or 0.0)
            yield frame


def _capture_frames(cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def open_capture(source: str | Path | int) -> tuple[Iterator[np.ndarray], float]:
    """The frames of a video file (:class:`~ekspresi.infer.video.VideoFrames`, upright),
    camera index, device or URL, and its frame rate (0 when unknown). A missing file or a
    camera that cannot be opened raises BadInputError."""
    if not isinstance(source, int) and Path(source).is_file():
        try:
            import av  # noqa: F401
        except ImportError:
            pass
        else:
            return VideoFrames(source), probe_video(source).fps
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise BadInputError(f"camera {source}", "cannot open it (no camera, or in use by "
                                                    "another program)")
    elif Path(source).is_file():
        cap = open_video(source)
    else:
        cap = cv2.VideoCapture(str(source))
        if not cap.isOpened():
            raise BadInputError(str(source), "no such file, and not a camera device or "
                                             "stream URL that can be opened")
    return _capture_frames(cap), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)


def stream(recognizer, source: Source, *, every: int = 1, track: bool = True,
           name: str | None = None, max_frames: int | None = None,
           progress: Callable[[int], Any] | None = None, detect_every: int | None = None,
           smoothing: float | None = None, raw_scores: bool = False
           ) -> Iterator[tuple[np.ndarray, ImageResult]]:
    """``(frame, result)`` for every frame of ``source`` (an image file gives one). Results
    carry ``frame`` (0-based index) and ``time`` (seconds: the frame's timestamp, else from
    the source's frame rate); their ``image`` is dropped (draw with ``result.plot(frame)``).
    A video longer than ``max_frames`` raises BadInputError; ``progress(1)`` is called
    after each frame read. ``detect_every`` / ``smoothing`` / ``raw_scores``: see
    :class:`~ekspresi.infer.tracking.FaceFollower` (videos and cameras only)."""
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    label = name or (str(source) if isinstance(source, (str, Path, int)) else "frame")
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        image = read_image(source, name=label)
        result = recognizer.analyze(image, name=label)
        if progress:
            progress(1)
        yield image, dataclasses.replace(result, image=None, frame=0, time=0.0)
        return
    if isinstance(source, (str, Path, int)):
        frames, fps = open_capture(source)
    else:   # frames that know their times (PushedFrames) are read through themselves
        frames = source if hasattr(source, "time") else iter(source)
        fps = float(getattr(source, "fps", 0.0) or 0.0)
    follower = FaceFollower(recognizer, fps=fps, every=every, detect_every=detect_every,
                            smoothing=smoothing, raw_scores=raw_scores) if track else None
    result: ImageResult | None = None
    try:
        for index, frame in enumerate(frames):
            if max_frames is not None and index >= max_frames:
                raise BadInputError(label, f"longer than {max_frames} frames; cut it shorter "
                                           "or use `ekspresi predict`")
            if index % every == 0:
                t = getattr(frames, "time", None)
                if t is None:
                    t = index / fps if fps > 0 else 0.0
                if follower is not None:
                    result = follower.step(frame, index, round(t, 3),
                                           name=f"{label}#frame{index}")
                    result.file = None
                else:
                    found = recognizer.analyze(frame, name=f"{label}#frame{index}")
                    result = dataclasses.replace(found, image=None, file=None, frame=index,
                                                 time=round(t, 3))
            if progress:
                progress(1)
            yield frame, result
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def analyze_video(recognizer, path: str | Path, *, every: int = 1,
                  annotate: str | Path | None = None,
                  progress: Callable[[int], Any] | None = None,
                  max_frames: int | None = None, detect_every: int | None = None,
                  smoothing: float | None = None,
                  cancelled: Callable[[], bool] | None = None) -> VideoResult:
    """Every ``every``-th frame of the video at ``path`` through :func:`stream`, as a
    :class:`VideoResult`. With ``annotate``, a clip of every frame with the latest results
    drawn on it is written there (H.264 for .mp4, see
    :func:`~ekspresi.infer.video.open_writer`; ``annotated`` is the path actually written),
    its bit rate capped at the input's. ``cancelled()`` returning true stops the work
    (:class:`Cancelled`) and removes the partial clip."""
    info = probe_video(path)
    fps = info.fps
    writer = None
    written: Path | None = None
    frames: list[ImageResult] = []
    n = 0
    complete = False
    try:
        for frame, result in stream(recognizer, Path(path), every=every, name=str(path),
                                    max_frames=max_frames, progress=progress,
                                    detect_every=detect_every, smoothing=smoothing):
            if cancelled is not None and cancelled():
                raise Cancelled(str(path))
            n += 1
            if not frames or frames[-1] is not result:
                frames.append(result)
            if annotate is not None:
                if writer is None:
                    h, w = frame.shape[:2]
                    rate = max(info.bit_rate, 100_000) if info.bit_rate else None
                    writer, written = open_writer(annotate, fps or 25.0, (w, h),
                                                  max_bitrate=rate)
                if isinstance(writer, H264Writer):   # drawn in the encoding thread
                    writer.write(frame, draw=result.plot)
                else:
                    writer.write(result.plot(frame))
        complete = True
    finally:
        if writer is not None:
            try:
                writer.release()
            finally:
                if not complete and written is not None:
                    written.unlink(missing_ok=True)
    if n == 0:
        raise BadInputError(str(path), "no frames could be decoded (corrupt or empty video)")
    return VideoResult(frames, frames_read=n, fps=fps, width=info.width, height=info.height,
                       file=str(path), annotated=written,
                       detect_every=detect_every or auto_detect_every(fps, every),
                       smoothing_s=SMOOTHING_S if smoothing is None else max(0.0, smoothing))


class Cancelled(Exception):
    """The caller stopped :func:`analyze_video` (its ``cancelled()`` said so)."""
