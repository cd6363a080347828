"""Numbers as people read them: the one formatter of verdict messages, tables, the HTML report and its charts.
Units are the schemas' x-unit values."""
from __future__ import annotations

import math
from typing import Any

from .records import is_number

#: Units a table column header already names: cells show the bare number.
IMPLIED_UNITS = ("ratio", "tok", "tok/s")
#: From this size on a value shows in scientific notation (1e+308 s), never as a column of digits.
HUGE = 1e15


def decimals(v: float, unit: str = "") -> int:
    """How many decimals a value gets: fewer as it grows; ratios two."""
    a = abs(v)
    if unit == "ratio" and a <= 10:
        return 2
    return 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 or a == 0 else 3


def num(v: Any, unit: str = "", *, show_unit: bool = True, missing: str = "n/a") -> str:
    """'13.4 s', '912 MB', '0.95', '4,624': a value at the precision its size calls for, with its unit."""
    if not is_number(v):
        return missing
    if abs(v) >= HUGE:
        s = f"{v:.3g}"
    elif isinstance(v, int) or (float(v).is_integer() and unit in ("", "tok")):
        s = f"{int(v):,}"
    elif abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif abs(v) < 1 and v != 0 and unit != "ratio":
        s = f"{v:.3g}"
    else:
        s = f"{v:.{decimals(v, unit)}f}"
    return f"{s} {unit}" if show_unit and unit and unit != "ratio" else s


def cell(v: Any, unit: str = "") -> str:
    """A table cell: '-' when missing, the unit left to the column header when it names it."""
    return num(v, unit, show_unit=unit not in IMPLIED_UNITS, missing="-")


def spread(median: float | None, iqr: float | None, n: int, unit: str = "") -> str:
    """'14.0 ±1.0 s': a median and, over several runs, its IQR, at the median's precision."""
    if median is None:
        return "-"
    if unit == "s" and abs(median) < 1:                  # inter-token latencies read better in ms
        median, iqr, unit = median * 1000, (iqr * 1000 if iqr is not None else None), "ms"
    if abs(median) >= HUGE or (iqr is not None and abs(iqr) >= HUGE):
        fmt = ".3g"
    elif unit in ("", "tok") and float(median).is_integer() and (iqr is None or float(iqr).is_integer()):
        fmt = ".0f"                                      # counts (claims, tokens)
    else:
        fmt = f".{decimals(median, unit)}f"
    s = f"{median:{fmt}}" + (f" ±{iqr:{fmt}}" if n > 1 and iqr is not None else "")
    return f"{s} {unit}" if unit and unit not in IMPLIED_UNITS else s


def seconds(t: float) -> str:
    """A duration in a verdict message: '13.5', '0.45'."""
    return f"{t:.3g}" if abs(t) >= HUGE else f"{t:.1f}" if abs(t) >= 1 else f"{t:.2f}"


def limit(x: float) -> str:
    """A budget figure as written in a profile: 45, 0.45, 4096."""
    return f"{x:g}" if abs(x) < 1e6 or abs(x) >= HUGE else f"{x:.0f}"


def pct_over(value: float, bound: float) -> float | None:
    """How far `value` is past `bound`, in percent of the bound."""
    return (value - bound) / bound * 100.0 if bound else None


def pct(p: float | None) -> str:
    """'+16 %' (or 'n/a')."""
    return "n/a" if p is None or not math.isfinite(p) else f"{p:+{'.3g' if abs(p) >= HUGE else '.0f'}} %"
