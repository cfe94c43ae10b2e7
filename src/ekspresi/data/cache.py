"""Decoded datasets stored once as uint8 arrays, so the second load is a file read.

Decoding FER2013's 35,887 JPEGs takes several seconds on two cores; reading one ``.npz`` of
82 MB takes a fraction of a second. The cache key is a hash of the layout, the dataset's
absolute path and every file's relative path, size, times and inode, so editing,
adding or removing any file gives a new key (a stale entry is never used). Entries are
written to a temporary file and renamed into place, so an interrupted write never leaves a
half-written entry that a later load would trust.

Location: ``$EKSPRESI_CACHE`` or ``~/.cache/ekspresi``, sub-folder ``datasets/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.preprocess import prepare_face

log = logging.getLogger(__name__)

#: Bump when a reader's output changes, so older cache entries are not reused.
CACHE_VERSION = 1


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("EKSPRESI_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "ekspresi"
    return base / "datasets"


def fingerprint(layout: str, path: Path) -> str:
    """Hash of what the dataset at ``path`` contains, cheap enough to compute on every load
    (stat only, no file contents: ~0.15 s for FER2013's 35,887 files)."""
    h = hashlib.sha256(f"ekspresi-cache-v{CACHE_VERSION}\0{layout}\0{path.resolve()}\0"
                       .encode())
    if path.is_file():
        h.update(_stat_key(path.stat()).encode())
        return h.hexdigest()[:32]
    for rel, key in sorted(_walk_stats(path, "")):
        h.update(f"{rel}\0{key}\0".encode())
    return h.hexdigest()[:32]


def _stat_key(st: os.stat_result) -> str:
    # inode and ctime catch a file replaced by one of the same size within one clock tick
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _walk_stats(root: Path | str, prefix: str):
    with os.scandir(root) as it:
        for e in it:
            rel = prefix + e.name
            if e.is_dir(follow_symlinks=True):
                yield rel + "/", ""
                yield from _walk_stats(e.path, rel + "/")
            else:
                yield rel, _stat_key(e.stat())


def _entry(key: str, cache_dir: str | Path | None) -> Path:
    return cache_root(cache_dir) / f"{key}.npz"


def load_cached(key: str, cache_dir: str | Path | None = None) -> SampleSet | None:
    """The cached set for ``key``, or None (missing or unreadable entries are rebuilt)."""
    path = _entry(key, cache_dir)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" in z:
                images: np.ndarray | list = z["images"]
            else:
                flat, shapes = z["flat"], z["shapes"]
                ends = np.cumsum(shapes[:, 0] * shapes[:, 1])
                starts = ends - shapes[:, 0] * shapes[:, 1]
                images = [flat[s:e].reshape(hw) for s, e, hw in zip(starts, ends, shapes)]
            meta = json.loads(str(z["report"]))
            col = lambda k: z[k].astype(object)  # noqa: E731
            return SampleSet(images, z["labels"], col("sources"), col("splits"),
                             col("subjects"), col("paths"), z["soft"] if "soft" in z else None,
                             LoadReport([tuple(b) for b in meta["bad"]], meta["dropped"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable cache entry %s (%s); decoding again", path, exc)
        return None


def store(key: str, ss: SampleSet, cache_dir: str | Path | None = None) -> Path:
    """Write ``ss`` atomically (temporary file + rename) under ``key``."""
    path = _entry(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "labels": ss.labels,
        "report": np.array(json.dumps({"bad": ss.report.bad, "dropped": ss.report.dropped})),
    }
    for k in ("sources", "splits", "subjects", "paths"):
        arrays[k] = getattr(ss, k).astype(str)
    if ss.uniform or len(ss) == 0:
        arrays["images"] = np.asarray(ss.images, np.uint8)
    else:
        arrays["flat"] = np.concatenate([im.ravel() for im in ss.images])
        arrays["shapes"] = np.array([im.shape for im in ss.images], np.int64)
    if ss.soft is not None:
        arrays["soft"] = ss.soft
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def faces_array(ss: SampleSet, size: int) -> np.ndarray:
    """uint8 (N, size, size) faces for training/evaluation, made by
    :func:`ekspresi.preprocess.prepare_face` — the same function inference uses."""
    if ss.uniform and ss.images.shape[1:] == (size, size):
        return ss.images  # prepare_face is the identity here (gray, already size x size)
    out = np.empty((len(ss), size, size), np.uint8)
    for i, im in enumerate(ss.images):
        out[i] = prepare_face(im, size)
    return out
