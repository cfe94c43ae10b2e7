"""A small table type rendered as Markdown and CSV (and as HTML by the report templates'
``table`` macro, from the same :meth:`Table.display_rows`), so every report and comparison
prints its numbers one way and the formats can never disagree."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ekspresi.csvcells import safe_row


def fmt(v: Any, kind: str = "") -> str:
    """Display form: ``pct`` -> "71.58 %", ``f3`` -> "0.716", ``s`` -> "1,234.5 s";
    None -> "–" (not available, never zero)."""
    if v is None or v == "":
        return "–"
    if isinstance(v, float) and v != v:  # NaN
        return "–"
    if kind == "pct":
        return f"{100 * float(v):.2f} %"
    if kind == "f3":
        return f"{float(v):.3f}"
    if kind == "f4":
        return f"{float(v):.4f}"
    if kind == "s":
        return f"{float(v):,.1f} s"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class Table:
    """``columns`` are display headers; ``rows`` hold raw values (numbers stay numbers for
    CSV) and ``kinds`` says how each column is displayed (see :func:`fmt`)."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def _kind(self, j: int) -> str:
        return self.kinds[j] if j < len(self.kinds) else ""

    def display_rows(self) -> list[list[str]]:
        return [[fmt(v, self._kind(j)) for j, v in enumerate(r)] for r in self.rows]

    def to_markdown(self) -> str:
        def cell(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")
        lines = ["| " + " | ".join(cell(c) for c in self.columns) + " |",
                 "|" + "|".join("---" if j == 0 else "---:" for j in range(len(self.columns)))
                 + "|"]
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.display_rows()]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(safe_row(self.columns))
        for r in self.rows:
            w.writerow(safe_row("" if v is None else v for v in r))
        return buf.getvalue()

    def column(self, name: str) -> list[Any]:
        j = self.columns.index(name)
        return [r[j] for r in self.rows]


def matrix_table(corner: str, row_names: Sequence[str], col_names: Sequence[str],
                 values: Sequence[Sequence[Any]], kind: str = "") -> Table:
    """A labelled matrix (confusion matrix, model x test set) as a :class:`Table`."""
    return Table([corner, *col_names], [[r, *vals] for r, vals in zip(row_names, values)],
                 ["", *[kind] * len(col_names)])
