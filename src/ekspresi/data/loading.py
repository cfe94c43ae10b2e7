"""``load(spec)``: any supported dataset layout -> one :class:`SampleSet`.

A spec is a path (the layout is detected) or ``LAYOUT:PATH``. Each reader module declares
its :class:`~ekspresi.data.layout.Layout` (name, reader, how to recognise it, splits,
source); :data:`LAYOUTS` collects them, in detection order, and the README's "Data"
section describes them.

Readers always return every canonical class present; ``classes`` then selects, and the
count of samples it removes per class is recorded in ``report.dropped`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ekspresi.data import cache as _cache
from ekspresi.data import coded, fer2013_csv, ferplus, folders, pack
from ekspresi.data.layout import Layout
from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.errors import BadInputError
from ekspresi.labels import ALL_CLASSES, parse_classes

log = logging.getLogger(__name__)

#: Every layout, in detection order: the first whose ``detect`` accepts a path wins (the
#: FER2013 export and FER+ before generic class folders, file-name schemes after them).
LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (
    folders.FER2013_FOLDER, fer2013_csv.LAYOUT, ferplus.LAYOUT, folders.FOLDERS, coded.JAFFE,
    coded.KDEF, pack.LAYOUT)}


def parse_spec(spec: str | Path) -> tuple[str | None, Path]:
    """``"LAYOUT:PATH"`` -> (layout, path); a plain path -> (None, path)."""
    if isinstance(spec, str) and ":" in spec:
        layout, rest = spec.split(":", 1)
        if layout in LAYOUTS:
            return layout, Path(rest).expanduser()
        # a misspelt LAYOUT: (a drive letter such as C: is one character, a path exists)
        if len(layout) > 1 and "/" not in layout and not Path(spec).expanduser().exists():
            raise BadInputError(spec, f"unknown dataset layout {layout!r}; LAYOUT:PATH takes "
                                      f"one of {', '.join(LAYOUTS)}")
    return None, Path(spec).expanduser()


def detect_layout(path: Path) -> str:
    """The first registered layout that recognises ``path``."""
    if not path.exists():
        raise BadInputError(str(path), "no such file or folder")
    for layout in LAYOUTS.values():
        if layout.detect(path):
            return layout.name
    if path.is_file():
        raise BadInputError(str(path), f"a dataset file must be a FER2013 .csv or a "
                                       f"{pack.SUFFIX} pack; image datasets are given as "
                                       "folders")
    seen = "; ".join(f"{x.name}: {x.example}" for x in LAYOUTS.values())
    raise BadInputError(str(path), f"cannot tell the dataset layout (expected one of {seen}); "
                                   "name it explicitly as LAYOUT:PATH with LAYOUT one of "
                                   f"{', '.join(LAYOUTS)}")


def load(spec: str | Path, *, classes=None, skip_bad: bool = False, cache: bool = True,
         cache_dir: str | Path | None = None) -> SampleSet:
    """Load one dataset. Labels index :data:`ekspresi.labels.ALL_CLASSES`; images are uint8
    gray as decoded (not resized); official splits are ``train``/``val``/``test`` (``""``
    when the layout has none).

    Bad inputs raise :class:`BadInputError`; with ``skip_bad`` they are skipped and listed in
    ``result.report.bad``. ``cache`` stores the decoded set (see :mod:`.cache`).
    """
    layout, path = parse_spec(spec)
    layout = layout or detect_layout(path)
    if not path.exists():
        raise BadInputError(str(path), "no such file or folder")
    key = _cache.fingerprint(layout, path) if cache else ""
    ss = _cache.load_cached(key, cache_dir) if cache else None
    if ss is not None:
        log.debug("loaded %s from cache %s", path, key)
        if ss.report.bad and not skip_bad:
            first, problem = ss.report.bad[0]
            more = len(ss.report.bad) - 1
            raise BadInputError(first, problem + (f" (and {more} more bad inputs; "
                                                   "--skip-bad skips them)" if more else ""))
    else:
        log.info("reading %s as %s", path, layout)
        ss = LAYOUTS[layout].read(path, strict=not skip_bad)
        if cache:
            _cache.store(key, ss, cache_dir)
    if ss.report.bad:
        log.warning("%s: skipped %d bad inputs (see report.bad / ekspresi data inspect)",
                    path, len(ss.report.bad))
    if not len(ss) and not (skip_bad and ss.report.bad):
        raise BadInputError(str(path), "no usable samples in this dataset")
    return select_classes(ss, classes)


def select_classes(ss: SampleSet, classes) -> SampleSet:
    """Keep only the chosen classes (``None`` keeps all), counting what is removed."""
    report = LoadReport(list(ss.report.bad), dict(ss.report.dropped))
    if classes is not None:
        chosen = [ALL_CLASSES.index(c) for c in parse_classes(classes)]
        keep = np.isin(ss.labels, chosen)
        for name, n in ss.subset(~keep).class_counts().items():
            if n:
                report.drop(f"class not selected: {name}", n)
                log.info("dropped %d %s samples (class not selected)", n, name)
        if not keep.all():
            ss = ss.subset(keep)
        missing = [ALL_CLASSES[c] for c in chosen if not (ss.labels == c).any()]
        if missing:
            log.warning("selected classes with no samples: %s", ", ".join(missing))
    ss.report = report
    return ss


def load_many(specs: Sequence[str | Path], **kw) -> SampleSet:
    """Load several datasets into one set; ``sources`` tells them apart."""
    if isinstance(specs, (str, Path)):
        specs = [specs]
    if not specs:
        raise BadInputError(None, "no dataset given")
    return SampleSet.concat([load(s, **kw) for s in specs])
