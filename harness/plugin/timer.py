"""pytest-timeout's timer for research benches that run research, taken over through its firstresult hooks:
one SignalTimer per item (run/timeouts.py), re-armed by the harness for each run. Other items are left to it."""
from __future__ import annotations

from typing import Any

import pytest

from .items import BENCH_KEY

TIMER_KEY = pytest.StashKey[Any]()


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: Any, settings: Any) -> bool | None:
    """Taken for a research bench that runs research: it uses a bench fixture, or carries the `pipeline` marker."""
    fixtures = set(getattr(item, "fixturenames", ()) or ())
    runs = fixtures & {"research_bench", "record_result"} or item.get_closest_marker("pipeline") is not None
    if not (item.stash.get(BENCH_KEY, False) and runs) or settings.method not in ("signal", None):
        return None
    from ..run.timeouts import SignalTimer, signals_usable
    if not signals_usable():
        return None
    item.stash[TIMER_KEY] = timer = SignalTimer(via="pytest-timeout")
    timer.arm(settings.timeout)
    return True


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: Any) -> bool | None:
    timer = item.stash.get(TIMER_KEY, None)
    if timer is None:
        return None
    timer.cancel()
    del item.stash[TIMER_KEY]
    return True
