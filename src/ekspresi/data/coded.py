"""Datasets whose file names carry the label and the subject: JAFFE and KDEF.

JAFFE: ``KA.AN1.39.tiff`` = poser KA, angry (AN), first take, image number 39.
KDEF:  ``AF01ANS.JPG`` = session A, female (F) subject 01, angry (AN), straight (S) view;
the subject is gender + number (``F01``) because sessions A and B show the same people.
All five KDEF views (S, HL, HR, FL, FR) are read. A file whose name does not follow the
scheme is bad input: a guessed label would be silently wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ekspresi.data.layout import Layout
from ekspresi.data.listing import Listing, iter_files
from ekspresi.data.records import SampleSet
from ekspresi.errors import LabelError
from ekspresi.labels import ALL_CLASSES, KDEF_CODES, canonical

JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.[A-Za-z]+$", re.IGNORECASE)
KDEF_NAME = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(S|HL|HR|FL|FR)\.[A-Za-z]+$",
                       re.IGNORECASE)

# name -> (class, subject), or None when the name does not follow the scheme.
Parser = Callable[[str], "tuple[str, str] | None"]


def parse_jaffe(name: str) -> tuple[str, str] | None:
    m = JAFFE_NAME.match(name)
    if not m:
        return None
    try:
        return canonical(m.group(2)), m.group(1).upper()
    except LabelError:
        return None


def parse_kdef(name: str) -> tuple[str, str] | None:
    m = KDEF_NAME.match(name)
    if not m:
        return None
    return KDEF_CODES[m.group(4).upper()], m.group(2).upper() + m.group(3)


def read_jaffe(root: Path, *, strict: bool) -> SampleSet:
    return _read_coded(root, "jaffe", parse_jaffe, "POSER.EXn.NUM.tiff, e.g. KA.AN1.39.tiff",
                       strict)


def read_kdef(root: Path, *, strict: bool) -> SampleSet:
    return _read_coded(root, "kdef", parse_kdef, "SGNNEEV.JPG, e.g. AF01ANS.JPG", strict)


def _mostly_named(root: Path, parse: Parser) -> bool:
    """True when most of the first 200 files follow the naming scheme."""
    if not root.is_dir():
        return False
    names = [f.name for _, f in zip(range(200), iter_files(root))]
    return bool(names) and sum(parse(n) is not None for n in names) > len(names) / 2


def looks_like_jaffe(root: Path) -> bool:
    return _mostly_named(root, parse_jaffe)


def looks_like_kdef(root: Path) -> bool:
    return _mostly_named(root, parse_kdef)


def _read_coded(root: Path, source: str, parse: Parser, scheme: str, strict: bool) -> SampleSet:
    listing = Listing(source, strict=strict)
    for f in iter_files(root):
        parsed = parse(f.name)
        if parsed is None:
            listing.bad(f, f"file name does not follow the {source.upper()} scheme ({scheme})")
            continue
        cls, subject = parsed
        listing.add(f, ALL_CLASSES.index(cls), "", subject)
    return listing.decode()


JAFFE = Layout(
    "jaffe", read_jaffe, looks_like_jaffe, (),
    source="JAFFE (Lyons, Kamachi, Gyoba; Zenodo 3451524), on request, non-commercial "
           "scientific research only",
    example="KA.AN1.39.tiff (file-name coded)")
KDEF = Layout(
    "kdef", read_kdef, looks_like_kdef, (),
    source="KDEF (Karolinska Institutet, kdef.se), non-commercial research under its terms",
    example="AF01/AF01ANS.JPG (file-name coded)")
