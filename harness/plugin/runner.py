"""What a running bench sees: BenchRunner, the `research_bench` fixture (imported on first use, so the engine loads
only in sessions that run benches; .run() runs, judges and stores the engine's runs, .record() a bench's own), and
live progress on the terminal (pytest's terminal reporter, capture suspended): in a TTY one status line per bench,
redrawn in place and left standing; piped, one line per verdict and re-measurement; nothing under -q or on workers."""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Iterator

import pytest

from llm_research_bench.engine.deadline import RunTimeout

from .. import DEFAULT_QUESTION
from ..report import junit
from ..report.layout import width, wrap
from ..report.terminal import failure_text
from ..run.bench import BenchResult, InstanceRunner, RunPlan
from ..run.context import BenchContext
from ..run.timeouts import STARTUP_TIMEOUT_S, widened
from ..run.verdicts import BudgetSpec, Verdict
from ..run.request import FAILED, TIMED_OUT, RunOutcome, RunRequest
from ..run.warmup import Warmup
from ..units import num, seconds
from .timer import TIMER_KEY
from .options import OptionError, marker_overrides

HEARTBEAT_S = 30.0      # off a TTY: during the warm-up's embedding, at most one status line per this many seconds
REDRAW_S = 0.25         # in a TTY: redraw the status line at most this often
PREFIX = "[research-bench]"
#: The session warm-up's index stages with a line of their own (the embedding stage shows its progress).
INDEX_STAGES = {"cached": "index loaded from the cache ({total:,} passages)",
                "hnsw": "index build: HNSW graph of {total:,} passages built",
                "saved": "index build: saved to the cache"}


class LiveProgress:
    """The session's progress display (one per pytest config)."""

    def __init__(self, config: pytest.Config):
        self.tr, self.capman = map(config.pluginmanager.get_plugin, ("terminalreporter", "capturemanager"))
        self.enabled = self.tr is not None and config.get_verbosity() >= 0 and not hasattr(config, "workerinput")
        self.tty = bool(getattr(self.tr, "isatty", False))
        self._dangling = False          # a redrawn status line without its newline yet
        self._last_status = 0.0         # when a line was written or a status redrawn
        self._shown = ""                # the status line drawn last (cut to the terminal's width)

    def _suspended(self):
        return self.capman.global_and_fixture_disabled() if self.capman is not None else contextlib.nullcontext()

    def line(self, text: str) -> None:
        """A durable line, wrapped to the terminal's width."""
        if not self.enabled:
            return
        text = "\n".join(wrap(f"{PREFIX} {text}", width(), indent="    "))
        with self._suspended():
            if self._dangling:
                self.tr.rewrite(text, erase=True)
                self.tr.write("\n", flush=True)
                self._dangling = False
            else:
                self.tr.write_line(text, flush=True)
        self._last_status = time.monotonic()

    def status(self, text: str, *, force: bool = False, heartbeat: bool = False) -> None:
        """Redrawn in place in a TTY; elsewhere nothing, or with `heartbeat` a line at most every HEARTBEAT_S."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_status < REDRAW_S:
                return
            with self._suspended():
                if not self._dangling:
                    self.tr.ensure_newline()
                self.tr.rewrite(f"{PREFIX} {text}"[:width() - 1], erase=True)    # one line, never wrapped
                self._dangling, self._shown = True, text
            self._last_status = now
        elif heartbeat and now - self._last_status >= HEARTBEAT_S:
            self.line(text)

    def live(self, text: str) -> None:
        """A bench's live line: the status line in a TTY (redrawn now), a plain line elsewhere."""
        if self.tty:
            self.status(text, force=True)
        else:
            self.line(text)

    def end(self) -> None:
        """A bench ended: its last status line, in a TTY, stays, whole (wrapped where the status was cut)."""
        if self.enabled and self.tty and self._dangling:
            self.line(self._shown)

    def warmup_event(self, ev: dict) -> None:
        stage, done, total = ev.get("stage"), ev.get("done") or 0, ev.get("total") or 0
        if ev.get("event") == "warmup":
            self.status(f"warm-up: {ev.get('step')}", force=True)
        elif ev.get("event") == "index" and stage == "embed":
            self.status(f"warm-up: index build: embedded {done:,}/{total:,} passages ({done / max(1, total):.0%})",
                        heartbeat=True)
        elif ev.get("event") == "index" and stage in INDEX_STAGES:
            self.line("warm-up: " + INDEX_STAGES[stage].format(total=total))


def other_load(cores: float | None) -> str:
    """Other processes' CPU use in words: '99 % of a core', '1.3 cores'."""
    if cores is None:
        return "other processes busy"
    return f"other processes {cores * 100:.0f} % of a core" if cores < 1 else f"other processes {cores:.1f} cores"


class _RunProgress:
    """One round's progress: 'pipeline[quick] round 2/3 | streaming batch 1 | 14.2 tok/s | 8.3 s / 30 s budget';
    a re-measurement (event 'attempt') says so and starts its own clock and rate."""

    def __init__(self, out: LiveProgress, label: str, budget_s: float | None):
        self.out, self.round_label, self.label, self.budget_s = out, label, label, budget_s
        self._reset()

    def _reset(self) -> None:
        self.t0 = self.chunk_t0 = time.monotonic()
        self.started, self.phase, self.chunks = False, "starting", 0
        self.batch: int | None = None
        self.tps: float | None = None

    def _text(self, what: str) -> str:
        budget = f" / {num(self.budget_s, 's')} budget" if self.budget_s else ""
        tps = f" | {num(self.tps, 'tok/s')}" if self.tps else ""
        return f"{self.label} | {what}{tps} | {seconds(time.monotonic() - self.t0)} s{budget}"

    def _where(self) -> str:
        return self.phase + (f" batch {self.batch}" if self.batch is not None else "")

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind in ("warmup", "index"):            # an isolated child warming up
            self.out.warmup_event(ev)
        elif kind == "phase":
            if not self.started:                   # the engine's clock starts here
                self.started, self.t0 = True, time.monotonic()
            self.phase, self.batch = ev.get("phase") or self.phase, ev.get("batch")
            self.chunks, self.chunk_t0 = 0, time.monotonic()
            self.out.status(self._text(self._where()), force=True)
        elif kind == "retrieved":
            self.out.status(self._text(f"retrieved {ev.get('hits')} passages"))
        elif kind == "batch":
            gate = "" if ev.get("admitted", True) else " -> below the novelty threshold, stopping"
            self.out.status(self._text(f"batch {ev.get('batch')}: {ev.get('size')} passages, novelty "
                                       f"{num(ev.get('novelty'), 'ratio')}{gate}"))
        elif kind == "batch_done":
            self.tps = ev.get("decode_tps") or self.tps
            self.out.status(self._text(f"batch {ev.get('batch')} done: {ev.get('claims')} claims, "
                                       f"{ev.get('tokens')} tokens"))
        elif kind == "tokens":
            first, self.chunks = self.chunks == 0, ev.get("count") or self.chunks + 1
            if first:                              # the rate counts from the first token: prompt eval apart
                self.chunk_t0 = time.monotonic()
            dt = time.monotonic() - self.chunk_t0
            rate = f" ({num((self.chunks - 1) / dt, 'tok/s')})" if dt > 0.5 and self.chunks > 1 else ""
            self.out.status(self._text(f"{self._where()}, {self.chunks} tokens streamed{rate}"))
        elif kind == "attempt":                    # a re-measurement (run/bench.py): its own clock and rate
            self.label = f"{self.round_label} attempt {ev.get('number')}/{ev.get('of')}"
            self._reset()
            self.out.live(f"{self.label} - busy machine ({other_load(ev.get('other_cores'))}), waiting up to "
                          f"{ev.get('wait_s'):g} s")
        elif kind == "verdict":                    # piped, an attempt measured again is said by the next one's line
            (self.out.status if ev.get("again") else self.out.live)(self._verdict(ev))

    def _verdict(self, ev: dict) -> str:
        t, rate = ev.get("execution_time_s"), ev.get("decode_tps")
        tps = f", {num(rate, 'tok/s')}" if rate else ""
        if ev.get("again"):
            how = f"timed on a busy machine ({other_load(ev.get('other_cores'))}): measuring again"
        else:
            how = ("target met" if ev.get("target_met")
                   else "; ".join(m.splitlines()[0] for m in ev.get("messages") or []) or "target missed")
            how += "; timed on a busy machine" if ev.get("contended") else ""
        took = f" in {num(t, 's')}" if t is not None else ""
        return f"{self.label} | {ev.get('status')}{took}{tps}: {how}"


PROGRESS_KEY = pytest.StashKey[LiveProgress]()


def reporter(config: pytest.Config) -> LiveProgress:
    """The config's progress display (made on first use)."""
    if PROGRESS_KEY not in config.stash:
        config.stash[PROGRESS_KEY] = LiveProgress(config)
    return config.stash[PROGRESS_KEY]


@contextlib.contextmanager
def failing_on_user_errors(what: str) -> Iterator[None]:
    """A user's error (engine.errors.USER_ERRORS, BenchError) fails the test with one line naming the fix."""
    from llm_research_bench.engine.errors import USER_ERRORS

    from ..run.bench import BenchError
    try:
        yield
    except (*USER_ERRORS, BenchError) as e:     # pytest.fail's exception, without the error it replaces
        raise pytest.fail.Exception(f"{what}: {' '.join(str(e).split()) or type(e).__name__}", pytrace=False) from None


#: pytest-memray's markers: a test carrying one is tracked by pytest-memray even without --memray.
PYTEST_MEMRAY_MARKERS = ("limit_memory", "limit_leaks", "limit_leaked_objects")
#: The knobs of `BenchRunner.run` that make its RunPlan; the others describe the run.
PLAN_KNOBS = ("rounds", "warmup_runs", "isolate", "gate", "extra", "bench")


def pytest_memray_capture(item: Any) -> dict | None:
    """Where pytest-memray records this test's allocations when it tracks it (--memray, its ini key, or one of
    its markers), else None: memray allows one Tracker at a time, so in-process runs then use this capture."""
    config = item.config
    mgr = config.pluginmanager.get_plugin("memray_manager")
    if mgr is None:
        return None
    try:
        on = bool(config.getoption("memray", None) or config.getini("memray"))
    except (ValueError, KeyError):
        on = False
    if not on and not any(m.name in PYTEST_MEMRAY_MARKERS for m in item.iter_markers()):
        return None
    folder = getattr(mgr, "result_path", None)
    out = {"by": "pytest-memray", "dir": str(folder) if folder else None,
           "capture": f"{folder} (pytest-memray's file for {item.nodeid}; kept with --memray-bin-path)"}
    with contextlib.suppress(Exception):  # pytest-memray names the file after the test with --memray-bin-path
        from pytest_memray.plugin import _truncate_filename
        if getattr(mgr, "_tmp_dir", 1) is None and not os.getenv("MEMRAY_RESULT_PATH"):
            of_id = item.nodeid.replace("::", "-").replace(os.sep, "-")
            out["capture"] = str(folder / _truncate_filename(f"{mgr._bin_prefix}-{of_id}.bin"))
    return out


class BenchRunner:
    """What the `research_bench` fixture gives a bench. Every run stores one record; `check=True` (default)
    fails the test with the verdict's messages when a measured run misses its target."""

    def __init__(self, request: pytest.FixtureRequest, ctx: BenchContext, runner: str):
        self.request, self.runner, node = request, runner, request.node
        try:    # a bench's own @pytest.mark.research(...) wins over the command line and the ini file
            self.ctx = ctx.with_options(**marker_overrides(node.get_closest_marker("research"), node.nodeid,
                                                           ctx.options))
        except OptionError as e:
            raise pytest.UsageError(str(e)) from None
        self.memray_external = pytest_memray_capture(node)
        _ = ctx.git, ctx.machine        # looked up now (fixture set-up), not inside a bench's timed code

    @property
    def profile(self) -> Any:
        """This instance's Profile (None for a bench that is not parametrized over profiles)."""
        cs = getattr(self.request.node, "callspec", None)
        name = cs.params.get("profile") if cs else None
        return self.ctx.profile(name) if name else None

    @property
    def timer(self) -> Any:
        return self.request.node.stash.get(TIMER_KEY, None)       # armed for the test call only

    @property
    def budget(self) -> BudgetSpec | None:
        return self.ctx.budget(self.profile) if self.profile is not None else None

    def _profile(self, profile: Any) -> Any:
        prof = profile if profile is not None else self.profile
        if prof is None:
            raise pytest.UsageError(f"{self.request.node.nodeid}: no profile: ask for the `profile` fixture, mark "
                                    f"the bench with @pytest.mark.profiles(...), or pass profile=")
        return self.ctx.profile(prof)

    def progress(self, text: str) -> None:
        """A live line on the terminal now (capture suspended; quiet under -q): a long bench saying where it is."""
        reporter(self.request.config).line(text)

    def warmup(self) -> Warmup:
        with widened(self.timer, STARTUP_TIMEOUT_S):
            return self.request.getfixturevalue("bench_warmup")

    def _core(self, bench: str | None) -> InstanceRunner:
        return InstanceRunner(self.ctx, self.request.node.nodeid, bench=bench, memray_external=self.memray_external)

    def run(self, question: str = DEFAULT_QUESTION, *, check: bool = True, **knobs: Any) -> BenchResult:
        """Run the engine on `question`, judge and store each run; `check`: fail the test on a miss. `knobs`: the
        RunPlan's (rounds, warmup_runs, isolate, gate, extra, bench), the run's (profile, backend, corpus: a path or
        an in-process Corpus, timeout_s) and engine.research's own (early_exit=False, ...), passed as they are."""
        plan = RunPlan(**{k: knobs.pop(k) for k in PLAN_KNOBS if k in knobs})
        isolate = self.ctx.options.isolate if plan.isolate is None else plan.isolate
        prof = self._profile(knobs.pop("profile", None))
        warm = self.warmup()
        req = self._request(question, prof, warm, isolate, knobs)
        plan.extra = {"warmup_s": round(warm.seconds, 3), "index_cache_hit_at_warmup": warm.index_cache_hit,
                      **plan.extra}
        core = self._core(plan.bench)
        out, budget_s = reporter(self.request.config), self.ctx.budget(prof).time_upper_s
        sink = (lambda i, total, warmup: _RunProgress(out, f"{core.bench}[{prof.name}] " + (
            f"warm-up {i + 1}" if warmup else f"round {i + 1}/{total}"), budget_s)) if out.enabled else None
        try:
            with failing_on_user_errors(core.bench):
                result = core.run(req, plan, timer=self.timer, progress=sink)
        finally:
            out.end()       # the bench's live line stays, its line ended
        self._report(core, result, check)
        return result

    def _request(self, question: str, prof: Any, warm: Warmup, isolate: bool, knobs: dict) -> RunRequest:
        """The run `knobs` ask for; what is left in them goes to the engine as it is."""
        corpus, path = knobs.pop("corpus", None), None
        if corpus is None:              # the warm-up's corpus (an isolated child loads it again by path)
            corpus, path = (None if isolate else warm.corpus), warm.corpus_path
        elif isinstance(corpus, (str, bytes)) or hasattr(corpus, "__fspath__"):
            corpus, path = None, str(corpus)
        timeout_s = knobs.pop("timeout_s", None)
        return RunRequest(question, prof, backend=knobs.pop("backend", None) or self.ctx.options.backend,
                          corpus=corpus, corpus_path=path, research_kwargs=knobs, runner=self.runner,
                          timeout_s=self.ctx.timeout_for(prof) if timeout_s is None else timeout_s,
                          system_info=warm.system_info)

    def _report(self, core: InstanceRunner, result: BenchResult, check: bool) -> None:
        self.request.node.user_properties.extend(junit.properties(result))
        if check and result.fails:
            pytest.fail(failure_text(core.bench, result), pytrace=False)

    def record(self, telemetry: dict | None = None, *, profile: Any = None, exc: BaseException | None = None,
               round: int = 0, warmup: bool = False, check: bool = True, **plan: Any) -> Verdict:
        """Store telemetry this bench produced itself, judged like a harness run; `exc`: instead, the exception a
        run raised, its partial telemetry stored as a failed (or timed-out) run; `plan`: extra, bench, gate."""
        prof = self._profile(profile)
        outcome = None
        if exc is not None:
            telemetry = getattr(exc, "telemetry", None) or getattr(exc, "research_telemetry", None)
            status = TIMED_OUT if (isinstance(exc, RunTimeout) or (telemetry or {}).get("timed_out")) else FAILED
            outcome = RunOutcome(status, telemetry, error=f"{type(exc).__name__}: {exc}")
        core = self._core(plan.pop("bench", None))
        rr = core.save(core.judge(telemetry, profile=prof, outcome=outcome, round=round, warmup=warmup,
                                  plan=RunPlan(**plan, runner="bench-supplied telemetry")),
                       None if warmup else [])
        result = BenchResult(prof.name, self.ctx.budget(prof), [rr], self.ctx.options.unverified, rr.instance)
        self._report(core, result, check and not warmup)
        return rr.verdict
