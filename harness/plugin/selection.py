"""Opt-in markers: research benches carrying one run only when the -m expression names it or the command
line names their file or node id; `opt_in_note` says what was left out, so nothing is skipped silently."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

#: The plugin's opt-in markers (on research benches only).
OPT_IN_MARKERS = ("quality", "breakdown", "efficiency", "memory_pressure", "calibration")


def mentions_marker(markexpr: str | None, marker: str) -> bool:
    """Whether a -m expression names `marker` as a whole word ("quick and quality" -> True)."""
    return bool(markexpr) and re.search(rf"(?<![\w.]){re.escape(marker)}(?![\w.])", markexpr) is not None


def _named_on_command_line(item: Any, config: Any) -> bool:
    """True when an argument names the item's own file (or a node id inside it), not a folder above it."""
    item_path = Path(str(getattr(item, "path", "") or getattr(item, "fspath", ""))).resolve()
    params = getattr(config, "invocation_params", None)
    root = Path(str(params.dir)) if params else Path.cwd()
    paths = (str(arg).split("::", 1)[0] for arg in getattr(config, "args", []) or [])
    return any(p and (root / p).resolve() == item_path for p in paths)


def deselect_unless_requested(items: list, config: Any, marker: str = "quality",
                              among: Callable[[Any], bool] | None = None) -> list:
    """Remove (in place) and return the items carrying `marker` (of those `among` accepts: default all) unless
    the run asked for them, reported through `config.hook.pytest_deselected`."""
    if mentions_marker(getattr(config.option, "markexpr", "") or "", marker):
        return []
    dropped = [i for i in items if i.get_closest_marker(marker) is not None and (among is None or among(i))
               and not _named_on_command_line(i, config)]
    if dropped:
        gone = set(map(id, dropped))
        items[:] = [i for i in items if id(i) not in gone]
        config.hook.pytest_deselected(items=dropped)
    return dropped


def opt_in_note(dropped: dict[str, int]) -> str | None:
    """The line saying which opt-in benches this session left out, and how to run them."""
    parts, how = [f"{n} {m}" for m, n in dropped.items() if n], [f"-m {m}" for m, n in dropped.items() if n]
    return (f"research-bench: not selected (opt-in): {', '.join(parts)} bench instance(s); run them with "
            f"{' or '.join(how)} (or name their file)") if parts else None
