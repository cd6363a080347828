"""A session's judged summary (pure): its records, their per-instance summaries, the gate's failing and unverified
instance verdicts, the comparison with a baseline where one was made, and the seed's rates per bench x profile.
The plugin's session end judges a pytest session's records; the HTML report judges each machine's latest commit's
runs; the terminal summary and the session document (report/document.py) read the result."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..records import ResultRecord
from .compare import Comparison
from .gate import DEFAULT_UNVERIFIED, InstanceVerdict, failing, instance_verdicts, unverified
from .instances import InstanceSummary, summarize_instances
from .session import BenchAggregate, aggregates


@dataclass
class SessionSummary:
    records: list[ResultRecord]
    instances: list[InstanceSummary]
    missed: list[InstanceVerdict] = field(default_factory=list)      # gated instance runs that fail the session
    unverified: list[InstanceVerdict] = field(default_factory=list)  # gated ones resting on contended runs only
    unverified_policy: str = DEFAULT_UNVERIFIED
    comparison: Comparison | None = None
    baseline_note: str | None = None          # why there is no comparison, or what the baseline is
    compare_requested: bool = False
    store_skipped: list[str] = field(default_factory=list)     # what reading the store left out, one line a kind
    unsaved: int = 0                                            # records the store could not take (in a fallback)
    aggregates: list[BenchAggregate] = field(default_factory=list)   # the seed's rates per bench x profile

    @property
    def regressions(self) -> list:
        return self.comparison.regressions if self.comparison is not None and self.compare_requested else []

    @property
    def failed(self) -> bool:
        return bool(self.missed or self.regressions)


def judge(records: Sequence[ResultRecord], unverified_policy: str = DEFAULT_UNVERIFIED,
          compare_requested: bool = False) -> SessionSummary:
    """`records` judged: per-instance summaries, the gate's verdicts under `unverified_policy` (pass | fail) and
    the seed's rates; no comparison (the caller adds one where it has a baseline)."""
    verdicts = instance_verdicts(records)
    return SessionSummary(list(records), summarize_instances(records), failing(verdicts, unverified_policy),
                          unverified(verdicts), unverified_policy, compare_requested=compare_requested,
                          aggregates=aggregates(records))
