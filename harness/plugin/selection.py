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
    root = Path(str(getattr(config, "invocation_params", None).dir if getattr(config, "invocation_params", None)
                    else Path.cwd()))
    for arg in getattr(config, "args", []) or []:
        path_part = str(arg).split("::", 1)[0]
        if not path_part:
            continue
        p = Path(path_part)
        p = (p if p.is_absolute() else root / p).resolve()
        if p == item_path:
            return True
    return False


def deselect_unless_requested(items: list, config: Any, marker: str = "quality",
                              among: Callable[[Any], bool] | None = None) -> list:
    """Remove (in place) the items carrying `marker` (of those `among` accepts: default all) unless the run
    asked for them; report them as deselected through `config.hook.pytest_deselected`. Returns the
    deselected items."""
    if mentions_marker(getattr(config.option, "markexpr", "") or "", marker):
        return []
    keep, dropped = [], []
    for item in items:
        if (item.get_closest_marker(marker) is not None and (among is None or among(item))
                and not _named_on_command_line(item, config)):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        items[:] = keep
        config.hook.pytest_deselected(items=dropped)
    return dropped


def opt_in_note(dropped: dict[str, int]) -> str | None:
    """The line saying which opt-in benches this session left out, and how to run them."""
    parts = [f"{n} {m}" for m, n in dropped.items() if n]
    if not parts:
        return None
    how = " or ".join(f"-m {m}" for m, n in dropped.items() if n)
    return (f"research-bench: not selected (opt-in): {', '.join(parts)} bench instance(s); run them with {how} "
            f"(or name their file)")
