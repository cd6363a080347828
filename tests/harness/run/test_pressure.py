"""The memory hog of the memory-pressure bench (harness/run/pressure.py): real memory, inside this process's tree."""
import os
import sys

import psutil
import pytest

from llm_research_bench.harness.run.pressure import MemoryHog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hog reads /proc")


def test_the_hog_holds_and_frees_real_memory_as_a_child_of_this_process():
    with MemoryHog() as hog:
        assert hog.proc.pid in {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
        held = hog.hold(64)
        assert held >= 64 and psutil.Process(hog.proc.pid).memory_info().rss / 2**20 >= 64
        assert hog.free() < held - 48
    assert hog.proc.poll() is not None
