"""Process-tree memory: a background sampler (>= 20 Hz) and the pressure reading for batch sizing."""
from __future__ import annotations

import os
import resource
import sys
import threading
import time

import psutil

from .batching import Pressure


def ru_maxrss_mb() -> float:
    """Lifetime peak RSS of this process from getrusage (KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


class ProcessTree:
    """This process, its descendants, and any extra processes the run uses (e.g. a local Ollama server).

    Listing descendants scans /proc (~1 ms), so the member list is refreshed every `refresh_s`; reading each
    member's RSS is ~10 us and happens on every sample."""

    def __init__(self, root_pid: int | None = None, extra_pids: list[int] | None = None, refresh_s: float = 0.25):
        self.root = psutil.Process(root_pid or os.getpid())
        self.extra = list(extra_pids or [])
        self.refresh_s = refresh_s
        self._members: list[psutil.Process] = []
        self._listed_at = -1e9

    def _refresh(self) -> None:
        procs = [self.root]
        try:
            procs += self.root.children(recursive=True)
        except psutil.Error:
            pass
        for pid in self.extra:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        self._members = procs
        self._listed_at = time.perf_counter()

    def rss_bytes(self) -> int:
        if time.perf_counter() - self._listed_at > self.refresh_s:
            self._refresh()
        total = 0
        for p in self._members:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total


def find_ollama_server_pids() -> list[int]:
    """PIDs of local processes named like the Ollama server (its memory belongs to the run)."""
    pids = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            name = (p.info.get("name") or "").lower()
            if name.startswith("ollama"):
                pids.append(p.pid)
        except psutil.Error:
            continue
    return pids


class MemorySampler:
    """Samples process-tree RSS on a daemon thread at `hz` until stopped; keeps the peak, and with `trace` every
    sample as (seconds since start, bytes) for `trace_document()`."""

    def __init__(self, tree: ProcessTree | None = None, hz: float = 50.0, trace: bool = False):
        self.tree = tree or ProcessTree()
        self.interval = 1.0 / hz
        self.peak_bytes = 0
        self.last_bytes = 0
        self.samples = 0
        self.trace: list[tuple[float, int]] | None = [] if trace else None
        self._t0 = self._t1 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def _sample(self) -> None:
        b = self.tree.rss_bytes()
        self.last_bytes = b
        self.peak_bytes = max(self.peak_bytes, b)
        self.samples += 1
        if self.trace is not None:
            self.trace.append((time.perf_counter() - self._t0, b))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> "MemorySampler":
        self._t0 = time.perf_counter()
        if self.trace is not None:
            self.trace.clear()
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._sample()
        self._t1 = time.perf_counter()

    def __enter__(self) -> "MemorySampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    @property
    def achieved_hz(self) -> float | None:
        dt = (self._t1 or time.perf_counter()) - self._t0
        return self.samples / dt if dt > 0 else None

    def trace_document(self) -> dict:
        """The sampled trace (needs trace=True): process-tree RSS over the run, one [seconds, MB] per sample."""
        return {"what": "process-tree RSS sampled during one research run", "unit": "MB",
                "target_hz": round(1.0 / self.interval, 3), "achieved_hz": self.achieved_hz,
                "samples": self.samples, "peak_mb": round(self.peak_mb, 3),
                "trace": [[round(t, 4), round(b / 2**20, 3)] for t, b in (self.trace or [])]}

    def pressure(self, memory_limit_mb: float) -> Pressure:
        self._sample()
        return Pressure(system_used=psutil.virtual_memory().percent / 100.0,
                        tree_rss_share=(self.last_bytes / 2**20) / memory_limit_mb)
