"""Run deadlines: the exception that stops a run at its timeout.

`RunTimeout` is a BaseException (like KeyboardInterrupt), so nothing inside the engine swallows it. The engine
raises it itself when a run passes its profile's timeout_s; a harness that enforces its own timeout (a signal
timer, a test runner's timeout) raises a subclass of it. Either way the pipeline recognises it by type and marks
the run's partial telemetry `timed_out: true`."""
from __future__ import annotations


class RunTimeout(BaseException):
    """A research run passed its timeout. Subclass it to mark a timeout raised from outside the engine."""
