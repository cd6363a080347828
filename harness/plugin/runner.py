"""BenchRunner, what the `research_bench` fixture gives a bench (imported on first use, so the engine loads only in
sessions that run benches): .run() runs, judges and stores the engine's runs; .record() stores a bench's own."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import pytest

from llm_research_bench.engine.deadline import RunTimeout

from .. import DEFAULT_QUESTION
from ..report import junit
from ..report.terminal import failure_text
from ..run.bench import BenchResult, InstanceRunner, RunPlan
from ..run.context import BenchContext
from ..run.timeouts import STARTUP_TIMEOUT_S, widened
from ..run.verdicts import BudgetSpec, Verdict
from ..run.request import FAILED, TIMED_OUT, RunOutcome, RunRequest
from ..run.warmup import Warmup
from .options import OptionError, marker_overrides
from .items import TIMER_KEY
from .progress import reporter, run_progress


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
        sink = run_progress(self.request.config, core.bench, prof.name, self.ctx.budget(prof).time_upper_s)
        try:
            with failing_on_user_errors(core.bench):
                result = core.run(req, plan, timer=self.timer, progress=sink)
        finally:
            reporter(self.request.config).end()       # the bench's live line stays, its line ended
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
