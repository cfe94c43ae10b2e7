"""Rendering the evaluation reports (``report.html`` / ``report.md``, ``comparison.html``)
from the Jinja2 templates in ``evaluate/templates/``, as the web app renders its pages.

HTML templates are autoescaped; the Markdown one is not (Markdown has no escaping to do).
Figures go into the HTML as base64 PNG so a report is one self-contained file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2


@dataclass
class Figure:
    """One plot of a report: its caption, the PNG (embedded in the HTML) and the PNG/SVG
    paths relative to the report (linked from the Markdown)."""

    caption: str
    png: Path
    png_link: str = ""
    svg_link: str = ""

    @property
    def data(self) -> str:
        return base64.b64encode(self.png.read_bytes()).decode("ascii")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ekspresi.evaluate", "templates"),
        autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render(template: str, **context: Any) -> str:
    """The text of ``evaluate/templates/<template>`` with ``context``."""
    return _environment().get_template(template).render(**context)
