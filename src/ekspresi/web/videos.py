"""The Video page's work: analyse an uploaded clip with :func:`ekspresi.infer.stream.analyze_video`
and keep the last few results (annotated clip and timeline CSV) in a temporary folder, so the
browser can play and download them by id. Nothing is kept after the server stops."""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ekspresi.infer import output
from ekspresi.infer.stream import analyze_video
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


class Cancelled(Exception):
    """The analysis was stopped (its client went away)."""


def analyze_upload(recognizer, store: VideoStore, data: bytes, name: str,
                   every: int | None, *, accept: Callable[[int, int], None] | None = None,
                   stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Write the upload to the store's folder, analyse it, keep the annotated clip and the
    timeline CSV; returns the JSON answer (with ``clip_type`` when a clip was written;
    without the URLs, which the route adds). ``accept(width, height)`` sees the frame size
    from the container header before anything is decoded and raises to refuse it;
    ``stop()`` is asked after every frame read, and True ends the work with
    :class:`Cancelled`. Whatever the failure, the clip's folder is removed."""
    vid, folder = store.new_dir()
    suffix = Path(name).suffix.lower()
    source = folder / ("input" + (suffix if suffix in VIDEO_EXTENSIONS else ".bin"))

    def check_stop(_: int) -> None:
        if stop is not None and stop():
            raise Cancelled(name)

    try:
        source.write_bytes(data)
        if every is None or accept is not None:
            fps, width, height, _ = video_info(source)
            if accept is not None:
                accept(width, height)
            if every is None:
                every = max(1, round(fps / AUTO_RATE)) if fps > 0 else 1
        result = analyze_video(recognizer, source, every=every,
                               annotate=folder / ("annotated" + browser_video_suffix()),
                               progress=check_stop if stop is not None else None,
                               max_frames=MAX_VIDEO_FRAMES)
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
