"""The compare gate's calibration (pure): false-alarm and detection rates from one long interleaved session.

The gate calibration bench (benches/test_calibration.py) runs sides A, A2 (the same code) and B (slower) with
their rounds interleaved; `block_comparisons` cuts each side's measured rounds into consecutive blocks of
`block` rounds and judges every block as `research-bench continuous` would judge a session of that many rounds
(compare.compare_records with the thresholds). A/A blocks that fail are false alarms; A/B blocks that fail are
detections.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

from ..records import ResultRecord, is_number, is_usable
from .compare import Comparison, compare_records
from .thresholds import Threshold


@dataclass
class BlockResult:
    block: int                       # 0, 1, ...
    rounds: tuple[int, int]          # first and last round (record.round) in the block
    failed: bool                     # the gate failed this comparison
    delta_pct: float | None          # the metric's median change
    p_value: float | None            # the gate's (one-sided toward worse)
    method: str
    n_base: int
    n_cur: int
    contended: int                   # runs of the block timed on a busy machine (both sides)


def _rounds(records: Sequence[ResultRecord]) -> list[ResultRecord]:
    return sorted((r for r in records if is_usable(r)), key=lambda r: (r.round, r.timestamp))


def block_comparisons(base: Sequence[ResultRecord], other: Sequence[ResultRecord], *, block: int,
                      thresholds: Sequence[Threshold], metric: str = "execution_time_s") -> list[BlockResult]:
    """Judge consecutive blocks of `block` usable rounds of `base` against the same blocks of `other`."""
    b, o = _rounds(base), _rounds(other)
    out = []
    for k in range(min(len(b), len(o)) // block):
        bb, ob = b[k * block:(k + 1) * block], o[k * block:(k + 1) * block]
        comp: Comparison = compare_records(bb, ob, thresholds=thresholds, metrics=[metric])
        d = comp.series[0].delta(metric) if comp.series else None
        out.append(BlockResult(
            k, (bb[0].round, bb[-1].round), comp.failed, d.delta_pct if d else None,
            (d.test.p_value if d.test.p_worse is None else d.test.p_worse) if d else None,
            d.test.method if d else "none", d.base.n if d else 0, d.cur.n if d else 0,
            sum(1 for r in [*bb, *ob] if (r.extra or {}).get("contended"))))
    return out


def rate(blocks: Sequence[BlockResult]) -> float | None:
    """The share of blocks the gate failed."""
    return sum(b.failed for b in blocks) / len(blocks) if blocks else None


def median_change(base: Sequence[ResultRecord], other: Sequence[ResultRecord],
                  metric: str = "execution_time_s") -> float | None:
    """The median over rounds of other/base - 1 for the same round index (interleaved rounds side by side), in %."""
    bm = {r.round: r.metric(metric) for r in _rounds(base)}
    ratios = [r.metric(metric) / bm[r.round] - 1 for r in _rounds(other)
              if r.round in bm and is_number(bm[r.round]) and bm[r.round] and is_number(r.metric(metric))]
    return statistics.median(ratios) * 100 if ratios else None
