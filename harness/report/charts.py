"""Inline SVG charts drawn by templates/charts.svg.j2: history lines with a budget band and change marks, scatter
plots, x-y growth lines and stacked share bars; data marks carry the classes pt, median, band, regression and
improvement, and a hover <title>."""
from __future__ import annotations

import math
from itertools import accumulate
from typing import Mapping, Sequence

from . import TEMPLATES

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
W, H = 360, 200
M = {"l": 52, "r": 12, "t": 24, "b": 40}


TEMPLATES.globals.update(M=M, palette=PALETTE)
_SVG = TEMPLATES.get_template("charts.svg.j2").module
describe_change = _SVG.describe_change


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    ticks, t = [], math.floor(lo / step) * step
    while True:                      # the last tick is >= hi, so nothing plotted falls outside the frame
        ticks.append(round(t, 12))
        if t >= hi - step * 1e-9:
            return ticks
        t += step


class _Frame:
    """Maps data coordinates to the plot area of one chart."""

    def __init__(self, xlo: float, xhi: float, ylo: float, yhi: float, w: int = W, h: int = H, pad: bool = True,
                 unit: str = ""):
        self.w, self.h, self.unit = w, h, unit
        pad = ((yhi - ylo) * 0.08 or (abs(yhi) * 0.1 or 1.0)) if pad else 0.0
        lo = ylo - (pad if ylo != 0 else 0)
        if ylo >= 0 > lo:                         # non-negative data: the axis starts at 0, not below
            lo = 0.0
        self.yt = nice_ticks(lo, yhi + pad)
        self.ylo, self.yhi = min(self.yt[0], ylo), max(self.yt[-1], yhi)
        if self.yhi == self.ylo:
            self.yhi = self.ylo + 1
        self.xlo, self.xhi = xlo, (xhi if xhi > xlo else xlo + 1)

    def x(self, v: float) -> float:
        return M["l"] + (v - self.xlo) / (self.xhi - self.xlo) * (self.w - M["l"] - M["r"])

    def y(self, v: float) -> float:
        return self.h - M["b"] - (v - self.ylo) / (self.yhi - self.ylo) * (self.h - M["t"] - M["b"])

    def clamp_y(self, v: float) -> float:
        return min(max(v, self.ylo), self.yhi)

    def shown(self, title: str) -> str:
        """The title cut to what fits the chart's width at 11 px."""
        room = int((self.w - 8) / 6.2)
        return title if len(title) <= room else title[:room - 1] + "\u2026"


def _draw(macro: str, *args) -> str:
    return getattr(_SVG, macro)(*args).strip()


#: At most this many commits are named under a history chart's axis (spread evenly, the first and last included).
AXIS_COMMITS = 6


def commit_labels(points: Sequence, commits: Mapping | None = None) -> list[tuple[str, str, str, bool]]:
    """Per point: (date 'MM-DD', short hash, hover text, whether the axis names it); `commits`: key -> Commit."""
    n = len(points)
    k = min(n, AXIS_COMMITS)
    named = {round(j * (n - 1) / (k - 1)) for j in range(k)} if k > 1 else {0}
    out = []
    for i, p in enumerate(points):
        c, dirty = (commits or {}).get(p.commit), "+" if p.commit.endswith("+dirty") else ""
        out.append((c.date[5:10] if c else "", p.commit[:7 if c else 8] + dirty,
                    f"{p.commit} · {c.date[:10]} · {c.subject}" if c else p.commit, i in named))
    return out


def history_chart(points: Sequence, *, title: str, unit: str = "", better: str = "none",
                  commits: Mapping | None = None) -> str:
    """A metric across commits (measures.Point, oldest first): runs as dots, the medians' line, the budget band,
    a regression as a red triangle, an improvement as a green one."""
    vals = [v for p in points for v in p.values]
    bands = [b for p in points if p.band for b in p.band if b is not None]
    f = _Frame(0, max(1, len(points) - 1), min(vals + bands), max(vals + bands))
    return _draw("history", f, points, title, unit, better, commit_labels(points, commits))


def _xy(pts: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [p[0] for p in pts] or [0.0], [p[1] for p in pts] or [0.0]


def scatter_chart(series: Sequence[tuple[str, Sequence[tuple[float, float, str]]]], *, title: str,
                  x_title: str, y_title: str, x_unit: str = "", y_unit: str = "") -> str:
    """Points (x, y, tooltip) per named series, with a legend; used for quality vs time."""
    xs, ys = _xy([(x, y) for _, ps in series for x, y, _ in ps])
    xt = nice_ticks(min(0.0, min(xs)), max(xs) * 1.1 or 1.0)
    ratio = y_unit == "ratio" and 0.0 <= min(ys) and max(ys) <= 1.0
    f = _Frame(xt[0], xt[-1], 0.0 if ratio else min(0.0, min(ys)), 1.0 if ratio else max(ys), 460, 280, not ratio,
               y_unit)
    return _draw("scatter", f, series, xt, title, f'{x_title}{" (" + x_unit + ")" if x_unit else ""}', y_title,
                 sum(len(ps) for _, ps in series))


def xy_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, x_title: str) -> str:
    """Lines through measured (x, y) points per named series; used for growth with corpus size/context."""
    pts = [p for _, ps in series for p in ps]
    xs, ys = _xy(pts)
    xt = nice_ticks(min(0.0, min(xs)), max(xs))
    f = _Frame(xt[0], xt[-1], min(0.0, min(ys)), max(ys))
    return _draw("xy", f, [(name, sorted(ps)) for name, ps in series], xt, title, x_title, len(pts))


def share_bar(shares: Sequence[tuple[str, float]], *, title: str) -> str:
    """One stacked horizontal bar of shares (0..1) with a legend; used for phase shares of wall time."""
    f = _Frame(0, 1, 0, 1, 460, 48 + 14 * ((len(shares) + 1) // 2))
    widths = [max(0.0, min(1.0, s)) * (f.w - 16) for _, s in shares]
    bars = [(name, s, x, w) for (name, s), x, w in zip(shares, accumulate(widths, initial=8.0), widths)]
    return _draw("shares", f, bars, title)
