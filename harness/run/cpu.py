"""How busy other processes kept the CPUs while something was measured: the machine's busy CPU time less this
process tree's, through psutil. `with CpuWatch() as w` gives w.load; `wait_quiet()` waits (bounded) for quiet."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import psutil

#: A run measured while other processes kept more than this many cores busy (or this share of the CPUs, whichever
#: is more) is *contended*: its timings are inflated and it is re-measured.
CONTENDED_CORES = 0.5
CONTENDED_SHARE = 0.25
#: wait_quiet: quiet is other processes using less than this share of the CPUs over this many seconds.
QUIET_SHARE = 0.25
QUIET_WINDOW_S = 3.0


@dataclass(frozen=True)
class CpuSnapshot:
    at: float           # monotonic seconds
    busy_s: float       # CPU seconds the whole machine spent busy (all cores)
    own_s: float        # CPU seconds of this process and its children (reaped and live)


@dataclass(frozen=True)
class CpuLoad:
    wall_s: float
    other_cores: float  # cores other processes kept busy, on average
    logical: int

    @property
    def other_share(self) -> float:
        return max(0.0, min(1.0, self.other_cores / self.logical)) if self.logical else 0.0

    @property
    def contended(self) -> bool:
        return self.other_cores > max(CONTENDED_CORES, CONTENDED_SHARE * self.logical)


def snapshot() -> CpuSnapshot:
    st, me = psutil.cpu_times(), psutil.Process()
    t = me.cpu_times()
    own = t.user + t.system + t.children_user + t.children_system
    with contextlib.suppress(psutil.Error):
        for ch in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                own += sum(ch.cpu_times()[:2])
    return CpuSnapshot(time.monotonic(), sum(st) - st.idle - getattr(st, "iowait", 0.0), own)


def load_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuLoad | None:
    """Other processes' CPU use between two snapshots (None over too short a window to tell)."""
    wall = after.at - before.at
    if wall <= 0.05:
        return None
    other = max(0.0, ((after.busy_s - before.busy_s) - (after.own_s - before.own_s)) / wall)
    return CpuLoad(wall, other, psutil.cpu_count() or 1)


class CpuWatch:
    """Context manager: `load` is the other processes' CPU use while it was open (None if too short)."""
    load: CpuLoad | None = None

    def __enter__(self) -> "CpuWatch":
        self._before = snapshot()
        return self

    def __exit__(self, *exc) -> None:
        self.load = load_between(self._before, snapshot())

    @property
    def share(self) -> float | None:
        return None if self.load is None else self.load.other_share


def wait_quiet(max_wait_s: float = 240.0) -> dict:
    """Wait (up to max_wait_s) for quiet CPUs; on a machine that stays busy the measurement goes ahead.
    Returns {'waited_s', 'foreign_cpu_share_before'}."""
    t0 = time.perf_counter()
    while True:
        with CpuWatch() as w:
            time.sleep(QUIET_WINDOW_S)
        share = w.share or 0.0
        if share < QUIET_SHARE or time.perf_counter() - t0 >= max_wait_s:
            return {"waited_s": round(time.perf_counter() - t0, 1), "foreign_cpu_share_before": round(share, 3)}
