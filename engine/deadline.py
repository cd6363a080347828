"""Run deadlines: the exception that stops a run at its timeout, and the deadline the engine enforces itself.

`RunTimeout` is a BaseException (like KeyboardInterrupt), so nothing inside the engine swallows it. The engine
raises it itself when a run passes its profile's timeout_s (`Deadline.check`); a harness that enforces its own
timeout (a signal timer, a test runner's timeout) raises a subclass of it. Either way the pipeline recognises it
by type and marks the run's partial telemetry `timed_out: true`.

`Deadline(seconds, clock=time.monotonic)` is pure logic over an injected clock: the pipeline checks it between
phases and evidence batches and between streamed tokens; a backend bounds what it cannot interrupt token by
token with it (llama.cpp aborts a long prompt evaluation through its abort callback, Ollama's read timeout never
outlasts it). `extend(s)` moves it by `s` seconds (a one-time index build is not research time)."""
from __future__ import annotations

import time
from typing import Callable


class RunTimeout(BaseException):
    """A research run passed its timeout. Subclass it to mark a timeout raised from outside the engine."""


class Deadline:
    """A run's deadline `seconds` after creation (None or <= 0: no deadline) on `clock` (monotonic seconds)."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.seconds = float(seconds) if seconds and seconds > 0 else None
        self.started = clock()
        self.at = None if self.seconds is None else self.started + self.seconds
        self.extended_s = 0.0

    def remaining(self) -> float | None:
        """Seconds left (negative once passed); None without a deadline."""
        return None if self.at is None else self.at - self.clock()

    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def extend(self, seconds: float) -> None:
        """Move the deadline `seconds` later (time that is not part of the run, e.g. a one-time index build)."""
        if self.at is not None and seconds > 0:
            self.at += seconds
            self.extended_s += seconds

    def error(self, where: str) -> RunTimeout:
        """The RunTimeout that says where the run was when it passed its deadline."""
        extra = f" (+{self.extended_s:.1f} s for building the index)" if self.extended_s else ""
        return RunTimeout(f"the run passed its {self.seconds:g} s timeout{extra} during {where}: raise the "
                          f"profile's timeout_s (--profiles-file) or free CPUs for it")

    def check(self, where: str) -> None:
        """Raise RunTimeout when the deadline has passed; `where` names the point the run had reached."""
        if self.expired():
            raise self.error(where)
