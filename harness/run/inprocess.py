"""One run in this process: call the engine (or a test double of it) with the request, under the run's
deadline and, when asked, memray; never raises for what happens to the run: the RunOutcome says it."""
from __future__ import annotations

import time

from llm_research_bench.engine.deadline import RunTimeout, stopping_signals

from .memray_capture import tracker
from .progress import engine_listener
from .request import (COMPLETED, ERROR, FAILED, INTERRUPTED, TIMED_OUT, RunOutcome, RunRequest, first_line,
                      resolve_runner)
from .timeouts import HarnessTimeout, SignalTimer, run_deadline


def run_in_process(req: RunRequest, *, timer: SignalTimer | None = None) -> RunOutcome:
    """Run `req` here; `timer`: the bench item's timer (taken over from pytest-timeout)."""
    from llm_research_bench.engine.pipeline import ResearchFailed

    fn = resolve_runner(req.runner)
    kwargs = req.engine_kwargs()
    if req.on_progress is not None and "on_event" not in kwargs:
        kwargs["on_event"] = engine_listener(req.on_progress)
    via: str | None = None
    t0 = time.perf_counter()
    try:
        with stopping_signals(), run_deadline(req.effective_timeout, timer=timer) as via, tracker(req.memray_file):
            sess = fn(req.question, **kwargs)
        return RunOutcome(COMPLETED, sess.telemetry, wall_s=time.perf_counter() - t0, session=sess,
                          memray_file=req.memray_file, timeout_via=via)
    except ResearchFailed as e:
        timed_out = bool((e.telemetry or {}).get("timed_out"))
        return RunOutcome(TIMED_OUT if timed_out else FAILED, e.telemetry, error=first_line(e.__cause__ or e),
                          wall_s=time.perf_counter() - t0, memray_file=req.memray_file,
                          timeout_via=(via or "engine") if timed_out else None)
    except BaseException as e:   # noqa: B036 -- recorded, then re-raised by the caller
        tel = getattr(e, "research_telemetry", None)
        if isinstance(e, HarnessTimeout):
            status, via = TIMED_OUT, via or "harness"
        elif isinstance(e, RunTimeout):     # the engine's own deadline (the profile's timeout_s) stopped the run
            status, via = TIMED_OUT, "engine"
        else:
            status = (ERROR if tel is None else FAILED) if isinstance(e, Exception) else INTERRUPTED
        return RunOutcome(status, tel, error=first_line(e), wall_s=time.perf_counter() - t0,
                          memray_file=req.memray_file, timeout_via=via, exception=e)
