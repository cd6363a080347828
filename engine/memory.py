"""Process-tree memory and CPU: a background sampler (>= 20 Hz) and the pressure reading for batch sizing.

The run's process tree is this process and its descendants plus, with the Ollama backend, the local server
(`ollama serve`) and its descendants (the model runners it starts). Members are re-listed while sampling, so a
runner started mid-run is counted and one that ended is no longer read; unrelated processes never are.
The tree also accounts the members' CPU time (user + system) over the run: `cpu_time_s`.
"""
from __future__ import annotations

import ipaddress
import os
import resource
import sys
import threading
import time
from urllib.parse import urlsplit

import psutil

from .batching import Pressure


def ru_maxrss_mb() -> float:
    """Lifetime peak RSS of this process from getrusage (KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def _cpu_s(p: psutil.Process) -> float:
    """A process's user + system CPU seconds, its reaped children's included."""
    t = p.cpu_times()
    return t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)


class ProcessTree:
    """This process (or `root_pid`) and its descendants, plus the trees of `extra_pids` (e.g. a local Ollama
    server: its children, runners started later included).

    Listing members scans /proc, which costs far more than reading one member's RSS, so the member list is
    refreshed every `refresh_s` while each member's RSS is read on every sample. CPU time is read at each
    refresh: `cpu_time_s()` is the members' user + system CPU since the tree was created (a member that
    appeared later counts from its start when it started after the tree, else from when it was first seen; one
    that ended keeps its last reading unless its parent, still a member, has reaped it and so counts it)."""

    def __init__(self, root_pid: int | None = None, extra_pids: list[int] | None = None, refresh_s: float = 0.25):
        self.root = psutil.Process(root_pid or os.getpid())
        self.extra = list(extra_pids or [])
        self.refresh_s = refresh_s
        self._members: list[psutil.Process] = []
        self._listed_at = -1e9
        self._created = time.time()
        self._cpu_first: dict[tuple[int, float], float] = {}
        self._cpu_last: dict[tuple[int, float], float] = {}
        self._parent: dict[tuple[int, float], tuple[int, float] | None] = {}
        self._lock = threading.Lock()
        self._refresh()

    @staticmethod
    def _key(p: psutil.Process) -> tuple[int, float] | None:
        try:
            return p.pid, p.create_time()
        except psutil.Error:
            return None

    def _tree(self, top: psutil.Process) -> list[psutil.Process]:
        procs = [top]
        try:
            procs += top.children(recursive=True)
        except psutil.Error:
            pass
        return procs

    def _refresh(self) -> None:
        procs = self._tree(self.root)
        for pid in self.extra:
            try:
                procs += self._tree(psutil.Process(pid))
            except psutil.Error:
                pass
        keyed: dict[tuple[int, float], psutil.Process] = {}
        for p in procs:
            key = self._key(p)
            if key is not None and key not in keyed:
                keyed[key] = p
        by_pid = {k[0]: k for k in keyed}
        first_listing = not self._cpu_last and self._listed_at < 0
        with self._lock:
            for key, p in keyed.items():
                try:
                    cpu, ppid = _cpu_s(p), p.ppid()
                except psutil.Error:
                    continue
                if key not in self._cpu_first:
                    born_later = not first_listing and key[1] >= self._created - 0.02
                    self._cpu_first[key] = 0.0 if born_later else cpu
                    self._parent[key] = by_pid.get(ppid)
                self._cpu_last[key] = cpu
            for key in [k for k in self._cpu_last if k not in keyed]:
                if self._parent.get(key) in keyed:      # reaped by a member: its time is in the member's now
                    del self._cpu_last[key]
                    self._cpu_first.pop(key, None)
        self._members = list(keyed.values())
        self._listed_at = time.perf_counter()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._members]

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

    def cpu_time_s(self, refresh: bool = True) -> float:
        """User + system CPU seconds the members used since the tree was created (re-read now if `refresh`)."""
        if refresh:
            self._refresh()
        with self._lock:
            return sum(max(0.0, self._cpu_last[k] - self._cpu_first.get(k, 0.0)) for k in self._cpu_last)


def _local_host(host: str) -> bool:
    name = (urlsplit(host if "://" in host else f"http://{host}").hostname or "").strip("[]").lower()
    if name in ("localhost", "", "0.0.0.0"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def is_ollama_server(name: str, cmdline: list[str]) -> bool:
    """A process is the Ollama server when it is named like `ollama` and runs `serve` (runners are its children)."""
    exe = os.path.basename(cmdline[0]) if cmdline else ""
    named = (name or "").lower().startswith("ollama") or exe.lower().startswith("ollama")
    return named and "serve" in cmdline[1:]


def find_ollama_server_pids(host: str | None = None) -> list[int]:
    """PIDs of local `ollama serve` processes, when the Ollama host is this machine (their trees belong to the
    run); none for a remote host or a malformed $OLLAMA_HOST (creating the backend then says what is wrong with it).
    `host` defaults to $OLLAMA_HOST as the client resolves it."""
    if host is None:
        from .system import HostError, ollama_host
        try:
            host = ollama_host()
        except HostError:
            return []
    if not _local_host(host):
        return []
    pids = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if is_ollama_server(p.info.get("name") or "", p.info.get("cmdline") or []):
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
        self.cpu_time_s: float | None = None
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
        try:
            self.cpu_time_s = self.tree.cpu_time_s()
        except psutil.Error:
            self.cpu_time_s = None

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
