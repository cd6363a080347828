"""The research-bench pytest plugin's hooks (the `pytest11` entry point): thin, each delegating to plain code.

    options.py      the options (+ checks) -> HarnessOptions; the session's BenchContext (run/context.py)
    parametrize.py  profiles as parameters; pipeline benches' timeouts
    selection.py    opt-in benches (quality, breakdown, efficiency) run only when asked for
    fixtures.py     profile, bench_budget, bench_warmup, research_bench, record_result, research_runner
    timer.py        pytest-timeout's timer, taken over for bench items through its hooks
    session_end.py  the session's end: CI gate, baseline comparison (printed by report/terminal, markdown)
"""
from __future__ import annotations

import os
import signal

import pytest

from . import parametrize, session_end, timer
from .fixtures import (CONTEXT_KEY, bench_budget, bench_context, bench_warmup, context_of,  # noqa: F401
                       profile, record_result, research_bench, research_runner)
from .options import OptionError, parse_options, register, settings
from .selection import deselect_unless_requested

SUMMARY_KEY = pytest.StashKey[session_end.SessionSummary]()
STATIC_MARKERS = (
    "profiles(*names): parametrize a bench over these profiles only (default: every profile)",
    "research(**options): this bench's own rounds, warmup_runs, isolate, enforce_memory, memray, backend, corpus or "
    "budget_scale (over the command line and the ini file)",
    "pipeline: benches that run the whole research pipeline (they get the profile's timeout_s)",
    "micro: micro benches of hot paths (pytest-benchmark)",
    "quality: answer-quality benches (opt-in: run only when -m names quality or the file is named)",
    "breakdown: performance-breakdown benches",
    "calibration: the compare gate's calibration bench: real interleaved A/A and A/B sessions, false-alarm and "
    "detection rates (opt-in: run only when -m names calibration or the file is named; 1-2 hours)",
)
OPT_IN_MARKERS = ("quality", "breakdown", "efficiency", "calibration")


def pytest_addoption(parser: pytest.Parser) -> None:
    register(parser)


def pytest_configure(config: pytest.Config) -> None:
    from ..run.context import BenchContext

    for line in STATIC_MARKERS:
        config.addinivalue_line("markers", line)
    try:
        opts = parse_options(settings(config.getoption, config.getini), config.rootpath)
    except OptionError as e:
        raise pytest.UsageError(str(e)) from None
    for name in opts.profiles:
        config.addinivalue_line("markers", f"{name}: bench instances on the {name} profile")
    ctx = BenchContext(opts, config.rootpath)
    wi = getattr(config, "workerinput", None)
    if wi is not None:
        ctx.session_id = wi.get("research_bench_session", ctx.session_id)
        ctx.worker = wi.get("workerid")
    config.stash[CONTEXT_KEY] = ctx


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:   # xdist: workers share the controller's session id
    node.workerinput["research_bench_session"] = context_of(node.config).session_id


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    ctx = context_of(config)
    o = ctx.options
    if not any("bench" in str(a) for a in config.args):
        return None                               # only bench sessions get the header line
    line = (f"research-bench {ctx.plugin_version}: machine {ctx.machine.fingerprint}, commit {ctx.git.short}, "
            f"results -> {o.results_dir}")
    extra = []
    if o.machine_class or o.budget_scale != 1:
        extra.append(f"budgets: class {o.machine_class or '(detected)'}, time x{o.budget_scale:g}")
    if o.profiles_file:
        extra.append(f"profiles file: {o.profiles_file}")
    return [line] + extra


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if parametrize.wants_profiles(metafunc):
        parametrize.parametrize_profiles(metafunc, context_of(metafunc.config).options)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    for opt_in in OPT_IN_MARKERS:                     # long benches run only when asked for
        deselect_unless_requested(items, config, opt_in)
    if config.pluginmanager.hasplugin("timeout") and hasattr(signal, "SIGALRM"):
        parametrize.add_timeouts(items, context_of(config))


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    return timer.set_timer(item, settings)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item):
    return timer.cancel_timer(item)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if getattr(config, "workerinput", None) is not None or CONTEXT_KEY not in config.stash:
        return
    from ..report import markdown

    ctx = context_of(config)
    from_store = config.pluginmanager.getplugin("dsession") is not None
    recs = session_end.session_records(ctx, from_store=from_store)
    s = session_end.finish(ctx, recs)
    if recs:
        config.stash[SUMMARY_KEY] = s
    if s.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if ctx.options.summary_md is not None or (recs and os.environ.get("GITHUB_STEP_SUMMARY")):
        markdown.write(s, ctx, ctx.options.summary_md)


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
