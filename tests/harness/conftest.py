"""Helpers for the plugin's own tests: pytester projects whose benches run test doubles of the engine
(tests/harness/doubles.py) or store recorded telemetry, so every test runs in well under a second."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from llm_research_bench.harness.run.store import StoreRead, read_store

# pytester's in-process runs drop the modules they import when they end: import the heavy ones here, once, so
# that each inner session does not import (and assertion-rewrite) them again.
import llm_research_bench.engine.pipeline  # noqa: E402,F401
import llm_research_bench.harness.commands.compare  # noqa: E402,F401
import llm_research_bench.harness.plugin.session_end  # noqa: E402,F401
# ... and the modules the bench fixture patches (run/bench.py's CPU readings): the plugin, loaded before any
# inner session, must use the very module object a test patches, not a copy an inner session imported and dropped.
import llm_research_bench.harness.plugin.runner  # noqa: E402,F401
import llm_research_bench.harness.run.bench  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401
import tabulate  # noqa: E402,F401
from llm_research_bench.engine.telemetry import validation_errors as _ve  # noqa: E402

_ve({})                                         # compiles the schema validator once

MACHINE = "linux-x86_64-2c"        # budgets: quick [10, 45] s, 4096 MB; balanced [20, 90] s, 6144 MB

#: The budgets these tests are written against, pinned so that re-measuring the shipped budgets in
#: engine/profiles.toml never changes a test's expectations (every bench project here loads this overlay).
PINNED_BUDGETS = {
    "quick": "[profiles.quick.budgets.linux-x86_64-2c]\ntime_s = [10, 45]\nmemory_mb = 4096\n",
    "balanced": "[profiles.balanced.budgets.linux-x86_64-2c]\ntime_s = [20, 90]\nmemory_mb = 6144\n",
    "thorough": "[profiles.thorough.budgets.linux-x86_64-2c]\ntime_s = [30, 180]\nmemory_mb = 8192\n",
}


def pinned_profiles(body: str = "") -> str:
    """`body` plus the pinned budget tables it does not define itself."""
    extra = [t for t in PINNED_BUDGETS.values() if t.splitlines()[0] not in body]
    return body.rstrip() + "\n\n" + "\n".join(extra)

DOUBLES_CONFTEST = '''
import pytest
from llm_research_bench.harness.run.warmup import Warmup

research_benches = True          # every test here is a research bench (harness/plugin/items.py)


@pytest.fixture(scope="session")
def bench_warmup():
    """Test double of the session warm-up: the doubles load nothing."""
    return Warmup(corpus=None, corpus_path=None, seconds=0.0, index_cache_hit=None, system_info={})


@pytest.fixture
def research_runner():
    return "tests.harness.doubles:replay_research_double"
'''

#: A bench storing the recorded quick telemetry through record_result, after applying MUTATE(tel).
RECORD_BENCH = '''
import pytest
from tests.harness.doubles import recorded_telemetry

def mutate(tel):
{mutate}

def test_replayed(record_result, profile):
    tel = recorded_telemetry()
    tel["profile"]["name"] = profile.name
    mutate(tel)
    record_result(tel{kwargs})
'''

RUN_BENCH = '''
import pytest
pytestmark = pytest.mark.pipeline

def test_run(research_bench, profile):
    research_bench.run({kwargs})
'''


#: The repository root, whose engine and schemas engine_repo() copies.
ROOT = Path(__file__).resolve().parents[2]


class CpuLoadDouble:
    """Test double of run/cpu.py's reading of other processes' CPU load around each run: by default no reading
    (as for a run too short to tell), so that the plugin's tests never depend on what else the machine is doing;
    `contended(...)` makes the next runs read as contended (cores other processes kept busy, in turn)."""

    def __init__(self):
        self.cores: list[float | None] = []
        self.calls = 0

    def contended(self, *cores: float | None) -> None:
        self.cores = list(cores)

    def __call__(self, before, after):
        from llm_research_bench.harness.run.cpu import CpuLoad
        c = self.cores[self.calls] if self.calls < len(self.cores) else None
        self.calls += 1
        return None if c is None else CpuLoad(wall_s=10.0, other_cores=c, logical=2)


class Bench:
    """A pytester project with the harness's doubles, and its results dir."""

    def __init__(self, pytester: pytest.Pytester, cpu: CpuLoadDouble | None = None):
        self.pytester = pytester
        self.results = pytester.path / "results"
        self.cpu = cpu
        pytester.makeconftest(DOUBLES_CONFTEST)

    def record_bench(self, mutate: str = "pass", kwargs: str = "", name: str = "test_bench") -> None:
        body = "\n".join("    " + line for line in mutate.strip().splitlines())
        self.pytester.makepyfile(**{name: RECORD_BENCH.format(mutate=body, kwargs=kwargs)})

    def run_bench(self, kwargs: str = "", name: str = "test_bench") -> None:
        self.pytester.makepyfile(**{name: RUN_BENCH.format(kwargs=kwargs)})

    def engine_repo(self) -> str:
        """Make the project a git repository holding a copy of the real engine and schemas and a pipeline bench
        (run_bench), committed as `base`; its commit."""
        for room in ("engine", "schemas"):
            shutil.copytree(ROOT / room, self.pytester.path / room, ignore=shutil.ignore_patterns("__pycache__"))
        self.run_bench()
        return self.commit("base")

    def profiles_file(self, body: str) -> Path:
        p = self.pytester.path / "profiles.toml"
        p.write_text(pinned_profiles(body))
        return p

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("--research-machine-class", MACHINE, "--research-results-dir", str(self.results),
                                       "-p", "no:cacheprovider", "-p", "no:unraisableexception",
                                       "-p", "no:hypothesispytest",
                                       "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)

    def records(self):
        return self.store().records

    def store(self) -> StoreRead:
        return read_store(self.results)

    def git(self, *args: str) -> str:
        r = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                           cwd=self.pytester.path, capture_output=True, text=True, check=True)
        return r.stdout.strip()

    def commit(self, message: str) -> str:
        (self.pytester.path / "CHANGES").write_text(message)
        if not (self.pytester.path / ".git").exists():
            self.git("init", "-q")
            (self.pytester.path / ".gitignore").write_text("results/\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Bench:
    for k in list(os.environ):
        if k.startswith("RB_DOUBLE_"):
            monkeypatch.delenv(k)
    from tests.harness import doubles
    doubles._calls["n"] = 0
    for k in ("RESEARCH_PROFILES", "RESEARCH_BENCH_PROFILES", "GITHUB_STEP_SUMMARY", "RESEARCH_BENCH_RESULTS_DIR",
              "RESEARCH_BENCH_MACHINE_ID", "RESEARCH_BENCH_COMMIT_URL"):
        monkeypatch.delenv(k, raising=False)
    # Wide enough that no summary line wraps: tests match whole lines; tests of the width set COLUMNS themselves.
    monkeypatch.setenv("COLUMNS", "400")
    pinned = pytester.path / "pinned-budgets.toml"
    pinned.write_text(pinned_profiles())
    monkeypatch.setenv("RESEARCH_BENCH_PROFILES", str(pinned))
    from llm_research_bench.harness.run import bench as bench_module
    cpu = CpuLoadDouble()
    monkeypatch.setattr(bench_module, "load_between", cpu)
    monkeypatch.setattr(bench_module, "wait_quiet", lambda **kw: {"waited_s": 0.0, "foreign_cpu_share_before": 0.0})
    return Bench(pytester, cpu)


# -- recorded test data for analysis and report tests (tests/harness/testdata.py: TEST DATA, not measurements) --
@pytest.fixture
def testdata_records():
    """TEST DATA records (see tests/harness/testdata.py), not measurements."""
    from tests.harness.testdata import history_records
    return history_records()


@pytest.fixture
def testdata_results_dir(tmp_path, testdata_records):
    from llm_research_bench.harness.run import store
    d = tmp_path / "results"
    for r in testdata_records:
        store.append(d, r)
    return d
