"""Class-per-folder datasets: ``ROOT/<class>/*`` (CK+48, users' own data) and the same with
split folders, ``ROOT/{train,val,test}/<class>/*`` (the Kaggle FER2013 layout).

Folder names go through :func:`ekspresi.labels.canonical` (``anger``, ``sadness``,
``happiness``, Indonesian names ...); a folder that is not an emotion is bad input, never
guessed. In the FER2013 layout ``test/`` holds two official splits, told apart by the file
name prefix: ``PublicTest_`` is the validation split and ``PrivateTest_`` the test split.
"""

from __future__ import annotations

import re
from pathlib import Path

from ekspresi.data.layout import Layout
from ekspresi.data.listing import Listing, iter_files, subdirs
from ekspresi.data.records import SampleSet
from ekspresi.labels import ALL_CLASSES, canonical, is_known

#: Split folder name (lower case) -> split.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}

#: FER2013 file-name prefixes that name the official split of an image.
FER2013_PREFIXES: dict[str, str] = {
    "Training_": "train", "PublicTest_": "val", "PrivateTest_": "test",
}

#: CK+ file names start with the subject: ``S005_001_00000011.png`` -> ``S005``.
CKPLUS_SUBJECT = re.compile(r"^(S\d{3})_\d{3}_")


def has_split_folders(root: Path) -> bool:
    return root.is_dir() and any(d.name.lower() in SPLIT_FOLDERS for d in subdirs(root))


def has_class_folders(root: Path) -> bool:
    return root.is_dir() and any(is_known(d.name) for d in subdirs(root))


def looks_like_fer2013_folders(root: Path) -> bool:
    """Split folders whose first image has a FER2013 split prefix (``Training_``...)."""
    if not has_split_folders(root):
        return False
    for split_dir in subdirs(root):
        for class_dir in subdirs(split_dir):
            for f in iter_files(class_dir):
                return f.name.startswith(tuple(FER2013_PREFIXES))
    return False


def looks_like_folders(root: Path) -> bool:
    return has_split_folders(root) or has_class_folders(root)


def read_folders(root: Path, *, strict: bool, source: str | None = None) -> SampleSet:
    """Read a class-per-folder dataset, with or without split folders."""
    listing = Listing(source or root.name.lower(), strict=strict)
    if has_split_folders(root):
        for f in sorted(root.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                listing.bad(f, "file outside the split folders (expected "
                               "ROOT/{train,val,test}/<class>/<image>)")
        for d in subdirs(root):
            split = SPLIT_FOLDERS.get(d.name.lower())
            if split is None:
                listing.bad(d, f"unknown split folder {d.name!r}; expected one of "
                               f"{', '.join(sorted(SPLIT_FOLDERS))}")
                continue
            _read_class_folders(d, split, listing)
    else:
        _read_class_folders(root, "", listing)
    return listing.decode()


def read_fer2013_folders(root: Path, *, strict: bool) -> SampleSet:
    """The Kaggle FER2013 image export: split folders, source always ``fer2013``."""
    return read_folders(root, strict=strict, source="fer2013")


def _read_class_folders(root: Path, split: str, listing: Listing) -> None:
    for f in sorted(root.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            listing.bad(f, "file outside the class folders (expected <class>/<image>)")
    for d in subdirs(root):
        files = list(iter_files(d))
        if not is_known(d.name):
            listing.bad(d, f"unknown class folder {d.name!r} ({len(files)} files); known "
                           f"classes: {', '.join(ALL_CLASSES)} and their synonyms")
            continue
        if not files:
            listing.bad(d, f"empty class folder {d.name!r}")
            continue
        label = ALL_CLASSES.index(canonical(d.name))
        for f in files:
            m = CKPLUS_SUBJECT.match(f.name)
            listing.add(f, label, _file_split(f.name, split), m.group(1) if m else "")


def _file_split(name: str, split: str) -> str:
    if split == "test":
        for prefix, official in FER2013_PREFIXES.items():
            if name.startswith(prefix):
                return official
    return split


FER2013_FOLDER = Layout(
    "fer2013-folder", read_fer2013_folders, looks_like_fer2013_folders, ("train", "val", "test"),
    source="FER2013 image-folder export (Kaggle); Kaggle competition rules, research use",
    example="train/<class>/Training_*.jpg, test/<class>/{PublicTest,PrivateTest}_*.jpg")
FOLDERS = Layout(
    "folders", read_folders, looks_like_folders, ("train", "val", "test"),
    source="any class-per-folder set: CK+/CK+48 (Pittsburgh, on request, non-commercial "
           "research), your own data",
    example="<class>/<image>, optionally under {train,val,test}/")
