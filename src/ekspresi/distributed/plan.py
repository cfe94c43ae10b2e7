"""What a batch job does: its settings, and its work cut into units and tasks.

A *unit* is one image or one frame range of a video; a *task* is what one actor call
processes (several images, or one frame range), so that a long video spreads over many
workers and tiny images do not pay one remote call each. Planning runs on the driver, which
must see the sources (as every worker must: on a cluster they live on shared storage).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Frames per video unit: long enough that seeking (decoding from the previous key frame)
#: is a small overhead, short enough that one long video feeds many workers.
DEFAULT_CHUNK_FRAMES = 300
#: Images per task: one remote call and one classifier call for all their faces.
DEFAULT_IMAGES_PER_TASK = 16


@dataclass(frozen=True)
class Settings:
    """Everything that decides the rows of a job (recorded in the output; a rerun into the
    same output must use the same settings) plus how the work is cut (which does not)."""

    model: str                      # absolute bundle directory
    model_sha256: str
    detector: str = "default"
    min_face_size: int | None = None   # None: the sensitivity's smallest face
    score_threshold: float | None = None
    max_faces: int | None = None
    margin: float | None = None
    align: bool = True
    every: int = 1
    threads: int | None = None
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    images_per_task: int = DEFAULT_IMAGES_PER_TASK
    sensitivity: str = "normal"

    #: Fields that do not change results.
    NOT_IDENTITY = ("model", "threads", "chunk_frames", "images_per_task")

    def identity(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.NOT_IDENTITY}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def make_recognizer(self):
        from ekspresi.infer.recognizer import Recognizer

        return Recognizer(self.model, self.detector, threads=self.threads,
                          min_face_size=self.min_face_size,
                          score_threshold=self.score_threshold, max_faces=self.max_faces,
                          margin=self.margin, align=self.align,
                          sensitivity=self.sensitivity)


@dataclass(frozen=True)
class Unit:
    """One image (``start == 0, end == None``) or frames ``[start, end)`` of a video
    (``end=None``: to the end). ``source`` is the name users gave, ``path`` absolute."""

    source: str
    path: str
    kind: str                       # "image" | "video"
    start: int = 0
    end: int | None = None
    work: int = 1                   # images + video frames to read (progress bar)
    error: str | None = None        # known before any work (missing file, empty folder)


def video_frame_count(path: str) -> int:
    """Frames in the container's header (0 when unknown); may be slightly wrong, so the
    last unit of a video always reads to the end."""
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()


def plan_units(paths: list[str], *, recursive: bool, chunk_frames: int) -> list[Unit]:
    """Sources in the same order and with the same checks as ``ekspresi predict`` (each
    once); videos cut into ``chunk_frames`` frame ranges."""
    from ekspresi.infer.sources import expand_paths
    from ekspresi.infer.video import is_video

    units: list[Unit] = []
    seen: set[str] = set()
    for path, problem in expand_paths(paths, recursive):
        source, absolute = str(path), str(path.resolve())
        if source in seen:          # given twice (a file and its folder): one source
            continue
        seen.add(source)
        if problem:
            units.append(Unit(source, absolute, "image", error=problem))
        elif not is_video(path):
            units.append(Unit(source, absolute, "image"))
        else:
            total = video_frame_count(absolute)
            starts = list(range(0, total, chunk_frames)) or [0]
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else None
                span = (end if end is not None else max(total, start + 1)) - start
                units.append(Unit(source, absolute, "video", start, end, work=span))
    return units


def make_tasks(units: list[Unit], images_per_task: int) -> list[list[Unit]]:
    """Images grouped ``images_per_task`` at a time; each video range is a task alone."""
    tasks: list[list[Unit]] = []
    images: list[Unit] = []
    for u in units:
        if u.kind == "video":
            tasks.append([u])
        else:
            images.append(u)
            if len(images) == images_per_task:
                tasks.append(images)
                images = []
    if images:
        tasks.append(images)
    return tasks


def units_to_json(units: list[Unit]) -> str:
    return json.dumps([dataclasses.asdict(u) for u in units])


def units_from_json(text: str) -> list[Unit]:
    return [Unit(**d) for d in json.loads(text)]


def bundle_identity(model: str | Path | None) -> tuple[str, str]:
    """(absolute bundle directory, sha256), loading and verifying the bundle: a missing or
    broken model fails here, before any cluster is contacted."""
    from ekspresi.infer.resolve import load_model

    bundle = load_model(model)
    return str(Path(bundle.path).resolve()), bundle.sha256
