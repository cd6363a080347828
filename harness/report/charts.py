"""Inline SVG charts (no plotting library, no network): history lines with a budget band and regression marks,
scatter plots, x-y growth lines and stacked share bars. Each is one <svg class="chart" data-kind=...>; data marks
carry classes (pt, median, band, regression, improvement) for tests and the browser check, and a hover <title>."""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

from ..units import num as fmt

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
W, H = 360, 200
M = {"l": 52, "r": 12, "t": 24, "b": 40}


def describe_change(m) -> str:
    """A history chart's regression/improvement mark (analysis.measures.ChangeMark) in words."""
    if m is None:
        return ""
    pm, cm, test = m.previous_median, m.median, m.test
    rel = f"{(cm - pm) / pm:+.1%}" if pm else f"{cm - pm:+.4g}"
    how = ("indicative: too few runs for a noise test" if m.indicative else
           f"{test.method}" + (f" p = {test.p_value:.3g}" if test.p_value is not None else ""))
    return f"median {pm:.4g} -> {cm:.4g} ({rel}) vs {m.previous_commit}, beyond {m.rel_threshold:.0%}; {how}"


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while True:                      # the last tick is >= hi, so nothing plotted falls outside the frame
        ticks.append(round(t, 12))
        if t >= hi - step * 1e-9:
            return ticks
        t += step


class _Frame:
    """Maps data coordinates to the plot area of one chart."""

    def __init__(self, xlo: float, xhi: float, ylo: float, yhi: float, w: int = W, h: int = H, pad: bool = True):
        self.w, self.h = w, h
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


def _open(kind: str, title: str, w: int = W, h: int = H, **data: str) -> list[str]:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    room = int((w - 8) / 6.2)                     # ~characters that fit at 11 px
    shown = title if len(title) <= room else title[:room - 1] + "\u2026"
    return [f'<svg class="chart" data-kind="{kind}"{attrs} xmlns="http://www.w3.org/2000/svg" width="{w}" '
            f'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}">',
            f'<title>{escape(title)}</title>',
            f'<text x="4" y="13" class="ctitle">{escape(shown)}</text>']


def _y_axis(f: _Frame, unit: str) -> list[str]:
    out = [f'<line class="axis" x1="{M["l"]}" y1="{M["t"]}" x2="{M["l"]}" y2="{f.h - M["b"]}"/>',
           f'<line class="axis" x1="{M["l"]}" y1="{f.h - M["b"]}" x2="{f.w - M["r"]}" y2="{f.h - M["b"]}"/>']
    for t in f.yt:
        y = f.y(t)
        out.append(f'<line class="grid" x1="{M["l"]}" y1="{y:.1f}" x2="{f.w - M["r"]}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{M["l"] - 4}" y="{y + 3:.1f}" text-anchor="end">'
                   f'{escape(fmt(t, "ratio" if unit == "ratio" else ""))}</text>')
    return out


def history_chart(points: Sequence, *, title: str, unit: str = "", better: str = "none") -> str:
    """A metric across commits: every run as a dot, the median per commit as a line, the budget band shaded,
    regressions marked with a red triangle (and improvements with a green one). `points` are
    harness.measures.Point objects, oldest first."""
    vals = [v for p in points for v in p.values]
    bands = [b for p in points if p.band for b in p.band if b is not None]
    lo, hi = min(vals + bands), max(vals + bands)
    f = _Frame(0, max(1, len(points) - 1), lo, hi)
    out = _open("history", title, better=better, points=str(len(points))) + _y_axis(f, unit)
    step = (f.x(1) - f.x(0)) if len(points) > 1 else 40
    for i, p in enumerate(points):           # the band, per commit (budgets may change between commits)
        if not p.band:
            continue
        blo = f.ylo if p.band[0] is None else f.clamp_y(p.band[0])
        bhi = f.yhi if p.band[1] is None else f.clamp_y(p.band[1])
        x0 = max(M["l"], f.x(i) - step / 2)
        x1 = min(f.w - M["r"], f.x(i) + step / 2)
        out.append(f'<rect class="band" x="{x0:.1f}" y="{f.y(bhi):.1f}" width="{max(1.0, x1 - x0):.1f}" '
                   f'height="{max(1.0, f.y(blo) - f.y(bhi)):.1f}"><title>budget '
                   f'{escape(fmt(p.band[0], unit))} .. {escape(fmt(p.band[1], unit))}</title></rect>')
    if len(points) > 1:
        path = " ".join(f"{'M' if i == 0 else 'L'}{f.x(i):.1f},{f.y(p.median):.1f}" for i, p in enumerate(points))
        out.append(f'<path class="median" d="{path}"/>')
    for i, p in enumerate(points):
        fails = list(getattr(p, "fails", None) or []) + [False] * len(p.values)
        for v, failed in zip(p.values, fails):
            cls = "pt fail" if failed else "pt"
            out.append(f'<circle class="{cls}" cx="{f.x(i):.1f}" cy="{f.y(v):.1f}" r="3">'
                       f'<title>{escape(p.commit)}: {escape(fmt(v, unit))}</title></circle>')
        if p.regression or p.improvement:
            cls, why = ("regression", p.regression) if p.regression else ("improvement", p.improvement)
            if getattr(p, "indicative", False):
                cls += " indicative"
            x, y = f.x(i), f.y(p.median)
            tri = (f"{x:.1f},{y - 14:.1f} {x - 6:.1f},{y - 24:.1f} {x + 6:.1f},{y - 24:.1f}" if p.regression
                   else f"{x:.1f},{y + 14:.1f} {x - 6:.1f},{y + 24:.1f} {x + 6:.1f},{y + 24:.1f}")
            out.append(f'<polygon class="{cls}" points="{tri}"><title>{cls.split()[0]}: {escape(describe_change(why))}'
                       f'</title></polygon>')
        if len(points) <= 12 or i in (0, len(points) - 1) or i % max(1, len(points) // 8) == 0:
            out.append(f'<text class="tick" x="{f.x(i):.1f}" y="{f.h - M["b"] + 12}" text-anchor="end" '
                       f'transform="rotate(-30 {f.x(i):.1f} {f.h - M["b"] + 12})">{escape(p.commit[:8])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _xy(pts: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [p[0] for p in pts] or [0.0], [p[1] for p in pts] or [0.0]


def scatter_chart(series: Sequence[tuple[str, Sequence[tuple[float, float, str]]]], *, title: str,
                  x_title: str, y_title: str, x_unit: str = "", y_unit: str = "", w: int = 460, h: int = 280) -> str:
    """Points (x, y, tooltip) per named series, with a legend; used for quality vs time."""
    pts = [(x, y) for _, ps in series for x, y, _ in ps]
    xs, ys = _xy(pts)
    xt = nice_ticks(min(0.0, min(xs)), max(xs) * 1.1 or 1.0)
    ratio = y_unit == "ratio" and 0.0 <= min(ys) and max(ys) <= 1.0
    f = _Frame(xt[0], xt[-1], 0.0 if ratio else min(0.0, min(ys)), 1.0 if ratio else max(ys), w, h, pad=not ratio)
    out = _open("scatter", title, w, h, points=str(len(pts))) + _y_axis(f, y_unit)
    out += _x_axis(f, xt, f'{x_title}{" (" + x_unit + ")" if x_unit else ""}', w, h)
    out.append(f'<text class="tick" x="12" y="{(M["t"] + h - M["b"]) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(M["t"] + h - M["b"]) / 2:.0f})">{escape(y_title)}</text>')
    for k, (name, ps) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        for x, y, tip in ps:
            out.append(f'<circle class="pt" cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="5" style="fill:{colour}">'
                       f'<title>{escape(tip)}</title></circle>')
        ly = M["t"] + 4 + 14 * k
        out.append(f'<circle cx="{w - 150}" cy="{ly}" r="4" fill="{colour}"/>'
                   f'<text class="tick" x="{w - 142}" y="{ly + 3}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _x_axis(f: "_Frame", ticks: Sequence[float], title: str, w: int, h: int) -> list[str]:
    """Tick labels under the plot and the axis title, centred."""
    out = [f'<text class="tick" x="{f.x(t):.1f}" y="{h - M["b"] + 12}" text-anchor="middle">{escape(fmt(t))}</text>'
           for t in ticks]
    out.append(f'<text class="tick" x="{(M["l"] + w - M["r"]) / 2:.0f}" y="{h - 8}" text-anchor="middle">'
               f'{escape(title)}</text>')
    return out


def xy_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, x_title: str,
             y_unit: str = "", w: int = W, h: int = H) -> str:
    """Lines through measured (x, y) points per named series; used for growth with corpus size/context."""
    pts = [p for _, ps in series for p in ps]
    xs, ys = _xy(pts)
    xt = nice_ticks(min(0.0, min(xs)), max(xs))
    f = _Frame(xt[0], xt[-1], min(0.0, min(ys)), max(ys), w, h)
    out = _open("xy", title, w, h, points=str(len(pts))) + _y_axis(f, y_unit) + _x_axis(f, xt, x_title, w, h)
    for k, (name, ps) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        ps = sorted(ps)
        if len(ps) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{f.x(x):.1f},{f.y(y):.1f}" for i, (x, y) in enumerate(ps))
            out.append(f'<path class="median" style="stroke:{colour}" d="{d}"/>')
        for x, y in ps:
            out.append(f'<circle class="pt" cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="3" style="fill:{colour}">'
                       f'<title>{escape(name)}: {escape(fmt(x))} -> {escape(fmt(y, y_unit))}</title></circle>')
        if len(series) > 1:
            out.append(f'<text class="tick" x="{M["l"] + 8}" y="{M["t"] + 10 + 12 * k}" fill="{colour}">'
                       f'{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def share_bar(shares: Sequence[tuple[str, float]], *, title: str, w: int = 460, h: int | None = None) -> str:
    """One stacked horizontal bar of shares (0..1) with a legend; used for phase shares of wall time."""
    h = h or 48 + 14 * ((len(shares) + 1) // 2)
    out = _open("shares", title, w, h, points=str(len(shares)))
    x, bw = 8.0, w - 16
    for k, (name, s) in enumerate(shares):
        width = max(0.0, min(1.0, s)) * bw
        colour = PALETTE[k % len(PALETTE)]
        out.append(f'<rect class="pt" x="{x:.1f}" y="22" width="{width:.1f}" height="18" fill="{colour}">'
                   f'<title>{escape(name)}: {s:.1%}</title></rect>')
        lx, ly = 8 + (k % 2) * (bw / 2), 56 + 14 * (k // 2)
        out.append(f'<rect x="{lx:.0f}" y="{ly - 8}" width="9" height="9" style="fill:{colour}"/>'
                   f'<text class="tick" x="{lx + 13:.0f}" y="{ly}">{escape(name)} {s:.1%}</text>')
        x += width
    out.append("</svg>")
    return "\n".join(out)
