"""Timing of streamed generation: TTFT, inter-chunk gaps, TPOT (pure; clock injected for tests)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]; None for no values."""
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class CallTiming:
    """One generation call as seen from the client side."""
    sent_at: float
    first_chunk_at: float | None = None
    ended_at: float | None = None
    chunk_times: list[float] = field(default_factory=list)

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_chunk_at is None else self.first_chunk_at - self.sent_at

    @property
    def e2e_s(self) -> float:
        return (self.ended_at or self.sent_at) - self.sent_at

    @property
    def gaps(self) -> list[float]:
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:])]


class StreamMeter:
    """Wraps a stream of text deltas and stamps each non-empty one."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.calls: list[CallTiming] = []

    def measure(self, deltas: Iterable[str]) -> Iterator[str]:
        call = CallTiming(sent_at=self.clock())
        self.calls.append(call)
        try:
            for d in deltas:
                if d:
                    now = self.clock()
                    if call.first_chunk_at is None:
                        call.first_chunk_at = now
                    call.chunk_times.append(now)
                yield d
        finally:
            call.ended_at = self.clock()

    @property
    def chunks(self) -> int:
        return sum(len(c.chunk_times) for c in self.calls)


def tpot(calls: list[CallTiming], tokens_per_call: list[int]) -> float | None:
    """Sum over calls of (e2e - TTFT) / (sum of output tokens - number of calls with output)."""
    num, den = 0.0, 0
    for c, n in zip(calls, tokens_per_call):
        if c.ttft_s is None or n < 2:
            continue
        num += c.e2e_s - c.ttft_s
        den += n - 1
    return num / den if den > 0 else None


def itl_percentiles(calls: list[CallTiming]) -> dict[str, float | None]:
    gaps = [g for c in calls for g in c.gaps]
    return {f"itl_p{q}_s": percentile(gaps, q) for q in (50, 90, 99)}
