"""Videos: reading them (PyAV: phone clips' rotation applied, variable frame rates timed by
their timestamps), following faces across frames with an IoU tracker, and writing annotated
clips that browsers and phones play: H.264 (yuv420p, ``+faststart``) MP4 through PyAV's
bundled libx264, encoded in a background thread. Only where libx264 is missing is a WebM
(VP8) written instead, said in one warning line. (The pip OpenCV wheels' FFmpeg has no
software H.264 encoder, and their MPEG-4 Part 2 files are refused by Chromium and Firefox.)

The IoU tracker is deliberately simple (greedy matching of boxes by overlap, then by
distance for tracks missed for a while); :mod:`ekspresi.infer.tracking` moves the boxes
between detections, so overlaps stay high from one analysed frame to the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
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


def has_h264() -> bool:
    """Whether PyAV with its libx264 encoder is installed (the ``av`` wheel ships it)."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


#: The containers written with H.264 through PyAV.
H264_SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})


@functools.lru_cache(maxsize=None)
def can_write(suffix: str) -> bool:
    """Whether a clip with this extension can be written here: H.264 containers through
    PyAV's libx264, the others (WRITER_CODECS) by this OpenCV, probed by writing a
    two-frame clip once per process."""
    suffix = suffix.lower()
    if suffix in H264_SUFFIXES and has_h264():
        return True
    codec = WRITER_CODECS.get(suffix)
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


#: x264 settings of annotated clips: ``superfast`` keeps encoding (in its own thread) cheaper
#: than analysing (benchmarks/video.py); the bit rate is capped at the input's.
H264_PRESET, H264_CRF = "superfast", 26


class H264Writer:
    """Writes BGR frames as H.264 (yuv420p) through PyAV, encoding in a background thread
    so that drawing and analysing the next frame overlap with it. ``max_bitrate`` (bits/s)
    caps the rate (x264's VBV), e.g. at the input's, so the output is not larger than it.
    Odd sizes lose their last row/column (yuv420p needs even ones)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], *,
                 max_bitrate: int | None = None):
        from fractions import Fraction

        import av

        self.path = path
        w, h = size
        self.size = (w - w % 2, h - h % 2)
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(25)
        self._out = av.open(str(path), "w", options={"movflags": "+faststart"})
        try:
            self._stream = self._out.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = self.size
            self._stream.pix_fmt = "yuv420p"
            opts = {"preset": H264_PRESET, "crf": str(H264_CRF)}
            if max_bitrate:   # a little under, with a one-second buffer: the whole clip
                # ends up no larger than the input even where the buffer fills up
                opts.update(maxrate=str(int(0.85 * max_bitrate)), bufsize=str(int(max_bitrate)))
            self._stream.options = opts
        except Exception:
            self._out.close()
            raise
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._encode, name="ekspresi-h264",
                                        daemon=True)
        self._thread.start()

    def _encode(self) -> None:
        import av

        w, h = self.size
        try:
            while (item := self._queue.get()) is not None:
                if self._error is not None:
                    continue
                draw, bgr = item
                if draw is not None:
                    bgr = draw(bgr)
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yuv = cv2.cvtColor(np.ascontiguousarray(bgr[:h, :w]), cv2.COLOR_BGR2YUV_I420)
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                for packet in self._stream.encode(frame):
                    self._out.mux(packet)
            if self._error is None:
                for packet in self._stream.encode():
                    self._out.mux(packet)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in release()
            self._error = exc
            while self._queue.get() is not None:    # let write() and release() finish
                pass

    def write(self, frame: np.ndarray, draw: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> None:
        """Queue ``frame`` (BGR or gray); ``draw(frame)``, when given, runs in the encoding
        thread and gives the picture written (the annotations), so drawing overlaps with
        analysing the next frame. ``frame`` must not be changed afterwards."""
        if self._error is not None:
            raise BadInputError(str(self.path), f"cannot write the video ({self._error})")
        self._queue.put((draw, frame))

    def release(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._out.close()
        if self._error is not None:
            raise BadInputError(str(self.path), f"cannot write the video ({self._error})")


_warned_webm = False


def open_writer(path: str | Path, fps: float, size: tuple[int, int], *,
                max_bitrate: int | None = None) -> tuple[H264Writer | cv2.VideoWriter, Path]:
    """A writer (``write(bgr)``, ``release()``) for ``path`` in a codec browsers play:
    H.264 MP4/MOV through PyAV, else WRITER_CODECS through OpenCV. Only where libx264 is
    missing is an H.264 request written as WebM (VP8) next to it, said once per process in
    one warning line; the path actually written is returned."""
    global _warned_webm
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in WRITER_CODECS:
        raise BadInputError(str(target), f"cannot write {suffix or 'a file without extension'}"
                                         f"; use one of {', '.join(sorted(WRITER_CODECS))}")
    if not can_write(suffix):
        fallback = target.with_suffix(".webm")
        if not _warned_webm:
            log.warning("no H.264 encoder here (install PyAV: pip install av); writing WebM "
                        "(VP8) to %s instead of %s", fallback, target)
            _warned_webm = True
        target, suffix = fallback, ".webm"
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix in H264_SUFFIXES:
        try:
            return H264Writer(target, fps, size, max_bitrate=max_bitrate), target
        except Exception as exc:  # noqa: BLE001 - PyAV's own error types
            raise BadInputError(str(target), f"cannot write a video here ({exc})") from exc
    with _quiet_stderr():   # OpenCV's FFmpeg prints "tag ... is not supported" for VP8
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
    unmatched faces start new tracks; tracks unseen for ``max_age`` updates end.

    ``reach`` > 0 lets a face that overlaps no track join an unseen one (missed for at least
    one update) whose last box is of similar size (within 1.5x) and whose centre lies within
    ``reach`` box widths of the face's: a person back after a gap who moved meanwhile."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 5, reach: float = 0.0):
        self.min_iou, self.max_age, self.reach = min_iou, max_age, reach
        self._tracks: dict[int, tuple[tuple[int, int, int, int], int]] = {}  # id -> (box, age)
        self._next = 1

    @classmethod
    def for_video(cls, fps: float, every: int) -> IouTracker:
        """The tracker every video path uses (``stream`` and the Ray engine's assembly, so
        both give the same track ids): a track unseen for about two seconds of video ends
        (``fps`` 0 = unknown counts as 25), after at least two analysed frames; within that
        time a face near where it was seen last joins it again (``reach`` 1.5 widths)."""
        return cls(max_age=max(2, int(round(2 * (fps or 25) / every))), reach=1.5)

    def _near(self, a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
        """How close ``a`` is to ``b`` in units of their width (inf when sizes differ)."""
        if not (1 / 1.5 <= (a[2] * a[3]) ** 0.5 / max((b[2] * b[3]) ** 0.5, 1e-6) <= 1.5):
            return float("inf")
        d = ((a[0] + a[2] / 2 - b[0] - b[2] / 2) ** 2 + (a[1] + a[3] / 2 - b[1] - b[3] / 2) ** 2)
        return d ** 0.5 / max(a[2], b[2], 1)

    def assign(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        """Track ids for ``boxes`` (one analysed frame's faces); ages the other tracks."""
        pairs = sorted(((iou(box, tbox), i, tid) for i, box in enumerate(boxes)
                        for tid, (tbox, _) in self._tracks.items()), reverse=True)
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for overlap, i, tid in pairs:
            if overlap < self.min_iou:
                break
            if i not in assigned and tid not in used:
                assigned[i] = tid
                used.add(tid)
        if self.reach > 0:
            near = sorted((self._near(box, tbox), i, tid) for i, box in enumerate(boxes)
                          for tid, (tbox, age) in self._tracks.items() if age > 0)
            for dist, i, tid in near:
                if dist > self.reach:
                    break
                if i not in assigned and tid not in used:
                    assigned[i] = tid
                    used.add(tid)
        for i in range(len(boxes)):
            if i not in assigned:
                assigned[i] = self._next
                self._next += 1
        self._tracks = {tid: (box, age + 1) for tid, (box, age) in self._tracks.items()
                        if tid not in used and age + 1 <= self.max_age}
        for i, box in enumerate(boxes):
            self._tracks[assigned[i]] = (tuple(box), 0)
        return [assigned[i] for i in range(len(boxes))]

    def update(self, faces: list[Face]) -> list[Face]:
        """``faces`` with their ``track_id`` (see :meth:`assign`)."""
        ids = self.assign([f.box for f in faces])
        return [dataclasses.replace(f, track_id=tid) for f, tid in zip(faces, ids)]

    def keep(self, tid: int, box: tuple[int, int, int, int]) -> None:
        """Track ``tid`` is still there, at ``box`` (followed without a detection)."""
        self._tracks[tid] = (tuple(box), 0)

    def carry(self, boxes: dict[int, tuple[int, int, int, int]]) -> None:
        """One analysed frame without detection: the tracks in ``boxes`` were followed there,
        the others age."""
        self._tracks = {tid: (box, age + 1) for tid, (box, age) in self._tracks.items()
                        if tid not in boxes and age + 1 <= self.max_age}
        for tid, box in boxes.items():
            self._tracks[tid] = (tuple(box), 0)

    def knows(self, tid: int) -> bool:
        return tid in self._tracks


def open_video(path: str | Path) -> cv2.VideoCapture:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(str(p), "no such file")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise BadInputError(str(p), "cannot open as a video (corrupt file or unsupported codec)")
    return cap


@dataclasses.dataclass
class VideoInfo:
    """What the container says about a video file (0 = unknown)."""

    fps: float
    width: int
    height: int
    frames: int
    bit_rate: int = 0
    rotation: int = 0


def _open_av(p: Path):
    import av

    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise BadInputError(str(p), "cannot open as a video (corrupt file or unsupported "
                                    "format)") from exc
    if not container.streams.video:
        container.close()
        raise BadInputError(str(p), "has no video track (an audio file?)")
    return container


def _info_av(p: Path) -> VideoInfo:
    container = _open_av(p)
    try:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        if not 0 < fps < 1000:
            fps = 0.0
        frames = int(s.frames or 0)
        if not frames and s.duration and s.time_base and fps:
            frames = int(round(float(s.duration * s.time_base) * fps))
        w, h = s.codec_context.width, s.codec_context.height
        rotation = 0
        try:   # the display matrix, read off the stream's side data by the first frame
            for frame in container.decode(s):
                rotation = int(frame.rotation or 0) % 360
                w, h = frame.width, frame.height
                break
        except Exception:  # noqa: BLE001 - a broken first frame: the reader will say
            pass
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(fps, int(w), int(h), frames, int(s.bit_rate or container.bit_rate or 0),
                         rotation)
    finally:
        container.close()


def probe_video(path: str | Path) -> VideoInfo:
    """:class:`VideoInfo` of the video at ``path`` (PyAV; OpenCV where PyAV is missing);
    a missing, corrupt or audio-only file raises BadInputError."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(str(p), "no such file")
    try:
        import av  # noqa: F401
    except ImportError:
        cap = open_video(p)
        try:
            return VideoInfo(float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                             int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                             int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                             int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        finally:
            cap.release()
    return _info_av(p)


def video_info(path: str | Path) -> tuple[float, int, int, int]:
    """Frame rate (0 when unknown), width, height (upright) and frame count (0 when
    unknown) of the video at ``path``, without decoding it."""
    info = probe_video(path)
    return info.fps, info.width, info.height, info.frames


class VideoFrames:
    """The upright BGR frames of a video file, decoded by PyAV in its own threads;
    ``time`` is the latest frame's timestamp in seconds (variable frame rates are timed
    right). A stream that breaks off after some frames ends there (a truncated file gives
    what it holds); one that gives no frame raises BadInputError."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.time: float | None = None
        self.frames = 0
        self._container = _open_av(self.path)

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        container = self._container
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            decoded = container.decode(stream)
            while True:
                try:
                    frame = next(decoded)
                except StopIteration:
                    break
                except (av.error.FFmpegError, ValueError) as exc:
                    if self.frames:
                        log.warning("%s: stopped after %d frames (%s)", self.path, self.frames,
                                    exc)
                        break
                    raise BadInputError(str(self.path), "no frames could be decoded (corrupt "
                                                        "or empty video)") from exc
                image = frame.to_ndarray(format="bgr24")
                rotation = int(frame.rotation or 0) % 360
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                if frame.time is not None:
                    start = frame.time if start is None else start
                    self.time = round(float(frame.time - start), 3)
                self.frames += 1
                yield image
        finally:
            container.close()

    def close(self) -> None:
        self._container.close()
