"""Writing `ekspresi predict` results as a table, JSON or CSV, and video timelines.

A result is an :class:`~ekspresi.infer.results.ImageResult`, a
:class:`~ekspresi.infer.results.VideoResult` (whose table line is one per face track) or a
:class:`~ekspresi.infer.results.FailedInput`; JSON is each one's ``to_dict()``. Faces are
numbered from 1 in reading order (``Face.number``) in every format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from ekspresi.csvcells import safe_row
from ekspresi.infer.results import FailedInput, ImageResult, VideoResult
from ekspresi.infer.types import Face

Result = ImageResult | VideoResult | FailedInput


def no_face_text(result: ImageResult | VideoResult) -> str:
    """What to say when an image has no face: the real size limit for that image."""
    limit = getattr(result, "min_face_px", None)
    if not limit:
        return "no face found"
    return (f"no face found (faces smaller than about {limit} px are not detected in this "
            f"{result.width}x{result.height} image)")


def _number(face: Face, index: int) -> int:
    return face.number if face.number is not None else index + 1


def to_json(results: Sequence[Result]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


def faces_of(result: Result) -> list[Face]:
    """An image's faces, a video's track summaries, nothing for a failure."""
    if isinstance(result, VideoResult):
        return result.tracks
    return result.faces if isinstance(result, ImageResult) else []


def _classes(results: Sequence[Result]) -> list[str]:
    for r in results:
        for f in faces_of(r):
            return list(f.scores)
    return []


CSV_HEAD = ["file", "frame", "time", "face", "track_id", "x", "y", "w", "h", "label",
            "confidence", "detection_score"]


def _csv_row(file: str, frame, time, index, face: Face | None, classes, error="") -> list:
    if face is None:
        return [file, frame, time, "", "", "", "", "", "", "", "", ""] + [""] * len(classes) \
            + [error]
    return ([file, frame, time, index, "" if face.track_id is None else face.track_id,
             *face.box, face.label, f"{face.confidence:.6f}", f"{face.detection_score:.6f}"]
            + [f"{face.scores.get(c, 0.0):.6f}" for c in classes] + [error])


def to_csv(results: Sequence[Result]) -> str:
    """One row per face (per frame for videos); a file without faces or with an error gets
    one row with empty face columns (and the error). Text cells a spreadsheet would run as
    a formula (a file named ``=HYPERLINK(...).jpg``) get a leading ``'``
    (:mod:`ekspresi.csvcells`)."""
    classes = _classes(results) or []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(safe_row(CSV_HEAD + [f"p_{c}" for c in classes] + ["error"]))
    for r in results:
        if isinstance(r, FailedInput):
            w.writerow(safe_row(_csv_row(r.file, "", "", "", None, classes, r.error)))
            continue
        rows = r.frames if isinstance(r, VideoResult) else [r]
        for row in rows:
            frame, time = ("", "") if row.frame is None else (row.frame, row.time)
            if not row.faces:
                w.writerow(safe_row(_csv_row(r.file or "", frame, time, "", None, classes)))
            for i, f in enumerate(row.faces):
                w.writerow(safe_row(_csv_row(r.file or "", frame, time, _number(f, i), f,
                                             classes)))
    return buf.getvalue()


def to_table(results: Sequence[Result]) -> str:
    """Human-readable: one line per face (its number, 1-based reading order), top-3
    probabilities; for a video one line per face track, whose probabilities are the mean
    over the analysed frames it was seen in (the label says so; the per-frame answers are
    in ``--timeline``)."""
    lines = []
    rows: list[tuple[str, ...]] = [("file", "face", "box (x,y,w,h)", "label", "conf", "top-3")]
    for r in results:
        if isinstance(r, FailedInput):
            rows.append((r.file, "-", "ERROR", r.error, "", ""))
            continue
        faces = faces_of(r)
        name = r.file or ""
        video = isinstance(r, VideoResult)
        if video:
            name = f"{name} [{r.frames_analyzed}/{r.frames_read} frames]"
        if not faces:
            rows.append((name, "-", no_face_text(r), "", "", ""))
        for i, f in enumerate(faces):
            top = sorted(f.scores.items(), key=lambda kv: -kv[1])[:3]
            tag = f"#{f.track_id}" if f.track_id is not None else str(_number(f, i))
            label = f.label
            if video:   # a track's summary, not one frame's answer
                n = f.extra.get("frames")
                label = f"{f.label} (mean of {n} frame{'' if n == 1 else 's'})" \
                    if n else f"{f.label} (track mean)"
            rows.append((name if i == 0 else "", tag, ",".join(map(str, f.box)), label,
                         f"{f.confidence:.2f}", " ".join(f"{k}={v:.2f}" for k, v in top)))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def write_timeline(path: str | Path, results: Sequence[Result]) -> None:
    """Per-frame timeline of every video in ``results``: CSV (one row per face and frame) or
    JSON (chosen by the extension)."""
    videos = [r for r in results if isinstance(r, VideoResult)]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(to_json(videos) if p.suffix.lower() == ".json" else to_csv(videos))
