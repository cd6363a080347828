"""Terminal width and fitting text to it: $COLUMNS, else the terminal's size, else DEFAULT_WIDTH (a pipe, a CI log).
Tables shrink their wrappable columns; other lines wrap with a hanging indent."""
from __future__ import annotations

import shutil
import textwrap
from typing import Sequence

import tabulate as tabulate_module
from tabulate import tabulate

#: The width off a terminal (piped, CI logs) and when the terminal's size cannot be read.
DEFAULT_WIDTH = 120
#: A terminal narrower than this is treated as this wide: narrower tables would wrap every cell.
MIN_WIDTH = 60


def width() -> int:
    """Columns available: $COLUMNS, else the terminal's width, else DEFAULT_WIDTH (at least MIN_WIDTH)."""
    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def longest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def wrap(line: str, cols: int | None = None, indent: str = "  ") -> list[str]:
    """One line as lines of at most `cols` columns; continuation lines get `indent` on top of the line's own."""
    cols = cols or width()
    if len(line) <= cols:
        return [line]
    lead = line[:len(line) - len(line.lstrip())]
    return textwrap.wrap(line, cols, subsequent_indent=lead + indent, break_long_words=False,
                         break_on_hyphens=False) or [line]


def wrap_all(lines: Sequence[str], cols: int | None = None, indent: str = "  ") -> list[str]:
    cols = cols or width()
    return [piece for line in lines for piece in wrap(line, cols, indent)]


def table(body: Sequence[Sequence[str]], headers: Sequence[str], *, wrappable: Sequence[int] = (),
          tablefmt: str = "simple", cols: int | None = None) -> str:
    """A tabulate table within `cols` columns where it can be, its `wrappable` columns narrowed widest first."""
    cols = cols or width()
    rows = [[str(c) for c in row] for row in body]
    limits: dict[int, int] = {}

    def render() -> str:
        maxw = [limits.get(i) for i in range(len(headers))] if limits else None
        padding, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0    # no 2 blanks after each heading
        try:
            return tabulate(rows, headers=list(headers), tablefmt=tablefmt, disable_numparse=True,
                            maxcolwidths=maxw, maxheadercolwidths=maxw)
        finally:
            tabulate_module.MIN_PADDING = padding

    out = render()
    while longest(out) > cols and wrappable:
        widths = {i: max([len(x) for r in rows for x in r[i].splitlines()] + [len(headers[i])]) for i in wrappable}
        widths = {i: min(w, limits.get(i, w)) for i, w in widths.items()}
        i = max(widths, key=widths.__getitem__)
        if widths[i] <= 8:
            break
        runner_up = max([w for j, w in widths.items() if j != i] + [8])
        # the widest column down to the runner-up's width at most: the narrowing is shared out, widest first
        limits[i] = max(8, widths[i] - (longest(out) - cols), min(runner_up, widths[i] - 1))
        out = render()
    return out
