"""report/ -- one printer per output format, reading records and analysis: the terminal summary, Markdown,
JUnit properties, the HTML report and its SVG charts (jinja2 templates under templates/), and the exports."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..records import better, label, spec, unit
from ..units import limit, num


def _finalize(v: Any) -> Any:
    """Escape what a template prints as html.escape does (quotes included), unless it is markup already."""
    return v if hasattr(v, "__html__") else Markup(escape(str(v)))


_LOADER = jinja2.FileSystemLoader(Path(__file__).parent / "templates")
#: HTML and SVG templates (escaped output) and text templates (terminal lines, Markdown).
TEMPLATES = jinja2.Environment(loader=_LOADER, autoescape=True, finalize=_finalize, trim_blocks=True,
                               lstrip_blocks=True, undefined=jinja2.StrictUndefined)
TEXT = jinja2.Environment(loader=_LOADER, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
TEXT.filters["md"] = lambda s: s.replace("|", "\\|").replace("\n", "<br>")     # a Markdown table cell or bullet
for _env in (TEMPLATES, TEXT):
    _env.filters["f"] = format
    _env.globals.update(zip=zip, num=num, limit=limit)
TEMPLATES.globals.update(label=label, better=better, spec=spec, unit=unit)
