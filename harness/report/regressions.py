"""The confirmed steps of the stored history (analysis/changepoints.py) as rows (`research-bench regressions
--format json`), as text lines, and as the HTML report's table linking each step to its chart."""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

from ..records import unit
from ..units import num
from . import TEMPLATES


def chart_id(machine: str, series: str, metric: str) -> str:
    """The id of a series' history chart of one metric on one machine: what a step's link points at."""
    return "chart-" + "-".join(re.sub(r"[^A-Za-z0-9_]+", "-", x).strip("-") for x in (machine, series, metric))


def rows(steps: Sequence, subjects: Mapping[str, str]) -> list[dict]:
    """One dict per step, newest first: commit, subject, machine, series, metric, before, after, change, p, date."""
    return [{"commit": s.commit, "previous_commit": s.previous_commit, "subject": subjects.get(s.commit, ""),
             "machine": s.machine, "series": s.series, "metric": s.metric, "before": s.before, "after": s.after,
             "change_pct": s.change_pct, "p": s.p, "test": s.method, "date": s.timestamp,
             "runs_before": s.n_before, "runs_after": s.n_after, "chart": chart_id(s.machine, s.series, s.metric)}
            for s in sorted(steps, key=lambda s: s.timestamp, reverse=True)]


def _line(r: dict) -> str:
    p = f"p={r['p']:.3g}" if r["p"] is not None else "no p"
    u = unit(r["metric"])
    return (f"{r['commit'][:12]} {r['series']} {r['metric']}: {num(r['before'], u)} -> "
            f"{num(r['after'], u)} ({r['change_pct']:+.1f} %, {r['test']} {p}; {r['runs_before']} v "
            f"{r['runs_after']} runs) {r['date'][:10]}" + (f"  \"{r['subject']}\"" if r["subject"] else ""))


def text(table: Sequence[dict]) -> str:
    """The rows as lines, one per step."""
    return "\n".join(map(_line, table)) if table else "no confirmed steps for the worse in the stored history"


def html_table(table: Sequence[dict], commit_cell: Callable[[str], str] = str) -> str:
    """The rows as an HTML table (templates/regressions.html.j2); `commit_cell` writes a commit key as HTML."""
    return TEMPLATES.get_template("regressions.html.j2").module.table(table, commit_cell)
