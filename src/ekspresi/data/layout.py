"""The record each dataset reader declares about its layout.

A reader module says, next to its reader, what its layout is called, how to recognise it on
disk, which official splits it provides and where the data comes from; ``data/loading.py``
only collects the records (``LAYOUTS``) and asks them in order (``detect_layout``). Adding a
layout is then one module plus one line in that collection, and the tests run over every
registered layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ekspresi.data.records import SampleSet

#: ``(path, *, strict) -> SampleSet``: every reader's signature.
Reader = Callable[..., SampleSet]


@dataclass(frozen=True)
class Layout:
    """A dataset layout: ``read`` loads it, ``detect`` recognises it on disk (cheaply: a
    few names, never a decode), ``splits`` are the official splits it can carry (``()`` =
    none: ekspresi makes its own), ``source`` is the origin and licence line."""

    name: str
    read: Reader
    detect: Callable[[Path], bool]
    splits: tuple[str, ...]
    source: str
    example: str   # what it looks like on disk, for error messages and docs
