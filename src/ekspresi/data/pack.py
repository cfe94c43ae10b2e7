"""Packed datasets: one versioned, checksummed file a user copies to a cloud GPU.

``ekspresi data pack SOURCE... -o FILE`` loads each source with its reader and writes every
sample (pixels, label, split, subject, source, path, FER+ votes) and each source's load
report into one file (:mod:`ekspresi.data.pack_writer`, which sits above the readers);
``pack:FILE`` is then accepted wherever a dataset spec is. This module is the format and
its reader, below :mod:`ekspresi.data.loading`.

Size: FER2013's 35,887 faces are 83 MB as raw pixels and ~65 MB as raw pixels through xz,
but its JPEG files are 50.5 MB in one xz stream. So each image is stored either as its
**source file's bytes** (when decoding those bytes reproduces exactly the pixels the reader
produced; checked for every image while packing) or as **raw pixels**; the whole payload
is one xz stream. Loading decodes the stored files with the reader's own decoder and checks
the SHA-256 of all decoded pixels against the one recorded at packing time, so a pack
always yields exactly the reader's uint8 pixels, or a clear error if this machine's JPEG
decoder differs (then repack with ``--codec raw``).

Layout: magic ``EKSPRESI-PACK\\0``, a little-endian u32 format version, a u64 header
length, the JSON header (provenance, counts, member table, checksums), then the xz payload.
Truncation, corruption and unknown versions are :class:`BadInputError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ekspresi.data.layout import Layout
from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.errors import BadInputError

MAGIC = b"EKSPRESI-PACK\x00"
FORMAT_VERSION = 1
SUFFIX = ".ekpack"
CODECS = ("auto", "raw")
_RAW, _FILE = 0, 1
_PRELUDE = struct.Struct("<IQ")  # format version, header length


def pixels_digest(images: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(struct.pack("<II", *im.shape[:2]))
        h.update(np.ascontiguousarray(im, np.uint8).tobytes())
    return h.hexdigest()


def read_header(path: str | Path) -> dict[str, Any]:
    """The header of a pack (cheap: no payload is read)."""
    with open(path, "rb") as f:
        return _header(f, str(path))[0]


def _header(f, name: str) -> tuple[dict[str, Any], int]:
    start = f.read(len(MAGIC) + _PRELUDE.size)
    if len(start) < len(MAGIC) or not start.startswith(MAGIC):
        raise BadInputError(name, "not an ekspresi dataset pack (make one with "
                                  "`ekspresi data pack`)")
    if len(start) < len(MAGIC) + _PRELUDE.size:
        raise BadInputError(name, "truncated pack (the file ends inside its header)")
    version, head_len = _PRELUDE.unpack(start[len(MAGIC):])
    if version != FORMAT_VERSION:
        raise BadInputError(name, f"pack format {version}; this ekspresi reads format "
                                  f"{FORMAT_VERSION} (repack with this version, or upgrade)")
    head = f.read(head_len)
    if len(head) < head_len:
        raise BadInputError(name, "truncated pack (the file ends inside its header)")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadInputError(name, "corrupt pack header") from None
    return header, len(start) + head_len


def read_pack(path: str | Path, *, strict: bool = True) -> SampleSet:
    """Load a pack back into the :class:`SampleSet` its sources' readers produced."""
    name = str(path)
    p = Path(path)
    if not p.is_file():
        raise BadInputError(name, "no such pack file")
    with open(p, "rb") as f:
        header, _ = _header(f, name)
        payload = f.read()
    if len(payload) < header["payload_size"]:
        raise BadInputError(name, f"truncated pack: {len(payload):,} of "
                                  f"{header['payload_size']:,} payload bytes (copy it again)")
    if len(payload) > header["payload_size"] or \
            hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise BadInputError(name, "corrupt pack: payload checksum mismatch (copy it again)")
    try:
        raw = lzma.decompress(payload)
    except lzma.LZMAError as exc:
        raise BadInputError(name, f"corrupt pack payload ({exc})") from None
    m = {e["name"]: memoryview(raw)[e["offset"]:e["offset"] + e["size"]]
         for e in header["members"]}
    n = header["samples"]
    labels = np.frombuffer(m["labels"], np.int16).astype(np.int64)
    codes = np.frombuffer(m["codecs"], np.uint8)
    lengths = np.frombuffer(m["lengths"], np.uint32).astype(np.int64)
    shapes = np.frombuffer(m["shapes"], np.uint32).reshape(n, 2)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    blob = m["images"]
    images = _decode_images(blob, codes, starts, ends, shapes, name)
    if pixels_digest(images) != header["pixels_sha256"]:
        raise BadInputError(name, "decoded pixels differ from those packed: this machine's "
                                  "image decoder gives other values; repack on this machine, "
                                  "or pack with --codec raw")
    cols = json.loads(bytes(m["columns"]))
    soft = (np.frombuffer(m["soft"], np.float32).reshape(n, -1).copy()
            if "soft" in m else None)
    report = LoadReport()
    for src in header["sources"]:
        report = report.merged(LoadReport([tuple(b) for b in src["report"]["bad"]],
                                          dict(src["report"]["dropped"])))
    return SampleSet(images, labels, cols["sources"], cols["splits"], cols["subjects"],
                     cols["paths"], soft, report)


def _decode_images(blob: memoryview, codes: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   shapes: np.ndarray, name: str) -> list[np.ndarray]:
    from ekspresi.data.listing import decode_gray

    def one(i: int) -> np.ndarray:
        data = blob[starts[i]:ends[i]]
        if codes[i] == _RAW:
            return np.frombuffer(data, np.uint8).reshape(tuple(shapes[i])).copy()
        try:
            return decode_gray(bytes(data))
        except BadInputError as exc:
            raise BadInputError(name, f"image {i} of the pack does not decode ({exc})") from None

    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, range(len(codes)), chunksize=512))


def describe(header: dict[str, Any], path: str | Path) -> str:
    """One paragraph for the CLI: size, samples, splits, sources, codecs."""
    size = Path(path).stat().st_size
    splits = ", ".join(f"{k or 'no split'} {v:,}" for k, v in header["splits"].items())
    lines = [f"{path}: {size / 1e6:.1f} MB, {header['samples']:,} samples ({splits}); "
             f"{header['codecs']['file']:,} as source files, {header['codecs']['raw']:,} raw"]
    for s in header["sources"]:
        lines.append(f"  {s['spec']}: {s['samples']:,} samples ({', '.join(s['sources'])})")
    return "\n".join(lines)


def looks_like_pack(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


LAYOUT = Layout(
    "pack", read_pack, looks_like_pack, ("train", "val", "test"),
    source="a file written by `ekspresi data pack` from any of the other layouts (their terms)",
    example=f"NAME{SUFFIX}")
