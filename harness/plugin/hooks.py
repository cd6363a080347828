"""The research-bench pytest plugin's hooks (the `pytest11` entry point): thin, each delegating to plain code.

Inert where unused: this module and what it imports at load time are light (pytest and the standard library
only; no engine, numpy or psutil), and every hook acts on research benches only (plugin/items.py says which
tests those are). A session that collects none behaves as if the plugin were not installed: no
parametrization, deselection, timeout, header, git call, results scan or summary. The options are parsed
when first needed (a bench, or a --research-* option on the command line); every hook also copes with a
config the plugin never configured (e.g. one made by pytester.parseconfig).

    items.py        which tests are research benches (the one rule)
    options.py      the options (+ checks) -> HarnessOptions; fixtures.py keeps the lazily built BenchContext
    parametrize.py  profiles as parameters; pipeline benches' timeouts
    selection.py    opt-in benches (quality, breakdown, efficiency, memory_pressure) run only when asked for
    fixtures.py     profile, bench_budget, bench_warmup, research_bench, record_result, research_runner
    runner.py       BenchRunner (what research_bench is), loaded on a bench's first use
    progress.py     live progress lines through the terminal reporter
    timer.py        pytest-timeout's timer, taken over for bench items through its hooks
    session_end.py  the session's end: CI gate, baseline comparison (printed by report/terminal, markdown)
"""
from __future__ import annotations

import signal
from typing import Any

import pytest

from . import items as I
from . import parametrize, selection, timer
from .fixtures import (STATE_KEY, bench_budget, bench_context, bench_warmup, context_of,  # noqa: F401
                       profile, record_result, research_bench, research_runner, state_of)
from .options import OPTIONS, register

SUMMARY_KEY = pytest.StashKey[Any]()
#: Markers with a meaning to the plugin (on research benches). Profile markers are registered when the plugin
#: first parametrizes a bench; the opt-in markers (selection.OPT_IN_MARKERS) and `micro` belong to the
#: project's benches, which register them (this repository's pyproject.toml and benches/conftest.py do).
STATIC_MARKERS = (
    "profiles(*names): parametrize a research bench over these profiles only (default: every profile)",
    "research(**options): this bench's own rounds, warmup_runs, isolate, enforce_memory, memray, backend, corpus or "
    "budget_scale (over the command line and the ini file)",
    "pipeline: research benches that run the whole pipeline (they get the profile's timeout_s)",
)
WORKER_RECORDS = "research_bench_records"


def pytest_addoption(parser: pytest.Parser) -> None:
    register(parser)


def _cli_given(config: pytest.Config) -> bool:
    for o in OPTIONS:
        v = config.getoption(o.dest, None)
        if v is not None and v != []:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    for line in STATIC_MARKERS:
        config.addinivalue_line("markers", line)
    st = state_of(config)
    if _cli_given(config):        # options given on the command line are checked now (a usage error, exit 4)
        st.context()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:   # xdist: workers share the controller's session id
    st = node.config.stash.get(STATE_KEY, None)
    if st is not None:
        node.workerinput["research_bench_session"] = st.session_id


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
    mine = I.bench_items(items)
    if not mine:
        return
    for item in mine:
        item.stash[timer.BENCH_KEY] = True
    st = state_of(config)
    ctx = st.context()           # a bad option or profiles file: one usage error, now that benches need them
    dropped = {}
    for opt_in in selection.OPT_IN_MARKERS:                     # long benches run only when asked for
        dropped[opt_in] = len(selection.deselect_unless_requested(
            items, config, opt_in, among=lambda i: i.stash.get(timer.BENCH_KEY, False)))
    st.opt_in_note = selection.opt_in_note(dropped)
    kept = [i for i in items if i.stash.get(timer.BENCH_KEY, False)]
    st.bench_items = len(kept)
    if config.pluginmanager.hasplugin("timeout") and hasattr(signal, "SIGALRM"):
        parametrize.add_timeouts(kept, ctx)


def pytest_report_collectionfinish(config: pytest.Config, items: list) -> list[str] | None:
    """The plugin's header, after 'collected N items', in sessions that run research benches only."""
    st = config.stash.get(STATE_KEY, None)
    if st is None or not (st.bench_items or getattr(st, "opt_in_note", None)):
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
    if getattr(st, "opt_in_note", None):
        lines.append(st.opt_in_note)
    return lines


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    return timer.set_timer(item, settings)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item):
    return timer.cancel_timer(item)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    st = config.stash.get(STATE_KEY, None)
    if st is None:
        return
    if getattr(config, "workerinput", None) is not None:          # an xdist worker: hand its records over
        if st.built and hasattr(config, "workeroutput"):
            config.workeroutput[WORKER_RECORDS] = [str(p) for p in st.context().record_paths]
        return
    if not (st.built or st.worker_records):
        return                   # no bench ran and no option asked for anything: as if not installed
    import os

    from ..report import markdown
    from . import session_end

    ctx = st.context()
    read = session_end.session_records(ctx, st.worker_records)
    s = session_end.finish(ctx, read)
    recs = read.records
    if recs:
        config.stash[SUMMARY_KEY] = s
    if s.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if ctx.options.summary_md is not None or (recs and os.environ.get("GITHUB_STEP_SUMMARY")):
        markdown.write(s, ctx, ctx.options.summary_md)
    if ctx.options.json_path is not None:
        session_end.write_json(s, ctx, ctx.options.json_path)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(SUMMARY_KEY, None)
    if s is None:
        return
    from ..report import terminal

    tr = terminalreporter
    tr.write_sep("=", "research bench summary")
    for kind, text in terminal.session_lines(s, context_of(config)):
        if kind == "sep":
            tr.write_sep("-", text, red=True)
        elif kind == "warn":
            tr.write_sep("-", text, yellow=True)
        else:
            tr.write_line(text, **({kind: True} if kind else {}))
