"""The session document (schemas/session.schema.json): a judged session and where its runs come from, as JSON;
--research-json writes it for a pytest session, and the HTML report embeds one per machine."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

from ..analysis.session import pooled
from ..analysis.instances import SessionSummary
from ..records import RECORD_VERSION, ResultRecord

#: The session document's version (schemas/session.schema.json); 2 has the seed's rates (`benches`, `rates`).
SESSION_FORMAT_VERSION = 2


@dataclass(frozen=True)
class SessionHead:
    """Where a document's runs come from: plugin, session, commit, machine, options and time (ISO 8601)."""
    plugin_version: str
    session_id: str
    saved_as: str | None
    datetime: str
    commit: dict
    machine: dict
    machine_class: str | None
    options: dict


def records_head(records: Sequence[ResultRecord], source: str) -> SessionHead:
    """The head of a document over stored records: the newest run's; `options` lists every session of the runs."""
    newest = max(records, key=lambda r: r.timestamp)
    sessions = sorted({s for r in records if (s := (r.extra or {}).get("session_id"))})
    return SessionHead(newest.plugin_version, (newest.extra or {}).get("session_id") or "",
                       (newest.extra or {}).get("saved_as"), newest.timestamp,
                       {"id": newest.commit, "dirty": newest.dirty, "branch": newest.branch},
                       {"fingerprint": newest.machine_fingerprint}, newest.machine_class,
                       {"source": source, "sessions": sessions})


def session_document(summary: SessionSummary, head: SessionHead) -> dict:
    """`summary` as one JSON document, valid against schemas/session.schema.json."""
    from .comparison import regression_lines
    comp = summary.comparison
    return {
        "format": "research-bench-session", "format_version": SESSION_FORMAT_VERSION,
        "record_version": RECORD_VERSION, **asdict(head), "passed": not summary.failed,
        "instances": [{"test_id": i.test_id, "bench": i.bench, "profile": i.profile, "runs": i.runs,
                       "warmups": i.warmups, "target_met": i.target_met, "gated": i.gated, "reasons": i.reasons,
                       "time_median_s": i.time.median, "time_iqr_s": i.time.iqr, "time_budget_s": i.time_upper,
                       "memory_peak_mb": i.memory_peak, "memory_limit_mb": i.memory_limit,
                       "metrics": dict(i.metrics)} for i in summary.instances],
        "missed_targets": [rid for v in summary.missed for rid in v.record_ids],
        "unverified": [{"test_id": v.test_id, "profile": v.profile, "time_s": v.time_s, "time_upper_s": v.time_upper_s,
                        "record_ids": v.record_ids} for v in summary.unverified],
        "unverified_policy": summary.unverified_policy,
        "baseline_note": summary.baseline_note,
        "benches": [asdict(a) for a in summary.aggregates],
        "rates": {k: asdict(v) for k, v in pooled(summary.aggregates).items()},
        "comparison": None if comp is None else {"baseline": comp.baseline, "current": comp.current,
                                                 "regressions": regression_lines(comp),
                                                 "rates": [asdict(d) for d in comp.rates]},
        "records": [r.as_dict() for r in summary.records],
    }


def script_json(doc: dict) -> str:
    """`doc` as JSON inside an HTML <script> element: '<' as \\u003c and '/' as \\/, so that no value ends the element
    or reads as markup or a link (a record's telemetry names its backend's URL); JSON.parse reads it unchanged."""
    return json.dumps(doc, default=str, separators=(",", ":")).replace("<", "\\u003c").replace("/", "\\/")
