"""Run deadlines and stops: the exceptions that stop a run at its timeout, or at SIGTERM.

`RunTimeout` is a BaseException (like KeyboardInterrupt), so nothing inside the engine swallows it. The engine
raises it itself when a run passes its profile's timeout_s; a harness that enforces its own timeout (a signal
timer, a test runner's timeout) raises a subclass of it. Either way the pipeline recognises it by type and marks
the run's partial telemetry `timed_out: true`."""
from __future__ import annotations


class RunTimeout(BaseException):
    """A research run passed its timeout. Subclass it to mark a timeout raised from outside the engine."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a run. Raised in the main thread by a handler the caller installs (the engine CLI, the
    harness), it stops the run the way Ctrl-C does: the pipeline stores the partial telemetry (success false, the
    signal in `errors`) before it propagates."""
