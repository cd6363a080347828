"""The plugin's pytest hooks (the `pytest11` entry point), each thin over plain code, acting on research benches
only (items.py): a session without benches runs as if the plugin were not installed. Light at import."""
from __future__ import annotations

import signal
from typing import Any

import pytest

from .fixtures import (STATE_KEY, bench_budget, bench_context, bench_warmup, context_of,  # noqa: F401
                       profile, record_result, research_bench, research_runner, state_of)
from .items import BENCH_KEY, add_timeouts, deselect_opt_in, is_bench, parametrize_profiles, wants_profiles
from .timer import pytest_timeout_cancel_timer, pytest_timeout_set_timer  # noqa: F401
from .options import MARKER_KEYS, OPTIONS, register as pytest_addoption  # noqa: F401

SUMMARY_KEY = pytest.StashKey[Any]()
#: The plugin's markers (profile markers are registered on first parametrization; the opt-in ones and `micro`
#: belong to the project's benches, which register them).
STATIC_MARKERS = (
    "profiles(*names): parametrize a research bench over these profiles only (default: every profile)",
    f"research(**options): this bench's own {', '.join(MARKER_KEYS)} (over the command line and the ini file)",
    "pipeline: research benches that run the whole pipeline (they get the profile's timeout_s)",
)
WORKER_RECORDS = "research_bench_records"


def pytest_configure(config: pytest.Config) -> None:
    for line in STATIC_MARKERS:
        config.addinivalue_line("markers", line)
    st = state_of(config)         # made here for every session, so later hooks always find it
    if config.get_verbosity() >= 2:   # -vv: llama.cpp's own log of in-process runs, as research-engine --verbose
        from llm_research_bench.engine.backends.llamacpp import show_native_log
        show_native_log(True)
        config.add_cleanup(lambda: show_native_log(False))
    if any(config.getoption(o.dest, None) not in (None, []) for o in OPTIONS):
        st.context()              # options given on the command line are checked now (a usage error, exit 4)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:   # xdist: workers share the controller's session id
    node.workerinput["research_bench_session"] = state_of(node.config).session_id


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:   # xdist: the records a worker wrote
    state_of(node.config).worker_records.extend((getattr(node, "workeroutput", None) or {}).get(WORKER_RECORDS) or ())


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not wants_profiles(metafunc):
        return
    try:
        ctx = context_of(metafunc.config)
    except pytest.UsageError:
        return                   # reported once, as a usage error, by the collection hook below
    parametrize_profiles(metafunc, ctx.options)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    mine = {i for i in items if is_bench(i)}
    if not mine:
        return
    for item in mine:
        item.stash[BENCH_KEY] = True
    st = state_of(config)
    ctx = st.context()           # a bad option or profiles file: one usage error, now that benches need them
    st.opt_in_note = deselect_opt_in(items, config, mine)      # long benches run only when asked for
    kept = [i for i in items if i in mine]
    st.bench_items = len(kept)
    if config.pluginmanager.hasplugin("timeout") and hasattr(signal, "SIGALRM"):
        add_timeouts(kept, ctx)


def pytest_report_collectionfinish(config: pytest.Config, items: list) -> list[str] | None:
    """The plugin's header, after 'collected N items', in sessions that run research benches only."""
    st = config.stash.get(STATE_KEY, None)
    if st is None or not (st.bench_items or st.opt_in_note):
        return None
    from ..report.layout import wrap_all
    return wrap_all((_header(st.context()) if st.bench_items else []) + ([st.opt_in_note] if st.opt_in_note else []))


def _header(ctx: Any) -> list[str]:
    """Where the runs go, the budgets, the profiles file; a warning when --research-compare-fail cannot fail."""
    o = ctx.options
    lines = [f"research-bench {ctx.plugin_version}: machine {ctx.machine.fingerprint}, commit {ctx.git.short}, "
             f"results -> {o.results_dir}" + (f", saved as '{o.save}'" if o.save else "")]
    if o.machine_class or o.budget_scale != 1:
        lines.append(f"research-bench budgets: class {o.machine_class or '(detected)'}, time x{o.budget_scale:g}")
    if o.profiles_file:
        lines.append(f"research-bench profiles file: {o.profiles_file}")
    from ..analysis.stats import can_decide, rounds_to_decide
    if o.compare_fail and not can_decide(o.rounds, o.rounds):
        lines += [f"research-bench: warning: with {o.rounds} round(s) a side the noise test cannot decide, so "
                  f"--research-compare-fail fails nothing", f"  (unless 3+ other commits of a bench's history stand "
                  f"in); --research-rounds {rounds_to_decide()} lets it decide"]
    return lines


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    st = state_of(config)
    if hasattr(config, "workerinput"):          # an xdist worker: hand its records over
        if st.ctx is not None and hasattr(config, "workeroutput"):
            config.workeroutput[WORKER_RECORDS] = [str(p) for p in st.ctx.record_paths]
    elif st.ctx is not None or st.worker_records:      # else no bench ran, no option asked: as if not installed
        from .session_end import finish
        s = config.stash[SUMMARY_KEY] = finish(st.context(), st.worker_records)
        if s.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(SUMMARY_KEY, None)
    if s is None or not s.records:
        return
    from ..report import terminal

    tr = terminalreporter
    tr.write_sep("=", "research bench summary")
    for kind, text in terminal.session_lines(s, context_of(config)):
        if kind in ("sep", "warn"):
            tr.write_sep("-", text, **{"red" if kind == "sep" else "yellow": True})
        else:
            tr.write_line(text, **({kind: True} if kind else {}))
