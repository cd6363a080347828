"""pytest-timeout, taken over for research benches through its hooks.

pytest-timeout calls `pytest_timeout_set_timer(item, settings)` / `pytest_timeout_cancel_timer(item)`
(firstresult hooks, meant for alternative timeout implementations). For a research bench (plugin/items.py)
that runs research (it uses `research_bench` or `record_result`, or carries the `pipeline` marker), the
plugin answers them with one SignalTimer per item (run/timeouts.py): the harness re-arms it for each run, and
it raises the harness's timeout, which the engine recognises by type. Every other item is left to
pytest-timeout. Without pytest-timeout the harness arms its own timer around each run.
Light at import: run/timeouts.py (and with it the engine's deadline type) loads on a bench's first timer."""
from __future__ import annotations

from typing import Any

import pytest

BENCH_KEY = pytest.StashKey[bool]()         # set by the collection hook on research benches
TIMER_KEY = pytest.StashKey[Any]()
BENCH_FIXTURES = ("research_bench", "record_result")


def owns(item: Any) -> bool:
    if not item.stash.get(BENCH_KEY, False):
        return False
    names = getattr(item, "fixturenames", ()) or ()
    return any(f in names for f in BENCH_FIXTURES) or item.get_closest_marker("pipeline") is not None


def set_timer(item: Any, settings: Any) -> bool | None:
    if not owns(item) or settings.method not in ("signal", None):
        return None
    from ..run.timeouts import SignalTimer, signals_usable
    if not signals_usable():
        return None
    timer = SignalTimer(via="pytest-timeout")
    item.stash[TIMER_KEY] = timer
    timer.arm(settings.timeout)
    return True


def cancel_timer(item: Any) -> bool | None:
    timer = item.stash.get(TIMER_KEY, None)
    if timer is None:
        return None
    timer.cancel()
    del item.stash[TIMER_KEY]
    return True


def timer_of(item: Any) -> Any:
    return item.stash.get(TIMER_KEY, None)
