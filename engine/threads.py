"""How many threads llama.cpp gets: the CPUs actually free when a run starts, not the core count.

    read_cpus(window_s) -> CpuReading      CPUs this process may use (affinity, cgroup quota), physical cores, and
                                           the cores other processes kept busy over a short window (psutil: the
                                           allowed CPUs' busy time minus this process's own CPU time)
    choose_threads(reading) -> ThreadChoice    pure: the count and the reason, in words

llama.cpp's worker threads meet at a barrier after every graph node, so one thread on a core another process
holds stalls all of them: one thread too many on a busy machine slows every step, not just its own share (the
measured slowdowns: docs/measurements.md, Threads under contention). A core counts as taken when other
processes keep more than BUSY_TOLERANCE of it busy; the run gets the rest, at least one, at most the physical
cores. The choice and its inputs are stored
in telemetry (`threads`). psutil is imported lazily (the harness imports engine modules cheaply).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

#: Share of one core other processes may keep busy before that core counts as taken.
BUSY_TOLERANCE = 0.25
#: How long the CPUs are watched before the choice (overlaps loading the model).
WINDOW_S = 0.25


@dataclass(frozen=True)
class CpuReading:
    allowed_cpus: int             # CPUs this process may run on (sched_getaffinity; all CPUs where unsupported)
    physical_cores: int           # of the machine
    quota_cpus: float | None      # cgroup CPU quota in CPUs (None: no quota)
    other_busy_cores: float       # cores other processes kept busy on the allowed CPUs during the window
    window_s: float


@dataclass(frozen=True)
class ThreadChoice:
    n_threads: int
    reason: str
    source: str                   # "measured" | "requested"
    reading: CpuReading | None = None

    def as_dict(self) -> dict:
        d = {"n_threads": self.n_threads, "source": self.source, "reason": self.reason}
        if self.reading is not None:
            d.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self.reading).items()})
        return d


def choose_threads(r: CpuReading) -> ThreadChoice:
    """Threads for a run from a CPU reading: the allowed CPUs not taken by other processes, >= 1, capped at the
    physical cores and the cgroup quota."""
    taken = max(0, math.ceil(r.other_busy_cores - BUSY_TOLERANCE - 1e-9))
    free = max(0, r.allowed_cpus - taken)
    cap, cap_why = r.allowed_cpus, ""
    if r.physical_cores < cap:
        cap, cap_why = r.physical_cores, f", capped at the {r.physical_cores} physical cores"
    if r.quota_cpus is not None and max(1, math.floor(r.quota_cpus)) < cap:
        cap, cap_why = max(1, math.floor(r.quota_cpus)), f", capped at the cgroup quota of {r.quota_cpus:g} CPUs"
    n = max(1, min(free, cap))
    busy = f"other processes kept {r.other_busy_cores:.2f} cores busy over {r.window_s:.2f} s"
    if taken == 0:
        why = f"{free} of {r.allowed_cpus} CPUs free ({busy}){cap_why}"
    elif free == 0:
        why = f"no CPU free ({busy} on {r.allowed_cpus} CPUs): one thread"
    else:
        why = f"{free} of {r.allowed_cpus} CPUs free: {busy}, so {taken} taken{cap_why}"
    return ThreadChoice(n, why, "measured", r)


def requested(n: int) -> ThreadChoice:
    return ThreadChoice(int(n), f"{int(n)} threads requested by the caller", "requested")


def _allowed_cpus() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):    # macOS, Windows: no affinity API; every CPU is allowed
        return None


def _cgroup_quota() -> float | None:
    """The cgroup's CPU quota in CPUs (v2 cpu.max or v1 cfs_quota/period), None when unlimited or unreadable."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        q = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
        p = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


class CpuWindow:
    """Opened at `start()`, read at `reading()`: other processes' CPU use in between (this process excluded,
    its children included: they compete with the run's threads). Waits out the rest of `window_s` if needed."""

    def __init__(self, window_s: float = WINDOW_S):
        import psutil
        self._psutil = psutil
        self.window_s = window_s
        self.allowed = _allowed_cpus()
        self._t0 = self._busy0 = self._own0 = 0.0

    def _busy(self) -> float:
        per = self._psutil.cpu_times(percpu=True)
        cpus = self.allowed if self.allowed is not None else range(len(per))
        return sum(sum(per[i]) - per[i].idle - getattr(per[i], "iowait", 0.0) for i in cpus if i < len(per))

    def _own(self) -> float:
        t = self._psutil.Process().cpu_times()
        return t.user + t.system

    def start(self) -> "CpuWindow":
        self._t0, self._busy0, self._own0 = time.monotonic(), self._busy(), self._own()
        return self

    def reading(self) -> CpuReading:
        left = self.window_s - (time.monotonic() - self._t0)
        if left > 0:
            time.sleep(left)
        wall = time.monotonic() - self._t0
        other = max(0.0, (self._busy() - self._busy0) - (self._own() - self._own0)) / wall
        from .system import physical_cores
        n_allowed = len(self.allowed) if self.allowed is not None else (self._psutil.cpu_count() or 1)
        return CpuReading(n_allowed, physical_cores(), _cgroup_quota(), other, wall)


def read_cpus(window_s: float = WINDOW_S) -> CpuReading:
    """A reading over `window_s` seconds from now."""
    return CpuWindow(window_s).start().reading()
