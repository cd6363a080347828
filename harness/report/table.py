"""The summary table of a session's bench instances for the terminal and Markdown printers: its cells
(templates/table.txt.j2), its legend, and the detail lines it leaves out."""
from __future__ import annotations

from typing import Sequence

from ..analysis.compare import Comparison
from ..analysis.instances import InstanceSummary
from ..records import REAL_RUNNERS, label
from ..units import cell, limit, spread
from . import TEXT, layout

TEXT.globals.update(real_runners=REAL_RUNNERS, spread=spread)
_CELL = TEXT.get_template("table.txt.j2").module

#: The summary table's columns, within about 100 columns; the rest of each row is in detail_lines(), and cells
#: of the wrappable columns (WRAPPABLE) wrap on a narrower terminal.
HEADERS = ("bench", "runs", "time / budget", "memory / limit", "tok/s", "claims", "cit.", "target", "Δ time / mem")
WRAPPABLE = (0, 2, 8)


def render(instances: Sequence[InstanceSummary], comparison: Comparison | None = None, tablefmt: str = "simple",
           cols: int | None = None) -> str:
    """The summary table, one row per bench instance (TABLE_LEGEND explains it), within `cols` columns."""
    body = []
    for r in instances:
        m = r.metrics
        runs = str(r.runs) + (f"+{r.warmups}w" if r.warmups else "")
        body.append([_CELL.name(r), runs, _CELL.time(r), _CELL.memory(r),
                     cell(m.get("tokens_per_second"), "tok/s"), cell(m.get("claims")),
                     cell(m.get("citation_validity"), "ratio"), _CELL.target(r),
                     _CELL.delta(comparison.for_key(r.key) if comparison is not None else None)])
    return layout.table(body, HEADERS, wrappable=WRAPPABLE if tablefmt == "simple" else (), tablefmt=tablefmt,
                        cols=cols)


def detail_lines(instances: Sequence[InstanceSummary]) -> list[str]:
    """What the table leaves out, a line per instance, then one for its busy attempts and one for its fast runs."""
    out = []
    for r in instances:
        why = "" if r.unverified and r.gated else _CELL.reason(r)    # its own section says it
        parts = ([why] if why else []) + [f"{label('ttft_s')} {cell(r.metrics.get('ttft_s'), 's')}",
                                          f"early exit {_CELL.early_exit(r.early_exit)}"]
        if r.time_lower is not None:
            parts.append(f"time band {limit(r.time_lower)}-{limit(r.time_upper)} s" if r.time_upper is not None
                         else f"time lower bound {limit(r.time_lower)} s")
        if not r.gated:
            parts.append("not gated (shown, never fails the session)")
        name = _CELL.name(r)
        out.append(f"{name}: " + "; ".join(parts))
        out += [f"{name}: {n}" for n in (_CELL.busy(r), _CELL.under(r)) if n]
    return out


TABLE_LEGEND = ("time: median (± IQR) / budget, busy: every run timed on a busy machine; memory: worst run's peak "
                "/ limit",
                "tok/s: decode; cit.: citation validity; target: * not gated; Δ vs the baseline: ! beyond a "
                "threshold, ~ indicative")
