"""Benches of the research engine, run through the research-bench pytest plugin (harness/plugin.py).

    pytest benches -m quick                  the acceptance run: the quick profile's pipeline bench over its pinned
                                             questions (benches/test_pipeline.py QUICK_QUESTIONS)
    pytest benches -m "not quality"          every profile (quality benches are opt-in: -m quality)
    pytest benches -m micro                  micro benches of hot paths (pytest-benchmark)

The fixtures (`profile`, `research_bench`, `record_result`, `bench_warmup`, `bench_budget`) come from the
plugin; see harness/fixtures.py. A bench that asks for `profile` (or carries @pytest.mark.profiles(...)) is
parametrized over every profile and each instance carries its profile's marker.
"""
from __future__ import annotations

import os

import pytest

from llm_research_bench.harness import DEFAULT_QUESTION

#: Every test under benches/ is a research bench (harness/plugin/items.py): the plugin parametrizes, selects,
#: times out and summarises these, and leaves every other test of a session alone.
research_benches = True

#: The benches' own markers (the plugin's are `profiles`, `research`, `pipeline` and the profile names).
BENCH_MARKERS = (
    "quality: answer-quality benches (opt-in: run only when -m names quality or the file is named)",
    "breakdown: performance-breakdown benches (opt-in)",
    "efficiency: engine vs raw llama-cpp-python decode and prefix reuse (opt-in)",
    "memory_pressure: adaptive batch sizing under real memory pressure (opt-in: a memory-hog child process)",
    "calibration: the compare gate's calibration bench: real interleaved A/A and A/B sessions, false-alarm and "
    "detection rates (opt-in: run only when -m names calibration or the file is named; 1-2 hours)",
    "micro: micro benches of hot paths (pytest-benchmark)",
)


def pytest_configure(config):
    for line in BENCH_MARKERS:
        config.addinivalue_line("markers", line)


@pytest.fixture(scope="session")
def bench_question() -> str:
    """PubMedQA's lace-plant question: its abstract is in the default corpus, so retrieval has a gold passage."""
    return DEFAULT_QUESTION


#: The open-question corpus (free-text gold answers), committed beside the benches.
OPEN_CORPUS = os.path.join(os.path.dirname(__file__), "data", "tooldocs")


@pytest.fixture(scope="session")
def open_corpus(bench_warmup) -> str:
    """The path of the open-question corpus, its index built (or loaded) once, outside any timed run."""
    from llm_research_bench.engine.corpus import load_corpus
    from llm_research_bench.harness.run.warmup import load_index
    load_index(load_corpus(OPEN_CORPUS), OPEN_CORPUS)
    return OPEN_CORPUS


@pytest.fixture
def say(request):
    """say(line): write a line on the terminal now, pytest's capture suspended for it (a long bench's progress)."""
    def _say(line: str) -> None:
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capman = request.config.pluginmanager.get_plugin("capturemanager")
        if tr is None:
            return
        if capman is None:
            tr.write_line(line)
            return
        with capman.global_and_fixture_disabled():
            tr.write_line(line)
    return _say
