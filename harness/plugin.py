"""The research-bench pytest plugin: hooks and options only; the logic lives in plain modules.

    config.py    options -> HarnessOptions (one clear usage error each), the session's BenchContext
    parametrize  profiles as parameters, pipeline benches' timeouts
    fixtures.py  profile, bench_budget, bench_warmup, research_bench, record_result, research_runner
    runner.py    a bench instance's runs: run -> validate -> judge -> store
    session.py   one run: in-process or isolated, timeouts, memray
    budgets.py   verdicts        compare.py  statistics        report.py  tables, Markdown, JUnit
    summary.py   the session's end: CI gate, baseline comparison, summary rows
"""
from __future__ import annotations

import os
import signal

import pytest

from llm_research_bench.harness import parametrize
from llm_research_bench.harness import summary as summary_mod
from llm_research_bench.harness.config import BenchContext, OptionError, parse_options
from llm_research_bench.harness.fixtures import (CONTEXT_KEY, bench_budget, bench_context, bench_warmup, context_of,  # noqa: F401
                              profile, record_result, research_bench, research_runner)
from llm_research_bench.harness.summary import SessionSummary

try:
    from llm_research_bench.harness.selection import deselect_unless_requested
except ImportError:          # pragma: no cover -- the opt-in selection module is optional
    deselect_unless_requested = None

SUMMARY_KEY = pytest.StashKey[SessionSummary]()
STATIC_MARKERS = (
    "profiles(*names): parametrize a bench over these profiles only (default: every profile)",
    "pipeline: benches that run the whole research pipeline (they get the profile's timeout_s)",
    "micro: micro benches of hot paths (pytest-benchmark)",
    "quality: answer-quality benches (opt-in: run only when -m names quality or the file is named)",
    "breakdown: performance-breakdown benches",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("research-bench", "research bench (llm-research-bench harness)")
    g.addoption("--profile", action="append", dest="research_profile", metavar="NAME",
                help="run bench instances of these profiles only (repeat or comma-separate; default: all)")
    g.addoption("--profiles-file", dest="research_profiles_file", metavar="PATH",
                help="a TOML file overlaying the built-in profiles (default: $RESEARCH_PROFILES)")
    g.addoption("--machine-class", dest="research_machine_class", metavar="CLASS",
                help="take budgets for this machine class instead of the detected one")
    g.addoption("--budget-scale", dest="research_budget_scale", type=float, metavar="FACTOR",
                help="multiply every time budget by FACTOR (default 1)")
    g.addoption("--results-dir", dest="research_results_dir", metavar="DIR",
                help="where result records are appended (default: <rootdir>/results)")
    g.addoption("--rounds", dest="research_rounds", type=int, metavar="N",
                help="measured runs per pipeline bench (default 1); summaries use median and IQR")
    g.addoption("--warmup-runs", dest="research_warmup_runs", type=int, metavar="N",
                help="warm-up runs before the measured ones, recorded as such and excluded "
                     "(default: 1 when --rounds > 1, else 0)")
    g.addoption("--compare", dest="research_compare", nargs="?", const="", default=None, metavar="REF",
                help="compare with the stored results of REF (default: the latest other commit measured on this "
                     "machine); write --compare=REF")
    g.addoption("--compare-fail", dest="research_compare_fail", action="append", metavar="METRIC:PCT",
                help="fail the session when METRIC got worse than the baseline by more than PCT and the change is "
                     "distinguishable from noise, e.g. execution_time_s:10%% (implies --compare)")
    g.addoption("--summary-md", dest="research_summary_md", metavar="FILE",
                help="write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)")
    g.addoption("--memray", dest="research_memray", action="store_true",
                help="record each run's allocations with memray (capture under the results dir)")
    g.addoption("--isolate", dest="research_isolate", action="store_true",
                help="run each pipeline run in a child process: a crash or OOM kill is recorded, the session "
                     "goes on")
    g.addoption("--enforce-memory", dest="research_enforce_memory", action="store_true",
                help="with --isolate: kill a run whose process tree goes over the profile's memory limit")
    g.addoption("--backend", dest="research_backend", metavar="NAME",
                help="backend of pipeline benches: llamacpp (default, embedded) or ollama")
    g.addoption("--bench-corpus", dest="research_corpus", metavar="PATH",
                help="corpus of pipeline benches (default: the engine's PubMedQA corpus)")


def pytest_configure(config: pytest.Config) -> None:
    for line in STATIC_MARKERS:
        config.addinivalue_line("markers", line)
    try:
        opts = parse_options(config.getoption, config.rootpath)
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
    if deselect_unless_requested is not None:
        for opt_in in ("quality", "breakdown", "efficiency"):   # long benches run only when asked for
            deselect_unless_requested(items, config, opt_in)       # (harness/selection.py)
    if config.pluginmanager.hasplugin("timeout") and hasattr(signal, "SIGALRM"):
        parametrize.add_timeouts(items, context_of(config))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if getattr(config, "workerinput", None) is not None or CONTEXT_KEY not in config.stash:
        return
    ctx = context_of(config)
    from_store = config.pluginmanager.getplugin("dsession") is not None
    recs = summary_mod.session_records(ctx, from_store=from_store)
    if not recs:
        if ctx.options.summary_md is not None:
            summary_mod.write_markdown(summary_mod.SessionSummary([], []), ctx, ctx.options.summary_md)
        return
    s = summary_mod.finish(ctx, recs)
    config.stash[SUMMARY_KEY] = s
    if s.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if ctx.options.summary_md is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        summary_mod.write_markdown(s, ctx, ctx.options.summary_md)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(SUMMARY_KEY, None)
    if s is None:
        return
    from llm_research_bench.harness import report
    tr = terminalreporter
    tr.write_sep("=", "research bench summary")
    for kind, text in report.session_lines(s, context_of(config)):
        if kind == "sep":
            tr.write_sep("-", text, red=True)
        else:
            tr.write_line(text, **({kind: True} if kind else {}))
