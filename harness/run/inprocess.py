"""One run in this process: call the engine (or a test double of it) with the request, under the run's deadline and,
when asked, memray; live progress goes to the request's callback as small dicts (plugin/runner.py shows them).
Never raises for what happens to the run: the RunOutcome says it."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

from llm_research_bench.engine.deadline import RunTimeout, stopping_signals

from .request import (COMPLETED, ERROR, FAILED, INTERRUPTED, TIMED_OUT, RunOutcome, RunRequest, first_line,
                      resolve_runner)
from .timeouts import HarnessTimeout, SignalTimer, run_deadline

#: The engine event's keys each plain progress dict keeps.
EVENT_KEYS = {"phase": ("phase", "batch"), "retrieved": ("hits", "cache_hit"),
              "batch": ("batch", "size", "novelty", "admitted")}


def decode_rate(call: Any) -> float | None:
    """Tokens per second of one generation call (engine.runlog.CallRecord)."""
    if call.native_decode_tokens and call.native_decode_s:
        return call.native_decode_tokens / call.native_decode_s
    n, e2e, ttft = call.tokens_generated, call.e2e_s, call.ttft_s or 0.0
    return (n - 1) / (e2e - ttft) if n > 1 and e2e > ttft else None


def engine_listener(sink: Callable[[dict], None]) -> Callable[[str, dict], None]:
    """An `on_event` for engine.research feeding `sink` progress dicts: phase, retrieved, batch, batch_done (with
    decode_tps) and tokens (the answer chunks counted per phase)."""
    count = 0

    def on_event(kind: str, data: dict) -> None:
        nonlocal count
        if kind in EVENT_KEYS:
            ev = {"event": kind, **{k: data.get(k) for k in EVENT_KEYS[kind]}}
            count = 0 if kind == "phase" else count
        elif kind == "batch_done":
            call = data.get("call")
            ev = {"event": kind, "batch": data.get("batch"), "claims": data.get("claims"),
                  "tokens": getattr(call, "tokens_generated", None),
                  "decode_tps": decode_rate(call) if call is not None else None}
        elif kind == "answer_delta":
            count += 1
            ev = {"event": "tokens", "count": count}
        else:
            return
        with contextlib.suppress(Exception):      # a display problem never breaks a measured run
            sink(ev)

    return on_event


def tracker(path: str | None):
    """A memray.Tracker writing to `path` (a no-op context without a path)."""
    if not path:
        return contextlib.nullcontext()
    import memray
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).unlink(missing_ok=True)
    return memray.Tracker(path)


def _where(record: Any) -> str:
    """'fn (file:line) <- caller (file:line)', files under this folder or site-packages shortened."""
    try:
        stack = record.stack_trace(max_stacks=2)
    except Exception:
        stack = []
    cut = (str(Path.cwd()) + "/", "site-packages/")
    return " <- ".join(f"{fn} ({next((file.split(c, 1)[1] for c in cut if c in file), file)}:{line})"
                       for fn, file, line in stack) or "(no Python frame)"


def top_allocators(path: str, n: int = 5) -> list[str]:
    """The largest allocation sites live at a memray capture's high-water mark, one line each (shown when a run goes
    over its memory limit)."""
    import memray
    try:
        reader = memray.FileReader(str(path))
    except Exception as e:   # a capture cut short by a crash cannot always be read
        return [f"(memray capture {path} unreadable: {type(e).__name__}: {e})"]
    try:
        recs = sorted(reader.get_high_watermark_allocation_records(merge_threads=True), key=lambda r: r.size,
                      reverse=True)[:n]
        return [f"{r.size / 2**20:8.1f} MB in {r.n_allocations} allocation(s): {_where(r)}" for r in recs]
    finally:
        reader.close()


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
