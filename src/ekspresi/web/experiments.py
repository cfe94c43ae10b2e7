"""The Experiments page: training runs found under ``--runs DIR`` and safe access to their
files.

A run is a direct sub-directory of the runs folder that
:func:`ekspresi.runs.is_run_dir` recognises, or that holds a report
(``report/report.html`` as ``ekspresi evaluate`` writes it, or ``report.html``). Files are served
only when their resolved path (symlinks followed) stays inside that run's directory, and
that directory's resolved path inside the runs folder, so no ``..`` or link (a run folder
that is itself a link to elsewhere included) can reach anything else on disk.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError
from ekspresi.metrics_schema import RunMetrics, load_metrics
from ekspresi.runs import FINAL_NAME, is_run_dir

log = logging.getLogger("ekspresi.web")

#: Where a run's HTML report may be, first match wins.
REPORT_PATHS = ("report/report.html", "report.html")
#: Files of a run the web app may serve (the report and what it links to).
SERVABLE_SUFFIXES = {".html", ".png", ".svg", ".jpg", ".jpeg", ".webp", ".json", ".csv",
                     ".txt", ".log", ".yaml", ".yml", ".css"}
#: Run names we accept in URLs: what ``ekspresi train`` writes, nothing path-like.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$")
#: Headline metrics of a run's test split shown in the runs table (when ``compare_runs`` is
#: unavailable).
HEADLINE_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "macro_precision",
                 "macro_recall", "log_loss", "ece", "n_samples")


@dataclass
class Run:
    name: str
    path: Path
    report: str | None  # path of the HTML report relative to the run, if any
    metrics: RunMetrics = field(default_factory=RunMetrics)
    error: str | None = None

    @property
    def headline(self) -> dict[str, Any]:
        """The test split's scalar scores worth a column."""
        test = self.metrics.test.model_dump()
        return {k: test[k] for k in HEADLINE_KEYS
                if isinstance(test.get(k), (int, float)) and not isinstance(test[k], bool)}


def list_runs(runs_dir: Path | None) -> list[Run]:
    """Runs under ``runs_dir``, newest first. Unreadable metrics are reported, not hidden."""
    if runs_dir is None or not runs_dir.is_dir():
        return []
    runs: list[Run] = []
    root = runs_dir.resolve()
    for child in runs_dir.iterdir():
        if not child.is_dir() or not RUN_NAME.match(child.name):
            continue
        if not child.resolve().is_relative_to(root):   # a link to a folder elsewhere
            continue
        report = next((r for r in REPORT_PATHS if (child / r).is_file()), None)
        if report is None and not is_run_dir(child):
            continue
        run = Run(name=child.name, path=child, report=report)
        if (child / FINAL_NAME).is_file():
            try:
                run.metrics = load_metrics(child / FINAL_NAME)
            except BadInputError as exc:
                run.error = f"{FINAL_NAME} unreadable ({exc.problem})"
        runs.append(run)
    runs.sort(key=lambda r: r.path.stat().st_mtime, reverse=True)
    return runs


def find_run(runs_dir: Path | None, name: str) -> Run | None:
    if not RUN_NAME.match(name):
        return None
    return next((r for r in list_runs(runs_dir) if r.name == name), None)


def safe_run_file(run: Run, relative: str) -> Path | None:
    """The file ``relative`` inside ``run``, or None if it escapes the run directory (or
    the run directory escapes the runs folder), is not a regular file, or has a type we do
    not serve."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    try:
        runs_root = run.path.parent.resolve()
        root = run.path.resolve()
        target = (root / relative).resolve()
    except (OSError, RuntimeError):
        return None
    if not root.is_relative_to(runs_root) or not target.is_relative_to(root) \
            or not target.is_file():
        return None
    if target.suffix.lower() not in SERVABLE_SUFFIXES:
        return None
    return target


#: Content-Security-Policy of a run's files opened directly in the browser. A report is a
#: document to read with its own scripts (plots, tables) but no access to this origin
#: (``sandbox`` = unique origin); an SVG or any other file gets no scripts at all.
REPORT_CSP = "sandbox allow-scripts allow-popups"
FILE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def run_file_headers(target: Path) -> dict[str, str]:
    """Headers for serving a run's file: every one is sandboxed, since run folders hold
    whatever a training run (or someone with write access to it) put there."""
    csp = REPORT_CSP if target.suffix.lower() == ".html" else FILE_CSP
    return {"Content-Security-Policy": csp}


def comparison_table(runs: list[Run]) -> tuple[tuple[list[str], list[list[str]]] | None,
                                                str | None]:
    """(columns, formatted rows) of :func:`ekspresi.evaluate.compare.compare_runs`, or
    (None, why) when it cannot be built, and the page falls back to the headline table."""
    if not runs:
        return None, None
    try:
        from ekspresi.evaluate.compare import compare_runs

        table = compare_runs([r.path for r in runs if r.error is None and is_run_dir(r.path)])
    except ImportError as exc:  # the module, or a library compare_runs imports when called
        return None, (f"the full comparison table needs `pip install ekspresi[train]` "
                      f"({exc.name or exc} is not installed)")
    except Exception as exc:  # a broken run must not take the page down
        log.warning("compare_runs failed: %s", exc)
        return None, f"the comparison table could not be built: {exc}"
    return (list(table.columns), table.display_rows()), None
