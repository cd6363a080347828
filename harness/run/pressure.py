"""Real memory pressure for the memory-pressure bench: a child process (so a run's process tree counts it) holding
memory on command, every page written: `MemoryHog().hold(1200)` -> its RSS in MB; `.free()`; `.close()`."""
from __future__ import annotations

import contextlib
import subprocess
import sys

_CHILD = r"""
import gc, os, sys
held = None
def rss_mb():
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "hold":
        n = int(float(arg[0]) * 2**20)
        held = bytearray(n)
        held[::4096] = b"\x01" * len(range(0, n, 4096))     # touch every page: resident, not just reserved
    elif cmd == "free":
        held = None
        gc.collect()
    print(f"{rss_mb():.1f}", flush=True)
"""


class MemoryHogError(RuntimeError):
    """The hog could not hold what it was asked to (not enough memory); the message says how much."""


class MemoryHog(contextlib.AbstractContextManager):
    """A child process holding memory on command (Linux: RSS read from /proc)."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise MemoryHogError("the memory hog reads /proc: Linux only")
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def _ask(self, line: str) -> float:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise MemoryHogError(f"the memory hog died on '{line}' (exit {self.proc.poll()}): not enough memory?")
        return float(reply)

    def hold(self, mb: float) -> float:
        """Hold `mb` MB resident; returns the child's RSS (MB) once every page is written."""
        return self._ask(f"hold {mb:.1f}")

    def free(self) -> float:
        return self._ask("free")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()         # the child's loop ends with its input
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __exit__(self, *exc) -> None:
        self.close()
