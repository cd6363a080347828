"""The fixtures the plugin gives benches (registered by hooks.py) and the session's BenchContext, built on first
need. Loaded in every pytest run, so anything heavy is imported inside the fixtures."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from .options import OptionError, parse_options, settings

if TYPE_CHECKING:
    from ..run.context import BenchContext


class PluginState:
    """What the plugin keeps per pytest config; the BenchContext is built on first need, so that a session without
    benches never loads profiles or calls git."""

    def __init__(self, config: pytest.Config):
        self.config = config
        wi = getattr(config, "workerinput", None) or {}         # an xdist worker: the controller's session id
        self.session_id: str = wi.get("research_bench_session") or uuid.uuid4().hex[:12]
        self.worker: str | None = wi.get("workerid")
        self.ctx: BenchContext | None = None
        self._error: str | None = None
        self.bench_items = 0                  # research benches collected in this process
        self.opt_in_note: str | None = None   # which opt-in benches this session left out
        self.worker_records: list[str] = []   # an xdist controller: record files its workers wrote

    def context(self) -> BenchContext:
        """The session's BenchContext; a bad option or profile file is one pytest.UsageError (exit status 4)."""
        if self.ctx is None and self._error is None:
            from ..run.context import BenchContext
            root = self.config.rootpath
            try:
                opts = parse_options(settings(self.config.getoption, self.config.getini), root)
            except OptionError as e:
                self._error = str(e)
            else:
                self.ctx = BenchContext(opts, root, session_id=self.session_id, worker=self.worker)
        if self._error is not None:
            raise pytest.UsageError(self._error)
        return self.ctx


STATE_KEY = pytest.StashKey[PluginState]()


def state_of(config: pytest.Config) -> PluginState:
    """The plugin's state of this config, made now for one it did not configure (e.g. pytester.parseconfig's)."""
    st = config.stash.get(STATE_KEY, None)
    if st is None:
        st = config.stash[STATE_KEY] = PluginState(config)
    return st


def context_of(config: pytest.Config) -> BenchContext:
    return state_of(config).context()


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
def bench_budget(profile: Any, bench_context: BenchContext) -> Any:
    return bench_context.budget(profile)


@pytest.fixture(scope="session")
def bench_warmup(request: pytest.FixtureRequest, bench_context: BenchContext) -> Any:
    from ..run.warmup import warm_up
    from .runner import failing_on_user_errors, reporter
    with failing_on_user_errors("bench warm-up"):     # e.g. a corpus that cannot be used
        return warm_up(bench_context.options.corpus, backend=bench_context.options.backend,
                       on_progress=reporter(request.config).warmup_event)


@pytest.fixture
def research_runner() -> str:
    from ..records import DEFAULT_RUNNER
    return DEFAULT_RUNNER


@pytest.fixture
def research_bench(request: pytest.FixtureRequest, bench_context: BenchContext, research_runner: str) -> Any:
    from .runner import BenchRunner
    return BenchRunner(request, bench_context, research_runner)


@pytest.fixture
def record_result(research_bench: Any):
    return research_bench.record

