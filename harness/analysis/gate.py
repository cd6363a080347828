"""The CI gate over a session's records (pure): which measured, gated records missed their target."""
from __future__ import annotations

from typing import Sequence

from ..records import ResultRecord


def missed_targets(records: Sequence[ResultRecord]) -> list[ResultRecord]:
    """Measured records (not warm-ups) whose verdict may fail the session and that missed their target."""
    return [r for r in records if not r.warmup and not r.target_met and r.gated]
