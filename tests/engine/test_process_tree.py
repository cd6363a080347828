"""The run's process tree (engine.memory) with real processes: the Ollama server's tree is re-scanned while
sampling, so a runner it starts mid-run is counted (memory and CPU), and unrelated processes are not.

No Ollama server can be installed here. `stand_in_server` is a TEST DOUBLE: a real process whose name and argv
read like `ollama serve` (an `ollama` symlink to the Python interpreter), which starts a child "runner" after a
while; the runner holds memory and burns a fixed amount of CPU time, then waits to be killed."""
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llm_research_bench.engine.memory import MemorySampler, ProcessTree, find_ollama_server_pids, is_ollama_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names a process through a symlink (Linux)")

RUNNER = r"""
import sys, time
hold = bytearray(80 * 2**20)                 # 80 MB, touched
for i in range(0, len(hold), 4096):
    hold[i] = 1
t0 = time.process_time()
while time.process_time() - t0 < 0.4:        # 0.4 s of CPU, however long it takes
    pass
open(sys.argv[1], "w").write("done")
time.sleep(120)
"""

SERVER = r"""
import subprocess, sys, time
time.sleep(float(sys.argv[2]))
subprocess.Popen([sys.executable, "-c", sys.argv[3], sys.argv[4]])
time.sleep(120)
"""


def _wait(cond, timeout=20.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def stand_in_server(tmp_path):
    """TEST DOUBLE for `ollama serve`: starts a runner child after 1 s. Yields (server, done-file, others)."""
    exe = tmp_path / "ollama"
    exe.symlink_to(os.path.realpath(sys.executable))
    done = tmp_path / "runner-done"
    server = subprocess.Popen([str(exe), "-c", SERVER, "serve", "1.0", RUNNER, str(done)])
    # unrelated: an `ollama run` client (named like Ollama, not the server) and a plain process holding memory
    client = subprocess.Popen([str(exe), "-c", "import time; time.sleep(120)", "run", "qwen"], start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "b = bytearray(60 * 2**20); import time; time.sleep(120)"],
                             start_new_session=True)
    assert _wait(lambda: psutil.Process(server.pid).name() == "ollama")
    yield server, done, [client.pid, other.pid]
    for p in (server, client, other):
        for ch in psutil.Process(p.pid).children(recursive=True):
            ch.kill()
        p.kill()
        p.wait()


def test_the_server_is_told_apart_from_clients_and_remote_hosts():
    assert is_ollama_server("ollama", ["/usr/local/bin/ollama", "serve"])
    assert is_ollama_server("Ollama", ["/Applications/Ollama.app/Contents/Resources/ollama", "serve"])
    assert not is_ollama_server("ollama", ["ollama", "run", "qwen2.5:3b"])
    assert not is_ollama_server("ollama", ["ollama", "runner", "--model", "/m.gguf"])   # a runner: a child
    assert not is_ollama_server("python3", ["python3", "serve"])
    assert find_ollama_server_pids("http://ollama.example.org:11434") == []


def test_a_runner_started_mid_run_is_counted_and_unrelated_processes_are_not(stand_in_server):
    server, done, others = stand_in_server
    pids = find_ollama_server_pids("http://127.0.0.1:11434")
    assert server.pid in pids and not set(others) & set(pids)
    # the tree of a process that uses nothing itself (sleep), plus the server's: the runner does not exist yet
    root = subprocess.Popen(["sleep", "120"])
    try:
        tree = ProcessTree(root_pid=root.pid, extra_pids=pids, refresh_s=0.05)
        sampler = MemorySampler(tree, hz=50).start()
        assert set(tree.pids) == {root.pid, server.pid}
        before = sampler.peak_bytes
        assert _wait(done.exists)                              # the runner started, held memory, burnt CPU
        time.sleep(0.2)
        sampler.stop()
        runner = [p.pid for p in psutil.Process(server.pid).children()]
        assert len(runner) == 1 and runner[0] in tree.pids
        assert not set(others) & set(tree.pids)
        assert sampler.peak_bytes - before >= 70 * 2**20        # the runner's 80 MB are in the peak
        assert 0.4 <= sampler.cpu_time_s < 5                    # its CPU from its start; the sleepers' ~0
    finally:
        root.kill()
        root.wait()


def test_cpu_time_counts_a_child_once_after_it_is_reaped():
    me = psutil.Process()
    tree = ProcessTree(refresh_s=0.0)
    own0, base = sum(me.cpu_times()[:2]), tree.cpu_time_s()
    # os._exit: no interpreter teardown, whose CPU time (tens of ms on a busy machine) would come after the reading
    child = subprocess.Popen([sys.executable, "-c", "import os, time\nt=time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ntime.sleep(0.5)\nos._exit(0)"])
    assert _wait(lambda: sum(psutil.Process(child.pid).cpu_times()[:2]) >= 0.3, timeout=30)   # it burnt its CPU
    child_cpu = sum(psutil.Process(child.pid).cpu_times()[:2])           # its whole CPU time (it only sleeps now)
    tree.cpu_time_s()                                                     # a refresh sees the child
    assert child.pid in tree.pids                                         # seen while it lives
    child.wait()                                                          # reaped: now in our children_* times
    used = tree.cpu_time_s() - base - (sum(me.cpu_times()[:2]) - own0)    # the tree's CPU minus this process's own
    assert used == pytest.approx(child_cpu, abs=0.05)                     # the child's CPU once, not twice
