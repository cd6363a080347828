"""The fixtures the plugin provides to benches (registered by plugin/hooks.py).

    profile          the engine Profile of this instance (benches asking for it are parametrized over profiles)
    bench_budget     the BudgetSpec that instance is held to (machine class, budget scale applied)
    bench_warmup     session-scoped: corpus, embedder and index loaded outside any timed run (a Warmup)
    research_bench   a BenchRunner: .run(question, ...) runs the real engine with rounds, timeouts, isolation
                     and memray, judges and stores every run; .record(telemetry, ...) stores telemetry a bench
                     produced itself (with extra metrics) and judges it the same way
    record_result    research_bench.record, as a fixture of its own
    research_runner  "module:function" the runs call (default "engine:research"); a unit test may override it
                     with a test double, and every record names the runner it came from
    bench_context    session-scoped BenchContext (options, profiles, git/machine facts, records written)
"""
from __future__ import annotations

from typing import Any

import pytest

from .. import DEFAULT_QUESTION
from ..report import junit
from ..report.terminal import failure_text
from ..run import request as S
from ..run.bench import BenchCore, BenchResult, RunResult
from ..run.context import BenchContext
from ..run.timeouts import STARTUP_TIMEOUT_S, is_timeout, widened
from ..run.verdicts import BudgetSpec, Verdict
from ..run.warmup import Warmup, warm_up
from .options import OptionError, marker_overrides
from .timer import timer_of

CONTEXT_KEY = pytest.StashKey[BenchContext]()


def context_of(config: pytest.Config) -> BenchContext:
    return config.stash[CONTEXT_KEY]


class BenchRunner:
    """What the `research_bench` fixture gives a bench. Every run stores one record; `check=True` (default)
    fails the test with the verdict's messages when a measured run misses its target."""

    def __init__(self, request: pytest.FixtureRequest, ctx: BenchContext, runner: str):
        self.request = request
        try:    # a bench's own @pytest.mark.research(...) wins over the command line and the ini file
            overrides = marker_overrides(request.node.get_closest_marker("research"), request.node.nodeid)
        except OptionError as e:
            raise pytest.UsageError(str(e)) from None
        self.ctx = ctx.with_options(**overrides)
        self.runner = runner
        self.core = BenchCore(self.ctx, request.node.nodeid)
        _ = ctx.git, ctx.machine        # looked up now (fixture set-up), not inside a bench's timed code

    @property
    def profile(self) -> Any:
        """This instance's Profile (None for a bench that is not parametrized over profiles)."""
        cs = getattr(self.request.node, "callspec", None)
        name = cs.params.get("profile") if cs else None
        return self.ctx.profile(name) if name else None

    @property
    def budget(self) -> BudgetSpec | None:
        return self.ctx.budget(self.profile) if self.profile is not None else None

    def _profile(self, profile: Any) -> Any:
        prof = profile if profile is not None else self.profile
        if prof is None:
            raise pytest.UsageError(f"{self.request.node.nodeid}: no profile: ask for the `profile` fixture, mark "
                                    f"the bench with @pytest.mark.profiles(...), or pass profile=")
        return self.ctx.profile(prof)

    def warmup(self) -> Warmup:
        with widened(timer_of(self.request.node), STARTUP_TIMEOUT_S):
            return self.request.getfixturevalue("bench_warmup")

    def run(self, question: str = DEFAULT_QUESTION, *, profile: Any = None, backend: str | None = None,
            corpus: Any = None, rounds: int | None = None, warmup_runs: int | None = None,
            isolate: bool | None = None, early_exit: bool = True, retrieval: bool = True,
            store_text: bool = False, timeout_s: float | None = None, extra: dict | None = None,
            bench: str | None = None, check: bool = True, gate: bool = True, **research_kwargs: Any) -> BenchResult:
        """Run the real engine on `question` (`rounds` measured runs after `warmup_runs` warm-ups, in this
        process or isolated with `isolate`), judge and store each run.

        corpus: a path (or a Corpus object, in-process only); default: the session warm-up's corpus.
        timeout_s: per-run timeout (default: the profile's timeout_s, times the budget scale when above 1).
        extra: stored in each record's `extra` (e.g. {"variant": "no-early-exit"}).
        gate: False stores and shows the verdict without letting it fail the session (ablations).
        research_kwargs: passed to engine.research (e.g. model=...)."""
        prof = self._profile(profile)
        warm = self.warmup()
        if corpus is None:              # the warm-up's corpus (an isolated child loads it again by path)
            isolated = self.ctx.options.isolate if isolate is None else isolate
            corpus_obj, corpus_path = (None if isolated else warm.corpus), warm.corpus_path
        elif isinstance(corpus, (str, bytes)) or hasattr(corpus, "__fspath__"):
            corpus_obj, corpus_path = None, str(corpus)
        else:
            corpus_obj, corpus_path = corpus, None
        req = S.RunRequest(question=question, profile=prof, backend=backend or self.ctx.options.backend,
                           corpus=corpus_obj, corpus_path=corpus_path, early_exit=early_exit, retrieval=retrieval,
                           store_text=store_text, system_info=warm.system_info, research_kwargs=research_kwargs,
                           runner=self.runner,
                           timeout_s=self.ctx.timeout_for(prof) if timeout_s is None else timeout_s)
        ext = {"warmup_s": round(warm.seconds, 3), "index_cache_hit_at_warmup": warm.index_cache_hit,
               **(extra or {})}
        core = self.core if bench is None else BenchCore(self.ctx, self.core.test_id, bench=bench)
        result = core.run(req, rounds=rounds, warmup_runs=warmup_runs, isolate=isolate, extra=ext, gate=gate,
                          timer=timer_of(self.request.node))
        self.request.node.user_properties.extend(junit.properties(result))
        if check and result.fails:
            pytest.fail(failure_text(core.bench, result), pytrace=False)
        return result

    def record(self, telemetry: dict | None = None, *, profile: Any = None, exc: BaseException | None = None,
               extra: dict | None = None, bench: str | None = None, round: int = 0, warmup: bool = False,
               check: bool = True, gate: bool = True) -> Verdict:
        """Store telemetry this bench produced with engine.research itself, judged like a harness run.

        exc: instead of telemetry, the exception a run raised (ResearchFailed, or one carrying
        `research_telemetry`): its partial telemetry is stored as a failed (or timed-out) run.
        extra: stored in the record's `extra`, e.g. {"quality": {...}} or {"breakdown": {...}}."""
        prof = self._profile(profile)
        outcome = None
        if exc is not None:
            tel = getattr(exc, "telemetry", None) or getattr(exc, "research_telemetry", None)
            status = S.TIMED_OUT if (is_timeout(exc) or (tel or {}).get("timed_out")) else S.FAILED
            outcome = S.RunOutcome(status, tel, error=f"{type(exc).__name__}: {exc}")
            telemetry = tel
        core = self.core if bench is None else BenchCore(self.ctx, self.core.test_id, bench=bench)
        rr = core.judge_and_store(telemetry, profile=prof, outcome=outcome, round=round, warmup=warmup,
                                  extra={"runner": "bench-supplied telemetry", **(extra or {})}, gate=gate,
                                  instance_runs=None if warmup else [])
        result = BenchResult(prof.name, self.ctx.budget(prof), [rr], unverified_policy=self.ctx.options.unverified)
        self.request.node.user_properties.extend(junit.properties(result))
        if check and not warmup and result.fails:
            pytest.fail(failure_text(core.bench, result), pytrace=False)
        return rr.verdict


@pytest.fixture(scope="session")
def bench_context(request: pytest.FixtureRequest) -> BenchContext:
    return context_of(request.config)


@pytest.fixture
def profile(request: pytest.FixtureRequest, bench_context: BenchContext) -> Any:
    name = getattr(request, "param", None)
    if name is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the `profile` fixture is only available to benches the "
                                f"plugin parametrizes")
    return bench_context.profile(name)


@pytest.fixture
def bench_budget(profile: Any, bench_context: BenchContext) -> BudgetSpec:
    return bench_context.budget(profile)


@pytest.fixture(scope="session")
def bench_warmup(bench_context: BenchContext) -> Warmup:
    return warm_up(bench_context.options.corpus, backend=bench_context.options.backend)


@pytest.fixture
def research_runner() -> str:
    return S.DEFAULT_RUNNER


@pytest.fixture
def research_bench(request: pytest.FixtureRequest, bench_context: BenchContext, research_runner: str) -> BenchRunner:
    return BenchRunner(request, bench_context, research_runner)


@pytest.fixture
def record_result(research_bench: BenchRunner):
    return research_bench.record


__all__ = ["BenchRunner", "BenchResult", "RunResult", "Warmup", "bench_context", "profile", "bench_budget",
           "bench_warmup", "research_runner", "research_bench", "record_result", "CONTEXT_KEY", "context_of"]
