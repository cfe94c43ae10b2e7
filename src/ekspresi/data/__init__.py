"""Datasets: readers per layout, splits, balancing, caching (``ekspresi data``).

``from ekspresi.data import load, load_many`` is the entry point; the names are resolved
lazily so that importing one of its light submodules (``ekspresi.data.pack`` for its file
suffix) does not pull in OpenCV and Pillow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load", "load_many", "SampleSet", "Sample", "LoadReport"]

if TYPE_CHECKING:  # pragma: no cover
    from ekspresi.data.loading import load, load_many
    from ekspresi.data.records import LoadReport, Sample, SampleSet


def __getattr__(name: str) -> Any:
    if name in ("load", "load_many"):
        from ekspresi.data import loading
        return getattr(loading, name)
    if name in ("SampleSet", "Sample", "LoadReport"):
        from ekspresi.data import records
        return getattr(records, name)
    raise AttributeError(f"module 'ekspresi.data' has no attribute {name!r}")
