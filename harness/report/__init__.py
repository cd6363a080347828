"""report/ -- one printer per output format, reading records and analysis: the terminal summary, Markdown,
JUnit properties, the HTML report and its SVG charts (jinja2 templates under templates/), and the exports."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import jinja2

from ..units import num


class Raw(str):
    """Markup a template prints as it is (a chart, a commit link)."""

    def __html__(self) -> str:
        return self


def _finalize(v: Any) -> Any:
    """Escape what a template prints as html.escape does (quotes included), unless it is markup already."""
    return v if hasattr(v, "__html__") else Raw(escape(str(v)))


TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                               finalize=_finalize, trim_blocks=True, lstrip_blocks=True,
                               undefined=jinja2.StrictUndefined)
TEMPLATES.filters["f"] = format
TEMPLATES.globals.update(zip=zip, num=num)
