"""A quality bench's summary (analysis/quality.py) as a few terminal lines (templates/quality.txt.j2): what the
quality bench prints when it ends and what the session summary repeats."""
from __future__ import annotations

from ..analysis.quality import QualitySummary
from . import TEXT


def summary_lines(q: QualitySummary) -> list[str]:
    """The quality summary as a few terminal lines."""
    return TEXT.get_template("quality.txt.j2").render(q=q).splitlines()
