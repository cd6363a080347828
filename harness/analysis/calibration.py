"""The compare gate's calibration (pure): sides A, A2 (the same code) and B (slower) of one interleaved session
(benches/test_calibration.py) are cut into slots of rounds, each judged as `research-bench continuous` would judge
it. A/A comparisons that fail are false alarms, A/B ones detections."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

from ..records import ResultRecord, is_contended, is_number, is_usable
from .compare import compare_records, look_alpha, plan, should_continue
from .names import Threshold


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
    return sorted(filter(is_usable, records), key=lambda r: (r.round, r.timestamp))


def sequential_comparisons(base: Sequence[ResultRecord], other: Sequence[ResultRecord], *, rounds: int,
                           max_rounds: int, thresholds: Sequence[Threshold], metric: str = "execution_time_s",
                           slot: int | None = None) -> list[BlockResult]:
    """Each whole `slot` of usable rounds of `base` against `other`'s, as `continuous --research-rounds ROUNDS
    --research-max-rounds MAX` would judge it."""
    looks, out = plan(rounds, max_rounds), []
    b, o, slot = _rounds(base), _rounds(other), slot or looks[-1]
    for k in range(min(len(b), len(o)) // slot):
        bs, os = b[k * slot:(k + 1) * slot], o[k * slot:(k + 1) * slot]
        for j, total in enumerate(looks):
            bb, ob = bs[:total], os[:total]
            comp = compare_records(bb, ob, thresholds=thresholds, metrics=[metric], alpha=look_alpha(len(looks)))
            if not should_continue(comp, j, len(looks)):
                break
        d = comp.series[0].delta(metric) if comp.series else None
        p = None if d is None else d.test.p_value if d.test.p_worse is None else d.test.p_worse
        out.append(BlockResult(k, (bb[0].round, bb[-1].round), comp.failed, d.delta_pct if d else None, p,
                               d.test.method if d else "none", d.base.n if d else 0, d.cur.n if d else 0,
                               sum(map(is_contended, [*bb, *ob]))))
    return out


def rate(blocks: Sequence[BlockResult]) -> float | None:
    return sum(b.failed for b in blocks) / len(blocks) if blocks else None


def median_change(base: Sequence[ResultRecord], other: Sequence[ResultRecord],
                  metric: str = "execution_time_s") -> float | None:
    """The median over rounds of other/base - 1 for the same round index (interleaved rounds side by side), in %."""
    bm = {r.round: r.metric(metric) for r in _rounds(base)}
    ratios = [r.metric(metric) / bm[r.round] - 1 for r in _rounds(other)
              if r.round in bm and is_number(bm[r.round]) and bm[r.round] and is_number(r.metric(metric))]
    return statistics.median(ratios) * 100 if ratios else None


def judge_designs(a: Sequence[ResultRecord], a2: Sequence[ResultRecord], b: Sequence[ResultRecord], *, block: int,
                  slot: int, thresholds: Sequence[Threshold],
                  metric: str = "execution_time_s") -> dict[str, tuple[list[BlockResult], list[BlockResult]]]:
    """name -> (A/A, A/B comparisons) of every design on the same slots: the first `block`, 10 and `slot` rounds of
    each, and sequential (a look every `block` rounds up to `slot`)."""
    designs = {f"{n} rounds": (n, n) for n in sorted({block, 10, slot}) if n <= slot}
    if slot > block:
        designs[f"sequential {block}-{slot}"] = (block, slot)
    return {name: tuple(sequential_comparisons(a, other, rounds=first, max_rounds=most, slot=slot,
                                               thresholds=thresholds, metric=metric) for other in (a2, b))
            for name, (first, most) in designs.items()}


def design_summary(aa: Sequence[BlockResult], ab: Sequence[BlockResult]) -> dict:
    """One design's rates: false alarms and detections, and the rounds a side it used on average."""
    return {"false_alarms": sum(x.failed for x in aa), "aa_comparisons": len(aa),
            "detections": sum(x.failed for x in ab), "ab_comparisons": len(ab),
            "mean_rounds_aa": statistics.mean(x.n_base for x in aa) if aa else None,
            "mean_rounds_ab": statistics.mean(x.n_base for x in ab) if ab else None,
            "aa_blocks": [x.__dict__ for x in aa], "ab_blocks": [x.__dict__ for x in ab]}
