"""The original FER2013 challenge file, ``fer2013.csv``: ``emotion,pixels,Usage`` with 48x48
space-separated gray pixels per row, emotion 0-6 in FER2013 order and Usage naming the
official split (Training / PublicTest = validation / PrivateTest = test).

A row is identified as ``fer2013.csv:LINE`` (line numbers as an editor shows them, the
header being line 1) so a bad row can be found and fixed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ekspresi.data.layout import Layout
from ekspresi.data.listing import Listing
from ekspresi.data.records import SampleSet
from ekspresi.errors import BadInputError
from ekspresi.labels import CLASSES

SIDE = 48
USAGE_SPLITS: dict[str, str] = {"training": "train", "publictest": "val", "privatetest": "test"}


def read_fer2013_csv(path: Path, *, strict: bool) -> SampleSet:
    listing = Listing("fer2013", strict=strict)
    images: list[np.ndarray] = []
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise BadInputError(str(path), f"cannot open ({exc.strerror})") from None
    with f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if "emotion" not in header or "pixels" not in header:
            raise BadInputError(str(path), "not a FER2013 CSV: the header must have the "
                                           f"columns emotion,pixels[,Usage], found {header}")
        ie, ip = header.index("emotion"), header.index("pixels")
        iu = header.index("usage") if "usage" in header else None
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if not row:
                continue  # blank line, e.g. at the end of the file
            try:
                label, image, split = _parse_row(row, ie, ip, iu)
            except ValueError as exc:
                listing.bad(where, str(exc))
                continue
            listing.add(where, label, split)
            images.append(image)
    return listing.to_set(images)


def _parse_row(row: list[str], ie: int, ip: int, iu: int | None
               ) -> tuple[int, np.ndarray, str]:
    if len(row) <= max(ie, ip, iu or 0):
        raise ValueError(f"row has {len(row)} columns, expected at least "
                         f"{max(ie, ip, iu or 0) + 1}")
    emotion = row[ie].strip()
    if not emotion.isdigit() or int(emotion) >= len(CLASSES):
        raise ValueError(f"emotion {emotion!r} is not a FER2013 class index 0-{len(CLASSES) - 1}")
    values = row[ip].split()
    if len(values) != SIDE * SIDE:
        raise ValueError(f"{len(values)} pixel values, expected {SIDE * SIDE} ({SIDE}x{SIDE})")
    try:
        pixels = np.array(values, dtype=np.int32)
    except ValueError:
        raise ValueError("pixels are not all integers") from None
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values outside 0-255")
    split = ""
    if iu is not None:
        usage = row[iu].strip()
        split = USAGE_SPLITS.get(usage.lower(), None)  # type: ignore[assignment]
        if split is None:
            raise ValueError(f"Usage {usage!r} is not one of Training, PublicTest, PrivateTest")
    return int(emotion), pixels.astype(np.uint8).reshape(SIDE, SIDE), split


def looks_like_fer2013_csv(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


LAYOUT = Layout(
    "fer2013-csv", read_fer2013_csv, looks_like_fer2013_csv, ("train", "val", "test"),
    source="FER2013 challenge file (Kaggle, Goodfellow et al. 2013); Kaggle competition rules, "
           "research use",
    example="fer2013.csv (emotion,pixels[,Usage])")
