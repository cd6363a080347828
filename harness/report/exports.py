"""Exports of stored results: Bencher Metric Format and github-action-benchmark (schemas/exports/), a median per
metric at the newest commit of every series of one machine; CSV and JSON Lines, a row per measured run and metric."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Sequence

from ..analysis import measures
from ..records import ResultRecord, better, label, schema, series_key, unit

FORMATS = ("bencher", "github-action-benchmark", "csv", "jsonl")
#: The columns of a CSV / JSON Lines export, one row per measured run and metric.
ROW_FIELDS = ("machine", "machine_class", "commit", "dirty", "branch", "saved_as", "series", "bench", "profile",
              "test_id", "round", "timestamp", "record_id", "target_met", "metric", "value", "unit", "better")
DIRECTIONS = {"smaller": "lower", "bigger": "higher"}
GAB_TOOL = {"smaller": "customSmallerIsBetter", "bigger": "customBiggerIsBetter"}


class ExportError(ValueError):
    """Nothing to export, or a bad option; the message names the fix."""


def export_schema(fmt: str) -> dict:
    return schema("exports/" + ("bencher-bmf" if fmt == "bencher" else fmt))


def validation_errors(doc, fmt: str) -> list[str]:
    from jsonschema import Draft7Validator
    v = Draft7Validator(export_schema(fmt))
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in v.iter_errors(doc)]


def slug(metric: str) -> str:
    """A Bencher measure slug: kebab case, at most 64 characters ('execution_time_s' -> 'execution-time-s')."""
    s = re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-")
    return s[:64].rstrip("-") or "metric"


def _nothing_measured(machine: str | None) -> ExportError:
    return ExportError(f"no measured result records{' for machine ' + machine if machine else ''}: run the benches "
                       f"first (`make bench`), or point --results-dir at the folder that holds them")


def select(records: Sequence[ResultRecord], machine: str | None = None) -> list[measures.SeriesMetric]:
    """The newest commit's summary of every series of one machine (default: the newest record's machine)."""
    fp = machine or measures.current_machine(records)
    mine = measures.on_machine(records, fp)
    if not any(measures.is_measurement(r) for r in mine):
        raise _nothing_measured(fp)
    return measures.latest_summaries(mine)


def _range(s: measures.SeriesMetric) -> tuple[float, float] | None:
    return s.bounds or ((s.stats.low, s.stats.high) if s.n > 1 else None)


def to_bencher(summaries: Sequence[measures.SeriesMetric], *, include_neutral: bool = False) -> dict:
    out: dict[str, dict] = {}
    for s in summaries:
        if not include_neutral and better(s.metric) not in ("lower", "higher"):
            continue
        m: dict[str, float] = {"value": s.median}
        r = _range(s)
        if r:
            m["lower_value"], m["upper_value"] = r
        out.setdefault(s.series, {})[slug(s.metric)] = m
    return out


def to_github_action_benchmark(summaries: Sequence[measures.SeriesMetric], direction: str) -> list[dict]:
    if direction not in DIRECTIONS:
        raise ExportError(f"--direction must be smaller or bigger, not {direction!r}")
    out = []
    for s in summaries:
        if better(s.metric) != DIRECTIONS[direction]:
            continue
        item = {"name": f"{s.series} {s.metric}", "unit": unit(s.metric) or "count", "value": s.median}
        r = _range(s)
        if r:
            item["range"] = f"± {max(s.median - r[0], r[1] - s.median):.6g}"
        how = "95% interval" if s.bounds else "min..max"
        item["extra"] = (f"{label(s.metric)}; median of {s.n} run(s) at commit {s.commit}"
                         + (f"; {how} {r[0]:.6g}..{r[1]:.6g}" if r else ""))
        out.append(item)
    return out


def run_rows(records: Sequence[ResultRecord], machine: str | None = None) -> list[dict]:
    """Every measured run (of one machine, or all), one dict per metric, oldest first (ROW_FIELDS)."""
    out = []
    for r in sorted(records, key=lambda r: r.timestamp):
        if (machine and r.machine_fingerprint != machine) or not measures.is_measurement(r):
            continue
        base = {"machine": r.machine_fingerprint, "machine_class": r.machine_class, "commit": r.commit,
                "dirty": bool(r.dirty), "branch": r.branch, "saved_as": (r.extra or {}).get("saved_as"),
                "series": series_key(r), "bench": r.bench, "profile": r.profile, "test_id": r.test_id,
                "round": r.round, "timestamp": r.timestamp, "record_id": r.record_id, "target_met": r.target_met}
        out += [{**base, "metric": k, "value": v, "unit": unit(k), "better": better(k)}
                for k, v in sorted(measures.record_values(r).items())]
    return out


def export(records: Sequence[ResultRecord], fmt: str, *, direction: str | None = None,
           machine: str | None = None, include_neutral: bool = False) -> dict | list | str:
    """The export document, valid against its format's schema (else ExportError); CSV (None as an empty cell) and
    JSON Lines as text."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt in ("csv", "jsonl"):
        rows = run_rows(records, machine)
        if not rows:
            raise _nothing_measured(machine)
        if fmt == "jsonl":
            return "".join(json.dumps(row) + "\n" for row in rows)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=ROW_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    summaries = select(records, machine)
    doc = (to_bencher(summaries, include_neutral=include_neutral) if fmt == "bencher"
           else to_github_action_benchmark(summaries, direction or "smaller"))
    if not doc:
        raise ExportError(f"no metric of the stored records fits this export ({fmt}"
                          f"{', direction ' + (direction or 'smaller') if fmt != 'bencher' else ''})")
    errs = validation_errors(doc, fmt)
    if errs:
        raise ExportError(f"the {fmt} export breaks its schema: {'; '.join(errs[:5])}")
    return doc


def write(path: str | Path, doc) -> Path:
    from llm_research_bench.engine.atomic import write_json, write_text
    return write_text(path, doc) if isinstance(doc, str) else write_json(path, doc)
