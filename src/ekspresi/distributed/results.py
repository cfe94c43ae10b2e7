"""The output of a batch job: a folder of Parquet partitions, one row per face, resumable.

``results.parquet/`` holds ``part-*.parquet`` files (any Parquet reader opens the folder as
one table: ``pandas.read_parquet("results.parquet")``) and ``_ekspresi.json`` (the settings
the rows were made with; files starting with ``_`` or ``.`` are ignored by Parquet readers).
Each partition holds *complete* sources only and is written under a hidden temporary name,
then renamed: a crash or Ctrl-C leaves either the whole partition or none of it. Its
footer metadata lists the sources it holds (also those without faces or that failed), so a
rerun reads the footers and skips them. ``results.summary.csv`` (beside the folder) has one
line per source: faces, frames, mean probability of each emotion over all its faces.
"""

from __future__ import annotations

import csv
import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ekspresi.csvcells import safe_cell
from ekspresi.distributed.work import SourceResult
from ekspresi.errors import BadInputError, ConfigError, MissingDependencyError

SETTINGS_FILE = "_ekspresi.json"
META_KEY = b"ekspresi.sources"
FORMAT_VERSION = 1


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            "Parquet output needs pyarrow: pip install 'ekspresi[distributed]'") from None
    return pa, pq


def schema(classes: Iterable[str]):
    """One row per face; a source without faces or that failed has one row with null face
    columns (and ``error``). ``frame``/``time`` are null for images, ``face`` numbers the
    faces of an image/frame (best detection first), ``track_id`` follows faces through a
    video."""
    pa, _ = _pa()
    return pa.schema([
        ("source", pa.string()), ("kind", pa.string()), ("frame", pa.int64()),
        ("time", pa.float64()), ("face", pa.int32()), ("track_id", pa.int32()),
        ("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()),
        ("label", pa.string()), ("confidence", pa.float32()),
        ("detection_score", pa.float64()),
        *[(f"p_{c}", pa.float32()) for c in classes],
        ("error", pa.string()),
    ])


def rows_of(result: SourceResult, classes: tuple[str, ...]) -> list[dict[str, Any]]:
    base = {"source": result.source, "kind": result.kind}
    if result.error is not None:
        return [{**base, "error": result.error}]
    rows = []
    for frame, t, faces in result.entries:
        for i, f in enumerate(faces):
            x, y, w, h = f.box
            rows.append({**base, "frame": frame, "time": t, "face": i, "track_id": f.track_id,
                         "x": x, "y": y, "w": w, "h": h, "label": f.label,
                         "confidence": f.confidence, "detection_score": f.detection_score,
                         **{f"p_{c}": f.scores[c] for c in classes}})
    return rows or [base]


def source_info(result: SourceResult) -> dict[str, Any]:
    faces = sum(len(faces) for _, _, faces in result.entries)
    return {"kind": result.kind, "error": result.error, "faces": faces, **result.info}


def summary_path(root: str | Path) -> Path:
    root = Path(root)
    return root.with_name(root.stem + ".summary.csv")


class ResultStore:
    """Partitions of one output folder: which sources are done, adding finished ones,
    flushing them atomically every ``flush_sources`` sources or ``flush_seconds``."""

    def __init__(self, root: str | Path, settings: dict[str, Any], classes: tuple[str, ...],
                 *, flush_sources: int = 64, flush_seconds: float = 30.0):
        self.pa, self.pq = _pa()
        self.root = Path(root)
        self.classes = tuple(classes)
        self.schema = schema(self.classes)
        self.flush_sources, self.flush_seconds = flush_sources, flush_seconds
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root}: exists and is not a folder of Parquet partitions")
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_settings(settings)
        for stale in self.root.glob(".part-*.tmp"):     # a partition a crash left half-written
            stale.unlink()
        self.done: dict[str, dict[str, Any]] = {}
        for part in sorted(self.root.glob("part-*.parquet")):
            self.done.update(self._sources_in(part))
        self._buffer: list[SourceResult] = []
        self._last_flush = time.monotonic()
        self._run = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._seq = 0

    def _check_settings(self, settings: dict[str, Any]) -> None:
        record = {"format": FORMAT_VERSION, "settings": settings, "classes": list(self.classes)}
        path = self.root / SETTINGS_FILE
        if path.is_file():
            old = json.loads(path.read_text())
            if old != record:
                diff = sorted(k for k in set(old.get("settings", {})) | set(settings)
                              if old.get("settings", {}).get(k) != settings.get(k))
                raise ConfigError(
                    f"{self.root}: holds results made with other settings "
                    f"({', '.join(diff) or 'format/classes'} differ); write to a new output "
                    "or delete this folder")
        elif any(self.root.iterdir()):
            raise ConfigError(f"{self.root}: folder is not empty and is not an ekspresi output")
        else:
            path.write_text(json.dumps(record, indent=2) + "\n")

    def _sources_in(self, part: Path) -> dict[str, dict[str, Any]]:
        try:
            meta = self.pq.read_schema(part).metadata or {}
            return json.loads(meta[META_KEY])
        except Exception as exc:  # noqa: BLE001 - any unreadable footer
            raise BadInputError(str(part), f"unreadable partition ({exc}); delete it to "
                                           "redo its sources") from None

    def add(self, result: SourceResult) -> list[SourceResult]:
        """Queue a finished source; returns the sources written to disk by this call."""
        self._buffer.append(result)
        if len(self._buffer) >= self.flush_sources or \
                time.monotonic() - self._last_flush >= self.flush_seconds:
            return self.flush()
        return []

    def flush(self) -> list[SourceResult]:
        """Write the queued sources as one partition (temporary name, fsync, rename)."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return []
        batch, self._buffer = self._buffer, []
        rows = [r for res in batch for r in rows_of(res, self.classes)]
        infos = {res.source: source_info(res) for res in batch}
        table = self.pa.Table.from_pylist(rows, schema=self.schema)
        table = table.replace_schema_metadata({META_KEY: json.dumps(infos).encode()})
        self._seq += 1
        name = f"part-{self._run}-{self._seq:05d}.parquet"
        tmp = self.root / f".{name}.tmp"
        self.pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / name)
        self.done.update(infos)
        return batch

    # -- reading back ---------------------------------------------------------------------------
    def read(self):
        """All rows of the output as one Arrow table."""
        parts = sorted(self.root.glob("part-*.parquet"))
        if not parts:
            return self.schema.empty_table()
        return self.pa.concat_tables([self.pq.read_table(p, schema=self.schema)
                                      for p in parts])

    def summary(self) -> list[dict[str, Any]]:
        """One dict per source (in ``self.done``): kind, status, error, frames, faces,
        frames with faces, tracks, the label of the mean probabilities and those means."""
        import pyarrow.compute as pc

        table = self.read()
        faces = table.filter(pc.is_valid(table["face"]))
        aggs = [("face", "count"), ("frame", "count_distinct"), ("track_id", "count_distinct"),
                *[(f"p_{c}", "mean") for c in self.classes]]
        grouped = faces.group_by("source").aggregate(aggs).to_pylist() if faces.num_rows else []
        by_source = {g["source"]: g for g in grouped}
        out = []
        for source, info in sorted(self.done.items()):
            g = by_source.get(source, {})
            means = {c: g.get(f"p_{c}_mean") for c in self.classes}
            label = max(means, key=lambda c: means[c]) if g else ""
            video = info.get("kind") == "video"
            out.append({
                "source": source, "kind": info.get("kind"),
                "status": "error" if info.get("error") else "ok",
                "error": info.get("error") or "",
                "frames_read": info.get("frames_read", "") if video else "",
                "frames_analyzed": info.get("frames_analyzed", "") if video else "",
                "faces": g.get("face_count", 0),
                "frames_with_faces": g.get("frame_count_distinct", "") if video else "",
                "tracks": g.get("track_id_count_distinct", "") if video else "",
                "label": label,
                **{f"mean_{c}": "" if v is None else round(v, 6) for c, v in means.items()},
            })
        return out

    def write_summary(self, rows: list[dict[str, Any]]) -> Path:
        path = summary_path(self.root)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as fh:
            fields = list(rows[0]) if rows else ["source"]
            w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows({k: safe_cell(v) for k, v in r.items()} for r in rows)
        os.replace(tmp, path)
        return path
