"""Run deadlines and stops: the exceptions that stop a run at its timeout, at SIGTERM or at Ctrl-C, and the one
place that turns those signals into exceptions that really stop the run.

`RunTimeout` is a BaseException (like KeyboardInterrupt), so nothing inside the engine swallows it. The engine
raises it itself when a run passes its profile's timeout_s; a harness that enforces its own timeout (a signal
timer, a test runner's timeout) raises a subclass of it. Either way the pipeline recognises it by type and marks
the run's partial telemetry `timed_out: true`.

`Deadline(seconds, clock=time.monotonic)` is pure logic over an injected clock: the pipeline checks it between
phases and evidence batches and between streamed tokens; a backend bounds what it cannot interrupt token by
token with it (llama.cpp aborts a long prompt evaluation through its abort callback, Ollama's read timeout never
outlasts it). `extend(s)` moves it by `s` seconds (a one-time index build is not research time).

`Terminated` (a KeyboardInterrupt) is what SIGTERM raises inside `stopping_signals()`: the run stops exactly as
on Ctrl-C, and the pipeline stores its partial telemetry, marked.

Python runs a signal handler wherever the main thread is; when that is a ctypes callback (llama.cpp calls its
Python log callback many times while it loads a model) or a `__del__`, the exception the handler raises is only
*reported* as unraisable and swallowed, and the run goes on as if no signal had come. A handler that raises with
`raise_stop(exc, signum)` (SIGTERM's and Ctrl-C's here, the harness's timeout alarm) therefore has its signal
delivered again while `stopping_signals()` is active, until it lands in ordinary Python code and stops the run."""
from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


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


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a run. Raised in the main thread by `stopping_signals()` (the engine CLI, the
    harness), it stops the run the way Ctrl-C does: the pipeline stores the partial telemetry (success false, the
    signal in `errors`) before it propagates."""


def redeliverable(exc: BaseException, signum: int) -> BaseException:
    """Mark an exception a signal handler raises: if Python swallows it (raised inside a ctypes callback or a
    `__del__`), the signal is sent again while `stopping_signals()` is active."""
    exc.redeliver_signal = signum  # type: ignore[attr-defined]
    return exc


def raise_stop(exc: BaseException, signum: int) -> None:
    """For a signal handler: raise `exc` (a timeout, a stop) so that it stops the run, marked redeliverable. Inside
    stopping_signals()'s own unraisable hook it asks for the signal again instead: raising there would be
    swallowed too."""
    if _ACTIVE and (_IN_HOOK.depth or _inside_hook()):
        _ACTIVE[-1].want = signum        # the resender sends it again (no lock taken here: the hook may hold the
        return                           # Event's lock right now)
    raise redeliverable(exc, signum)


def _inside_hook() -> bool:
    """Whether the interrupted code is a stopping_signals() unraisable hook (at any bytecode of it, its first one
    included, before it could mark itself)."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code in _HOOK_CODES:
            return True
        f = f.f_back
    return False


class _IN_HOOK:
    depth = 0        # > 0 while an unraisable hook of stopping_signals() runs (in the main thread)


_ACTIVE: list["_Stops"] = []           # the stopping_signals() contexts now open, innermost last
_HOOK_CODES: set = set()               # the code of the unraisable hook (a signal landing in it must not raise)


class _Stops:
    """The state of one `stopping_signals()`. A stop swallowed as unraisable is handed to one resender thread,
    which sends the signal again ~10 ms later (at most one pending: two would raise twice, the second time inside
    the pipeline's failure path while it saves the telemetry). A handler that fires inside the unraisable hook
    itself only asks for another resend (raising there would be swallowed again)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = True
        self.want: int | None = None
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._resend, name="stopping-signals", daemon=True)
        self.thread.start()

    def _resend(self) -> None:
        main = threading.main_thread().ident
        while True:
            woken = self.wake.wait(0.1)  # also polls: a stop asked for at the hook's very end sets no wake
            self.wake.clear()
            if woken:
                time.sleep(0.01)         # let the main thread leave the hook and the C call that swallowed it
            with self.lock:
                if not self.active:
                    return
                signum, self.want = self.want, None
            if signum is not None:
                signal.pthread_kill(main, signum)

    def hook(self, previous):
        def hook(unraisable) -> None:
            _IN_HOOK.depth += 1
            try:
                signum = getattr(unraisable.exc_value, "redeliver_signal", None)
                if signum is None:
                    previous(unraisable)
                else:
                    self.want = signum
            finally:
                _IN_HOOK.depth -= 1
            if self.want is not None:
                self.wake.set()
        _HOOK_CODES.add(hook.__code__)
        return hook

    def close(self) -> None:
        with self.lock:
            self.active = False
        self.wake.set()


@contextmanager
def stopping_signals(*, sigint: bool = False) -> Iterator[None]:
    """While inside: SIGTERM raises Terminated (and, with `sigint`, Ctrl-C raises KeyboardInterrupt) so that the
    run stops with its partial telemetry stored; a swallowed stop is delivered again (see the module's note).
    Only in the main thread, and only over a signal's default action (a handler of someone else's is kept)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_kill"):
        yield
        return
    state = _Stops()
    installed: dict[int, object] = {}

    def on_term(signum, frame):
        if state.active:                # (once closing, a resent stop is absorbed)
            raise_stop(Terminated("stopped by SIGTERM"), signum)

    def on_int(signum, frame):
        if state.active:
            raise_stop(KeyboardInterrupt(), signum)

    wanted = [(signal.SIGTERM, on_term, signal.SIG_DFL)]
    if sigint:
        wanted.append((signal.SIGINT, on_int, signal.default_int_handler))
    for signum, handler, default in wanted:
        if signal.getsignal(signum) is default:
            installed[signum] = signal.signal(signum, handler)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = state.hook(previous_hook)
    _ACTIVE.append(state)
    try:
        yield
    finally:
        state.close()               # no resend from here on; one already sent is absorbed by our handlers
        _ACTIVE.remove(state)
        sys.unraisablehook = previous_hook
        for signum, prev in installed.items():
            signal.signal(signum, prev)
