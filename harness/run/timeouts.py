"""Per-run timeouts, enforced with one SIGALRM timer (`SignalTimer`; main thread, Unix). `HarnessTimeout` is an
engine `RunTimeout`, so the engine marks the partial telemetry timed_out and re-raises. With pytest-timeout the
plugin takes its timer over for bench items (plugin/timer.py); an isolated child enforces its own (run/isolated.py)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from llm_research_bench.engine.deadline import RunTimeout, raise_stop

#: Seconds a child, or a lazy session warm-up, may take to warm up (it may build the corpus index).
STARTUP_TIMEOUT_S = 900.0


class HarnessTimeout(RunTimeout):
    """A run exceeded the timeout the harness enforces (the profile's timeout_s, or a test's own timeout)."""


def signals_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class SignalTimer:
    """SIGALRM raising HarnessTimeout after `arm(seconds)`; `cancel()` restores the previous handler."""

    def __init__(self, via: str = "harness") -> None:
        self.via = via
        self.seconds = 0.0
        self._prev = None
        self._installed = False

    def _fire(self, signum, frame):
        # raise_stop: fired inside a ctypes callback (llama.cpp's logger, while a model loads) the exception would be
        # swallowed; within engine.deadline.stopping_signals() the alarm is then delivered again
        raise_stop(HarnessTimeout(f"Timeout >{self.seconds:g}s (per-run timeout enforced by the harness)"), signum)

    def arm(self, seconds: float) -> None:
        if not self._installed:
            self._prev = signal.signal(signal.SIGALRM, self._fire)
            self._installed = True
        self.seconds = float(seconds)
        signal.setitimer(signal.ITIMER_REAL, max(0.0, self.seconds))

    def cancel(self) -> None:
        if self._installed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._prev if self._prev is not None else signal.SIG_DFL)
            self._installed = False


@contextmanager
def run_deadline(seconds: float, *, timer: SignalTimer | None = None) -> Iterator[str | None]:
    """Give the code inside `seconds`; yields who enforces it ('pytest-timeout', 'harness') or None. An item's
    `timer` is re-armed for the run, then again for the harness's bookkeeping (disarmed after a failure, so it
    cannot fire while the partial run is recorded); else a timer of its own when SIGALRM is free."""
    if not seconds or seconds <= 0 or not signals_usable():
        yield None
    elif timer is not None:
        timer.arm(seconds)
        try:
            yield timer.via
        except BaseException:
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise
        timer.arm(seconds)
    elif signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL)[0] <= 0:
        mine = SignalTimer()
        mine.arm(seconds)
        try:
            yield mine.via
        finally:
            mine.cancel()
    else:
        yield None


@contextmanager
def widened(timer: SignalTimer | None, seconds: float) -> Iterator[None]:
    """Widen an item's active timer (e.g. around a lazy warm-up that is not part of any run)."""
    if timer is not None and signals_usable():
        timer.arm(seconds)
    yield
