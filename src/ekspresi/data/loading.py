"""``load(spec)``: any supported dataset layout -> one :class:`SampleSet`.

A spec is a path (the layout is detected) or ``LAYOUT:PATH``. Layouts:

==================  ========================================================================
``fer2013-folder``  Kaggle FER2013: ``train/<class>/``, ``test/<class>/`` (``PublicTest_`` =
                    val, ``PrivateTest_`` = test); any ``{train,val,test}/<class>/`` tree
``fer2013-csv``     the original ``fer2013.csv`` (``emotion,pixels,Usage``)
``ferplus``         ``FER2013{Train,Valid,Test}/label.csv`` + PNGs (plurality vote labels)
``folders``         ``<class>/<image>`` (CK+48, your own data), optionally under split folders
``jaffe``           file-name coded ``KA.AN1.39.tiff``
``kdef``            file-name coded ``AF01ANS.JPG``
``pack``            a file made by ``ekspresi data pack`` (any of the above, packed)
==================  ========================================================================

Readers always return every canonical class present; ``classes`` then selects, and the
count of samples it removes per class is recorded in ``report.dropped`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ekspresi.data import cache as _cache
from ekspresi.data.coded import parse_jaffe, parse_kdef, read_jaffe, read_kdef
from ekspresi.data.fer2013_csv import read_fer2013_csv
from ekspresi.data.ferplus import is_ferplus, read_ferplus
from ekspresi.data.folders import (
    FER2013_PREFIXES,
    has_class_folders,
    has_split_folders,
    read_folders,
)
from ekspresi.data.listing import iter_files, subdirs
from ekspresi.data.pack import SUFFIX as PACK_SUFFIX
from ekspresi.data.pack import read_pack
from ekspresi.data.records import LoadReport, SampleSet
from ekspresi.errors import BadInputError
from ekspresi.labels import ALL_CLASSES, parse_classes

log = logging.getLogger(__name__)

Reader = Callable[..., SampleSet]  # (path, *, strict) -> SampleSet

LAYOUTS: dict[str, Reader] = {
    "fer2013-folder": lambda p, *, strict: read_folders(p, strict=strict, source="fer2013"),
    "fer2013-csv": read_fer2013_csv,
    "ferplus": read_ferplus,
    "folders": read_folders,
    "jaffe": read_jaffe,
    "kdef": read_kdef,
    "pack": lambda p, *, strict: read_pack(p, strict=strict),
}


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
    """Tell the layout from the folder structure and the file names."""
    if not path.exists():
        raise BadInputError(str(path), "no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "fer2013-csv"
        if path.suffix.lower() == PACK_SUFFIX:
            return "pack"
        raise BadInputError(str(path), f"a dataset file must be a FER2013 .csv or a "
                                       f"{PACK_SUFFIX} pack; image datasets are given as "
                                       "folders")
    if is_ferplus(path):
        return "ferplus"
    if has_split_folders(path):
        return "fer2013-folder" if _has_fer2013_names(path) else "folders"
    if has_class_folders(path):
        return "folders"
    names = [f.name for _, f in zip(range(200), iter_files(path))]
    for layout, parse in (("jaffe", parse_jaffe), ("kdef", parse_kdef)):
        if names and sum(parse(n) is not None for n in names) > len(names) / 2:
            return layout
    raise BadInputError(str(path), "cannot tell the dataset layout (expected class folders, "
                                   "train/test split folders, FER+ FER2013Train/label.csv, or "
                                   "JAFFE/KDEF file names); name it explicitly as LAYOUT:PATH "
                                   f"with LAYOUT one of {', '.join(LAYOUTS)}")


def _has_fer2013_names(root: Path) -> bool:
    for split_dir in subdirs(root):
        for class_dir in subdirs(split_dir):
            for f in iter_files(class_dir):
                return f.name.startswith(tuple(FER2013_PREFIXES))
    return False


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
        ss = LAYOUTS[layout](path, strict=not skip_bad)
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
