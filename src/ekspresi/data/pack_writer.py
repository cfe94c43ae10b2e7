"""Writing a dataset pack (the format and its reader: :mod:`ekspresi.data.pack`).

It loads every source with its reader, so it sits above :mod:`ekspresi.data.loading`,
which reads packs back.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import lzma
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ekspresi._version import __version__
from ekspresi.data.loading import load, parse_spec
from ekspresi.data.pack import _FILE, _PRELUDE, _RAW, CODECS, FORMAT_VERSION, MAGIC, pixels_digest
from ekspresi.data.records import SampleSet
from ekspresi.errors import BadInputError


def _source_bytes(path: str, image: np.ndarray) -> bytes | None:
    """The file's bytes when decoding them gives exactly ``image`` and they are smaller than
    its raw pixels; else None (the image is stored raw)."""
    from ekspresi.data.listing import decode_gray

    if ":" in Path(path).name or not os.path.isfile(path):
        return None  # CSV rows ("file.csv:12") and vanished files have no image file
    size = os.path.getsize(path)
    if size >= image.size:
        return None
    try:
        data = Path(path).read_bytes()
        same = np.array_equal(decode_gray(data), image)
    except Exception:  # noqa: BLE001 - any decoding trouble: store the pixels instead
        return None
    return data if same else None


def write_pack(specs: Sequence[str], out: str | Path, *, codec: str = "auto",
               skip_bad: bool = False, preset: int = 6) -> dict[str, Any]:
    """Pack the datasets ``specs`` into ``out``; returns the header written."""
    if codec not in CODECS:
        raise BadInputError(None, f"unknown pack codec {codec!r}; use one of {', '.join(CODECS)}")
    if not specs:
        raise BadInputError(None, "give at least one dataset to pack")
    sets, provenance = [], []
    for spec in specs:
        layout, path = parse_spec(spec)
        ss = load(spec, skip_bad=skip_bad, cache=False)
        sets.append(ss)
        provenance.append({"spec": str(spec), "layout": layout, "path": str(path.resolve()),
                           "samples": len(ss), "sources": sorted(set(ss.sources.tolist())),
                           "report": {"bad": ss.report.bad, "dropped": ss.report.dropped}})
    ss = SampleSet.concat(sets)
    images = list(ss.images)
    n = len(images)

    def encode(i: int) -> bytes | None:
        return None if codec == "raw" else _source_bytes(str(ss.paths[i]), images[i])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        encoded = list(pool.map(encode, range(n), chunksize=256))
    codes = np.array([_RAW if e is None else _FILE for e in encoded], np.uint8)
    blobs = [images[i].tobytes() if e is None else e for i, e in enumerate(encoded)]
    members: dict[str, bytes] = {
        "labels": ss.labels.astype(np.int16).tobytes(),
        "codecs": codes.tobytes(),
        "lengths": np.array([len(b) for b in blobs], np.uint32).tobytes(),
        "shapes": np.array([im.shape[:2] for im in images], np.uint32).tobytes(),
        "columns": json.dumps({k: getattr(ss, k).astype(str).tolist()
                               for k in ("sources", "splits", "subjects", "paths")}).encode(),
        "images": b"".join(blobs),
    }
    if ss.soft is not None:
        members["soft"] = np.ascontiguousarray(ss.soft, np.float32).tobytes()
    table, offset, raw = [], 0, io.BytesIO()
    for name, data in members.items():
        table.append({"name": name, "offset": offset, "size": len(data)})
        raw.write(data)
        offset += len(data)
    payload = lzma.compress(raw.getvalue(), preset=preset)
    header = {
        "format": FORMAT_VERSION, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "ekspresi": __version__, "samples": n, "sources": provenance,
        "splits": {s: int((ss.splits == s).sum()) for s in sorted(set(ss.splits.tolist()))},
        "codecs": {"file": int((codes == _FILE).sum()), "raw": int((codes == _RAW).sum())},
        "soft": ss.soft is not None, "members": table, "raw_size": offset,
        "payload_size": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "pixels_sha256": pixels_digest(images),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _PRELUDE.pack(FORMAT_VERSION, len(head)) + head + payload)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return header
