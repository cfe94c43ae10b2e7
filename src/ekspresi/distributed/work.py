"""The work itself: a task of units through one Recognizer (what each Ray actor runs), the
same sources one by one as ``ekspresi predict`` does (the local engine), and the assembly of
a video's frame ranges back into one result.

Both engines produce :class:`SourceResult` objects from the same detector, crops and
classifier; the Ray path differs only in *how* the work is cut (frame ranges read after a
seek, all faces of a task classified in one batched call), and the tests check that this
changes nothing in the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ekspresi.distributed.plan import Unit
from ekspresi.errors import BadInputError, EkspresiError
from ekspresi.infer.types import Face

#: One analysed image or frame: (frame index or None for images, time in s or None, faces).
Entry = tuple[int | None, float | None, list[Face]]


@dataclass
class UnitResult:
    unit: Unit
    entries: list[Entry] = field(default_factory=list)
    frames_read: int = 0
    video: dict[str, Any] = field(default_factory=dict)     # fps, width, height
    error: str | None = None


@dataclass
class SourceResult:
    """Everything the output needs about one source; ``entries`` of a video are its
    analysed frames in order, faces carrying track ids."""

    source: str
    kind: str
    entries: list[Entry] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def error_text(exc: BaseException, unit: Unit) -> str:
    """The problem, without the file name when the error names our own source (as
    ``ekspresi predict`` reports it); unexpected exceptions keep their type."""
    if isinstance(exc, BadInputError) and exc.path in (unit.source, unit.path):
        return exc.problem
    if isinstance(exc, EkspresiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# -- the Ray worker's path ----------------------------------------------------------------------
def _video_frames(unit: Unit, every: int, result: UnitResult):
    """Yields (index, time, frame) for the analysed frames of ``unit`` (frames ``start`` to
    ``end``), read by the decoder ``ekspresi predict`` uses (PyAV: upright frames, the same
    errors for bad files), so both engines give the same rows; counts the frames of the
    range read in ``result.frames_read``. The frames before ``start`` are decoded and
    dropped: a container seek lands on a keyframe, not on a frame index."""
    from ekspresi.infer.video import VideoFrames, probe_video

    info = probe_video(unit.path)
    fps = info.fps
    result.video = {"fps": fps, "width": info.width, "height": info.height}
    frames = VideoFrames(unit.path)
    try:
        for index, frame in enumerate(frames):
            if unit.end is not None and index >= unit.end:
                return
            if index < unit.start:
                continue
            result.frames_read += 1
            if index % every == 0:
                yield index, (index / fps if fps > 0 else 0.0), frame
    finally:
        frames.close()


def process_task(recognizer, units: list[Unit], every: int) -> list[UnitResult]:
    """Detect and crop faces in every image / analysed frame of ``units``, then classify all
    crops in ONE batched classifier call. A unit that fails becomes an error result; the
    others go on."""
    from ekspresi.imaging import read_image
    from ekspresi.infer.recognizer import in_reading_order

    results: list[UnitResult] = []
    pending: list[tuple[UnitResult, int | None, float | None, list, list[float]]] = []
    crops: list[np.ndarray] = []
    for unit in units:
        res = UnitResult(unit)
        results.append(res)
        mark_pending, mark_crops = len(pending), len(crops)
        try:
            if unit.error:
                raise BadInputError(unit.source, unit.error)
            if unit.kind == "image":
                frames = [(None, None, read_image(unit.path, name=unit.source))]
            else:
                frames = _video_frames(unit, every, res)
            for index, t, image in frames:
                # the same faces in the same (reading) order as Recognizer.analyze
                detections = in_reading_order(recognizer.detector.detect(image))
                batch, _, angles = recognizer.crop_faces(image, detections)
                crops.extend(batch)
                pending.append((res, index, t, detections, angles))
            if unit.kind == "video" and unit.start == 0 and res.frames_read == 0:
                raise BadInputError(unit.source, "no frames could be decoded "
                                                 "(corrupt or empty video)")
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the job
            del pending[mark_pending:], crops[mark_crops:]
            res.error = error_text(exc, unit)
    proba = recognizer.classifier.predict_proba(np.stack(crops)) if crops else np.zeros((0, 0))
    row = 0
    for res, index, t, detections, angles in pending:
        faces = recognizer.make_faces(detections, proba[row:row + len(detections)], angles)
        row += len(detections)
        res.entries.append((index, t, faces))
    return results


def assemble(source: str, kind: str, parts: list[UnitResult], every: int) -> SourceResult:
    """One source from its units (a video's frame ranges in any order): frames in order,
    track ids given by the same tracker, with the same settings, as ``analyze_video``."""
    from ekspresi.infer.video import IouTracker

    parts = sorted(parts, key=lambda r: r.unit.start)
    failed = [r for r in parts if r.error]
    if failed:
        return SourceResult(source, kind, error=failed[0].error)
    if kind == "image":
        return SourceResult(source, kind, entries=parts[0].entries)
    frames_read = sum(r.frames_read for r in parts)
    if frames_read == 0:
        return SourceResult(source, kind,
                            error="no frames could be decoded (corrupt or empty video)")
    video = parts[0].video
    fps = video.get("fps", 0.0)
    tracker = IouTracker.for_video(fps, every)
    entries = [(i, t, tracker.update(faces)) for r in parts for i, t, faces in r.entries]
    info = {"frames_read": frames_read, "frames_analyzed": len(entries), **video}
    return SourceResult(source, kind, entries=entries, info=info)


# -- the local engine's path --------------------------------------------------------------------
def analyze_source(recognizer, unit: Unit, every: int,
                   progress: Callable[[int], Any] | None = None) -> SourceResult:
    """One whole source in this process, exactly as ``ekspresi predict`` analyses it;
    ``progress(n)`` after each image (read or not) / video frame read."""
    from ekspresi.imaging import read_image
    from ekspresi.infer.stream import analyze_video

    try:
        if unit.kind == "image":     # also the planned errors (missing path, empty folder)
            try:
                if unit.error:
                    raise BadInputError(unit.source, unit.error)
                image = read_image(unit.path, name=unit.source)
                faces = recognizer.analyze(image, name=unit.source).faces
            finally:
                if progress:
                    progress(1)
            return SourceResult(unit.source, unit.kind, entries=[(None, None, faces)])
        # every analysed frame detected, nothing smoothed: what the Ray engine's frame
        # ranges give, so both engines agree
        v = analyze_video(recognizer, unit.source, every=every, progress=progress,
                          detect_every=1, smoothing=0)
        entries = [(r.frame, r.frame / v.fps if v.fps > 0 else 0.0, r.faces) for r in v.frames]
        info = {k: val for k, val in v.info().items()
                if k not in ("detect_every", "smoothing_s")}
        return SourceResult(unit.source, unit.kind, entries=entries, info=info)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the job
        return SourceResult(unit.source, unit.kind, error=error_text(exc, unit))
