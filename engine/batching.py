"""Adaptive batch sizing under memory pressure (pure logic; the pressure reading is passed in)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

HIGH_PRESSURE = 0.85
LOW_PRESSURE = 0.5


@dataclass(frozen=True)
class Pressure:
    """Memory pressure = the larger of system memory in use and process-tree RSS / profile memory limit."""
    system_used: float        # 0..1, share of system RAM in use
    tree_rss_share: float     # process-tree RSS / profile memory limit (may exceed 1)

    @property
    def value(self) -> float:
        return max(self.system_used, self.tree_rss_share)


@dataclass(frozen=True)
class BatchDecision:
    batch: int
    pressure: float
    system_used: float
    tree_rss_share: float
    old: int
    new: int
    decision: str  # shrink | grow | hold

    def as_dict(self) -> dict:
        return asdict(self)


class AdaptiveBatchSizer:
    """pressure > 0.85 -> size - 2 (not below minimum); pressure < 0.5 -> size + 1 (not above maximum)."""

    def __init__(self, initial: int, minimum: int, maximum: int, *, shrink_step: int = 2, grow_step: int = 1):
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError(f"need 1 <= minimum <= initial <= maximum, got {minimum}, {initial}, {maximum}")
        self.size, self.minimum, self.maximum = initial, minimum, maximum
        self.shrink_step, self.grow_step = shrink_step, grow_step
        self.decisions: list[BatchDecision] = []

    def next_size(self, batch: int, pressure: Pressure) -> int:
        """Decide the size of batch number `batch` from the pressure measured just before it."""
        old, p = self.size, pressure.value
        if p > HIGH_PRESSURE:
            new, what = max(self.minimum, old - self.shrink_step), "shrink"
        elif p < LOW_PRESSURE:
            new, what = min(self.maximum, old + self.grow_step), "grow"
        else:
            new, what = old, "hold"
        if new == old:
            what = "hold"
        self.size = new
        self.decisions.append(BatchDecision(batch, round(p, 4), round(pressure.system_used, 4),
                                            round(pressure.tree_rss_share, 4), old, new, what))
        return new


def adaptive_batch_effectiveness(decisions: list[BatchDecision]) -> float | None:
    """Of the decisions taken under high pressure, the share followed by a reading back at or under 0.85.

    None when no high-pressure reading happened (nothing to be effective about)."""
    highs = [i for i, d in enumerate(decisions[:-1]) if d.pressure > HIGH_PRESSURE]
    if not highs:
        return None
    relieved = sum(1 for i in highs if decisions[i + 1].pressure <= HIGH_PRESSURE)
    return relieved / len(highs)
