"""The plugin's pytest hooks (the `pytest11` entry point), each thin over plain code, acting on research benches
only (items.py): a session without benches runs as if the plugin were not installed. Light at import."""
from __future__ import annotations

import signal
from typing import Any

import pytest

from . import parametrize, selection, timer
from .fixtures import (STATE_KEY, bench_budget, bench_context, bench_warmup, context_of,  # noqa: F401
                       profile, record_result, research_bench, research_runner, state_of)
from .items import is_bench
from .options import MARKER_KEYS, OPTIONS, register as pytest_addoption  # noqa: F401
from .timer import pytest_timeout_cancel_timer, pytest_timeout_set_timer  # noqa: F401

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
    paths = (getattr(node, "workeroutput", None) or {}).get(WORKER_RECORDS)
    if paths:
        state_of(node.config).worker_records.extend(paths)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not parametrize.wants_profiles(metafunc):
        return
    try:
        ctx = context_of(metafunc.config)
    except pytest.UsageError:
        return                   # reported once, as a usage error, by the collection hook below
    parametrize.parametrize_profiles(metafunc, ctx.options)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    mine = [i for i in items if is_bench(i)]
    if not mine:
        return
    for item in mine:
        item.stash[timer.BENCH_KEY] = True
    st = state_of(config)
    ctx = st.context()           # a bad option or profiles file: one usage error, now that benches need them
    marked = lambda i: i.stash.get(timer.BENCH_KEY, False)    # noqa: E731
    st.opt_in_note = selection.opt_in_note({      # long benches run only when asked for
        m: len(selection.deselect_unless_requested(items, config, m, among=marked))
        for m in selection.OPT_IN_MARKERS})
    kept = [i for i in items if marked(i)]
    st.bench_items = len(kept)
    if config.pluginmanager.hasplugin("timeout") and hasattr(signal, "SIGALRM"):
        parametrize.add_timeouts(kept, ctx)


def pytest_report_collectionfinish(config: pytest.Config, items: list) -> list[str] | None:
    """The plugin's header, after 'collected N items', in sessions that run research benches only."""
    st = config.stash.get(STATE_KEY, None)
    if st is None or not (st.bench_items or st.opt_in_note):
        return None
    lines = []
    if st.bench_items:
        ctx = st.context()
        o = ctx.options
        lines.append(f"research-bench {ctx.plugin_version}: machine {ctx.machine.fingerprint}, commit "
                     f"{ctx.git.short}, results -> {o.results_dir}" + (f", saved as '{o.save}'" if o.save else ""))
        if o.machine_class or o.budget_scale != 1:
            lines.append(f"research-bench budgets: class {o.machine_class or '(detected)'}, time x{o.budget_scale:g}")
        if o.profiles_file:
            lines.append(f"research-bench profiles file: {o.profiles_file}")
        lines += _undecidable_gate(o)
    from ..report.layout import wrap_all
    return wrap_all(lines + ([st.opt_in_note] if st.opt_in_note else []))


def _undecidable_gate(o) -> list[str]:
    """A warning when --research-compare-fail cannot fail with the session's rounds: say so before any run."""
    from ..analysis.stats import can_decide, rounds_to_decide
    if not o.compare_fail or can_decide(o.rounds, o.rounds):
        return []
    return [f"research-bench: warning: with {o.rounds} round(s) a side the noise test cannot decide, so "
            f"--research-compare-fail fails nothing", f"  (unless 3+ other commits of a bench's history stand in); "
            f"--research-rounds {rounds_to_decide()} lets it decide"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    st = state_of(config)
    if getattr(config, "workerinput", None) is not None:          # an xdist worker: hand its records over
        if st.built and hasattr(config, "workeroutput"):
            config.workeroutput[WORKER_RECORDS] = [str(p) for p in st.context().record_paths]
        return
    if not (st.built or st.worker_records):
        return                   # no bench ran and no option asked for anything: as if not installed
    import os

    from llm_research_bench.engine.atomic import write_json

    from ..report import document, terminal
    from . import session_end

    ctx = st.context()
    s = session_end.finish(ctx, st.worker_records)
    if s.records:
        config.stash[SUMMARY_KEY] = s
    if s.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if ctx.options.summary_md is not None or (s.records and os.environ.get("GITHUB_STEP_SUMMARY")):
        terminal.write_markdown(s, ctx, ctx.options.summary_md)
    if ctx.options.json_path is not None:
        write_json(ctx.options.json_path, document.session_document(s, session_end.session_head(ctx)), indent=1,
                   default=str)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(SUMMARY_KEY, None)
    if s is None:
        return
    from ..report import terminal

    tr = terminalreporter
    tr.write_sep("=", "research bench summary")
    for kind, text in terminal.session_lines(s, context_of(config)):
        if kind in ("sep", "warn"):
            tr.write_sep("-", text, **{"red" if kind == "sep" else "yellow": True})
        else:
            tr.write_line(text, **({kind: True} if kind else {}))
