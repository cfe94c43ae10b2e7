"""The Video page's work: analyse an uploaded clip with :func:`ekspresi.infer.stream.analyze_video`
and keep the last few results (annotated clip and timeline CSV) in a temporary folder, so the
browser can play and download them by id. Nothing is kept after the server stops.

A clip is analysed either within its request (``POST /api/v1/video``) or as a background
:class:`VideoJob` (``POST /api/v1/video/jobs``) whose progress (frames done, percent, ETA)
the page follows as server-sent events and which it can cancel: a cancelled job stops at
the next frame and leaves no file behind."""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError
from ekspresi.infer import output
from ekspresi.infer.stream import Cancelled, analyze_video
from ekspresi.infer.video import VIDEO_EXTENSIONS, VIDEO_MIME, browser_video_suffix, video_info

#: Longest clip the web app analyses (frames read); longer ones belong to `ekspresi predict`.
MAX_VIDEO_FRAMES = 1800
#: How many analysed clips are kept for playing and downloading.
KEEP = 8
#: Analyse about this many frames per second of video unless told otherwise.
AUTO_RATE = 10.0
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,32}$")


@dataclass
class StoredVideo:
    clip: Path | None
    csv: str
    name: str

    @property
    def clip_type(self) -> str:
        return VIDEO_MIME.get(self.clip.suffix.lower(), "application/octet-stream") \
            if self.clip else ""


class VideoStore:
    """The last KEEP analysed clips, by random id, in one temporary folder."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ekspresi-videos-"))
        self._items: OrderedDict[str, StoredVideo] = OrderedDict()
        self._lock = threading.Lock()
        atexit.register(self.close)   # SIGINT; SIGTERM goes through the app's lifespan

    def close(self) -> None:
        """Remove every kept clip and the folder (the app's shutdown calls this)."""
        with self._lock:
            self._items.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_dir(self) -> tuple[str, Path]:
        vid = secrets.token_urlsafe(12)
        folder = self.root / vid
        folder.mkdir()
        return vid, folder

    def put(self, vid: str, item: StoredVideo) -> None:
        with self._lock:
            self._items[vid] = item
            while len(self._items) > KEEP:
                old, _ = self._items.popitem(last=False)
                shutil.rmtree(self.root / old, ignore_errors=True)

    def get(self, vid: str) -> StoredVideo | None:
        if not ID_PATTERN.match(vid):
            return None
        with self._lock:
            return self._items.get(vid)


def analyze_upload(recognizer, store: VideoStore, data: bytes, name: str,
                   every: int | None, *,
                   progress: Callable[[int, int], Any] | None = None,
                   cancelled: Callable[[], bool] | None = None,
                   accept: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the upload to the store's folder, analyse it, keep the annotated clip and the
    timeline CSV; returns the JSON answer (with ``clip_type`` when a clip was written;
    without the URLs, which the route adds). ``progress(done, total)`` after each frame
    (``total`` 0 = unknown); ``cancelled()`` true stops it (:class:`Cancelled`), and, as
    any error, removes its folder. ``accept(width, height)`` sees the frame size from the
    container header before any frame is decoded and raises to refuse the clip."""
    vid, folder = store.new_dir()
    suffix = Path(name).suffix.lower()
    source = folder / ("input" + (suffix if suffix in VIDEO_EXTENSIONS else ".bin"))
    try:
        source.write_bytes(data)
        fps, width, height, total = video_info(source)
        if accept is not None:
            accept(width, height)
        if total > MAX_VIDEO_FRAMES:  # refused from the header, before any frame is decoded
            raise BadInputError(name, f"{total:,} frames"
                                + (f" ({total / fps:.0f} s)" if fps > 0 else "")
                                + f": longer than {MAX_VIDEO_FRAMES} frames; cut it shorter or "
                                "use `ekspresi predict`")
        if every is None:
            every = max(1, round(fps / AUTO_RATE)) if fps > 0 else 1
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress(done, min(total, MAX_VIDEO_FRAMES))

        result = analyze_video(recognizer, source, every=every,
                               annotate=folder / ("annotated" + browser_video_suffix()),
                               max_frames=MAX_VIDEO_FRAMES,
                               progress=tick if progress else None, cancelled=cancelled)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        source.unlink(missing_ok=True)
    result.file = name
    item = StoredVideo(result.annotated, output.to_csv([result]), name)
    store.put(vid, item)
    out = result.to_dict()
    out.update(id=vid, every=every, duration_s=round(result.frames_read / (result.fps or 25.0), 3),
               tracks=out.pop("faces"))
    if item.clip is not None:
        out["clip_type"] = item.clip_type
    return out


class JobsBusy(Exception):
    """Too many clips are being analysed already."""


@dataclass
class VideoJob:
    """One clip analysed in the background: progress, then ``result`` (the answer of
    ``POST /api/v1/video``) or ``error`` (HTTP status, detail), or ``cancelled``."""

    id: str
    name: str
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: tuple[int, str] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def state(self) -> str:
        if self.finished is None:
            return "cancelling" if self.cancel.is_set() else "running"
        if self.result is not None:
            return "done"
        return "cancelled" if self.error is None else "error"

    def progress(self) -> dict[str, Any]:
        """``{"state", "done", "total", "percent", "eta_s", "elapsed_s"}`` (``percent`` and
        ``eta_s`` null while the frame count is unknown)."""
        elapsed = (self.finished or time.monotonic()) - self.started
        percent = eta = None
        if self.total:
            percent = round(min(100.0, 100.0 * self.done / self.total), 1)
            if self.done:
                eta = round(max(0.0, elapsed / self.done * (self.total - self.done)), 1)
        return {"state": self.state, "done": self.done, "total": self.total,
                "percent": percent, "eta_s": eta, "elapsed_s": round(elapsed, 1)}


class VideoJobs:
    """The background analyses of this server: at most ``max_running`` at a time (more
    raise :class:`JobsBusy`); finished ones are forgotten after ``keep_s`` seconds."""

    def __init__(self, max_running: int = 2, keep_s: float = 600.0):
        self.max_running, self.keep_s = max_running, keep_s
        self._jobs: dict[str, VideoJob] = {}
        self._lock = threading.Lock()

    def start(self, work: Callable[[VideoJob], dict[str, Any]], name: str,
              errors: Callable[[BaseException], tuple[int, str]]) -> VideoJob:
        """Run ``work(job)`` in a thread; its return value is the job's result, an
        exception becomes ``errors(exc)`` (a cancelled job has neither)."""
        with self._lock:
            now = time.monotonic()
            for jid in [j for j, job in self._jobs.items()
                        if job.finished is not None and now - job.finished > self.keep_s]:
                del self._jobs[jid]
            if sum(job.finished is None for job in self._jobs.values()) >= self.max_running:
                raise JobsBusy(f"{self.max_running} videos are being analysed already; try "
                               "again in a moment")
            job = VideoJob(secrets.token_urlsafe(12), name)
            self._jobs[job.id] = job

        def run() -> None:
            try:
                job.result = work(job)
            except Cancelled:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported to the page
                job.error = errors(exc)
            finally:
                job.finished = time.monotonic()

        threading.Thread(target=run, name=f"ekspresi-video-{job.id}", daemon=True).start()
        return job

    def get(self, jid: str) -> VideoJob | None:
        if not ID_PATTERN.match(jid):
            return None
        with self._lock:
            return self._jobs.get(jid)

    def running(self) -> int:
        with self._lock:
            return sum(job.finished is None for job in self._jobs.values())
