"""FER+ (Barsoum et al. 2016): the FER2013 faces relabelled by 10 taggers each, in the layout
Microsoft's FERPlus tools write: ``ROOT/FER2013{Train,Valid,Test}/`` with the PNGs and a
header-less ``label.csv`` whose rows are ``file,"(x, y, w, h)",`` + 10 vote counts in the
order of :data:`ekspresi.labels.FERPLUS_VOTE_COLUMNS`.

Label rule (plurality vote), documented because FER+ results depend on it:
the label is the column with the most votes; the image is dropped (and counted in
``report.dropped``) when that column is ``unknown`` or ``NF`` (not a face), or when two or
more columns tie for the most votes. ``soft`` keeps the full vote distribution over the
eight emotions (unknown/NF votes left out), for training on label distributions.
The face box column is not applied: in this export every box is the whole 48x48 image.
``fer2013new.csv`` at the root repeats the label.csv votes and is not read.

FER+ holds the FER2013 faces re-encoded losslessly, so they are *not* pixel-identical to the
FER2013 JPEGs: combining the two datasets needs the same official split on both sides.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ekspresi.data.layout import Layout
from ekspresi.data.listing import Listing
from ekspresi.data.records import SampleSet
from ekspresi.labels import ALL_CLASSES, FERPLUS_VOTE_COLUMNS, canonical

#: FER+ folder -> official split.
FOLDER_SPLITS: dict[str, str] = {
    "FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test",
}

#: For each of the 8 emotion vote columns, its index in ALL_CLASSES.
_EMOTION_COLUMNS = [ALL_CLASSES.index(canonical(c)) for c in FERPLUS_VOTE_COLUMNS[:8]]

DROP_UNKNOWN = "ferplus vote rule: most votes for unknown"
DROP_NOT_FACE = "ferplus vote rule: most votes for not a face (NF)"
DROP_TIE = "ferplus vote rule: tie for the most votes"


def is_ferplus(root: Path) -> bool:
    return root.is_dir() and any((root / name).is_dir() for name in FOLDER_SPLITS)


def vote_label(votes: np.ndarray) -> tuple[int | None, str | None]:
    """(index into ALL_CLASSES, None) for a kept row, (None, drop reason) otherwise."""
    top = votes.max()
    winners = np.flatnonzero(votes == top)
    if len(winners) > 1:
        return None, DROP_TIE
    w = int(winners[0])
    if FERPLUS_VOTE_COLUMNS[w] == "unknown":
        return None, DROP_UNKNOWN
    if FERPLUS_VOTE_COLUMNS[w] == "NF":
        return None, DROP_NOT_FACE
    return _EMOTION_COLUMNS[w], None


def soft_label(votes: np.ndarray) -> np.ndarray:
    """Emotion vote distribution over ALL_CLASSES (sums to 1)."""
    soft = np.zeros(len(ALL_CLASSES), np.float32)
    soft[_EMOTION_COLUMNS] = votes[:8]
    return soft / soft.sum()


def read_ferplus(root: Path, *, strict: bool) -> SampleSet:
    listing = Listing("ferplus", strict=strict, with_soft=True)
    for folder, split in FOLDER_SPLITS.items():
        d = root / folder
        if d.is_dir():
            _read_folder(d, split, listing)
    return listing.decode()


def _read_folder(d: Path, split: str, listing: Listing) -> None:
    label_csv = d / "label.csv"
    if not label_csv.is_file():
        listing.bad(label_csv, "missing: every FER+ folder needs its label.csv of votes")
        return
    listed: set[str] = set()
    with open(label_csv, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            where = f"{label_csv}:{line}"
            try:
                name, votes = _parse_row(row)
            except ValueError as exc:
                listing.bad(where, str(exc))
                continue
            listed.add(name)
            image = d / name
            if not image.is_file():
                listing.bad(where, f"vote row for {name!r} but {image} does not exist")
                continue
            label, reason = vote_label(votes)
            if reason is not None:
                listing.report.drop(reason)
                continue
            listing.add(image, label, split, "", soft_label(votes))
    for f in sorted(d.iterdir()):
        if f.is_file() and f.name != "label.csv" and not f.name.startswith(".") \
                and f.name not in listed:
            listing.bad(f, f"file has no vote row in {label_csv}")


def _parse_row(row: list[str]) -> tuple[str, np.ndarray]:
    n = len(FERPLUS_VOTE_COLUMNS)
    if len(row) < 2 + n:
        raise ValueError(f"row has {len(row)} columns, expected file, face box and {n} votes")
    try:
        votes = np.array([int(v) for v in row[2:2 + n]], dtype=np.int64)
    except ValueError:
        raise ValueError(f"vote counts are not integers: {row[2:2 + n]}") from None
    if (votes < 0).any():
        raise ValueError(f"negative vote count: {row[2:2 + n]}")
    if votes.sum() == 0:
        raise ValueError("row has no votes")
    return row[0].strip(), votes


LAYOUT = Layout(
    "ferplus", read_ferplus, is_ferplus, ("train", "val", "test"),
    source="FER+ labels (Microsoft FERPlus, MIT licence) on the FER2013 images (their terms)",
    example="FER2013{Train,Valid,Test}/label.csv + PNGs")
