"""Exports of stored results for continuous-benchmarking services.

- Bencher Metric Format (BMF): {benchmark: {measure-slug: {value, lower_value?, upper_value?}}}
  (schemas/exports/bencher-bmf.schema.json; upload with `bencher run --adapter json --file FILE`).
- github-action-benchmark custom tools: [{name, unit, value, range?, extra?}], one direction per file
  (`customSmallerIsBetter` for --direction smaller, `customBiggerIsBetter` for bigger;
  schemas/exports/github-action-benchmark.schema.json).
- CSV and JSON Lines: the measured runs themselves, one row per run and metric (ROW_FIELDS), every machine
  unless --machine names one: for spreadsheets, pandas or a database.

What is exported: for each series (bench + profile) of one machine (by default the machine of the newest
record), the records of its newest commit; per metric the median over those records, with min/max (or the
record's own interval, e.g. an accuracy's 95 % Wilson interval) as the range. Metrics and their direction
come from the schemas (harness.measures); by default only metrics with a direction (x-better lower/higher).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .. import records as R
from ..analysis import measures
from ..records import ResultRecord

EXPORT_SCHEMAS = R.SCHEMAS_DIR / "exports"
FORMATS = ("bencher", "github-action-benchmark", "csv", "jsonl")
#: The columns of a CSV / JSON Lines export, one row per measured run and metric.
ROW_FIELDS = ("machine", "machine_class", "commit", "dirty", "branch", "saved_as", "series", "bench", "profile",
              "test_id", "round", "timestamp", "record_id", "target_met", "metric", "value", "unit", "better")
DIRECTIONS = {"smaller": "lower", "bigger": "higher"}
GAB_TOOL = {"smaller": "customSmallerIsBetter", "bigger": "customBiggerIsBetter"}


class ExportError(ValueError):
    """Nothing to export, or a bad option; the message names the fix."""


@lru_cache(maxsize=None)
def export_schema(fmt: str) -> dict:
    name = {"bencher": "bencher-bmf", "github-action-benchmark": "github-action-benchmark"}[fmt]
    return json.loads((EXPORT_SCHEMAS / f"{name}.schema.json").read_text())


def validation_errors(doc, fmt: str) -> list[str]:
    from jsonschema import Draft7Validator
    v = Draft7Validator(export_schema(fmt))
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in v.iter_errors(doc)]


def slug(metric: str) -> str:
    """A Bencher measure slug: kebab case, at most 64 characters ('execution_time_s' -> 'execution-time-s')."""
    s = re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-")
    return s[:64].rstrip("-") or "metric"


def select(records: Sequence[ResultRecord], machine: str | None = None) -> list[measures.SeriesMetric]:
    """The newest commit's summary of every series of one machine (default: the newest record's machine)."""
    fp = machine or measures.current_machine(records)
    mine = measures.on_machine(records, fp)
    if not any(measures.is_measurement(r) for r in mine):
        raise ExportError(f"no measured result records{' for machine ' + fp if fp else ''}: run the benches "
                          f"first (`make bench`), or point --results-dir at the folder that holds them")
    return measures.latest_summaries(mine)


def _wanted(metric: str, include_neutral: bool, direction: str | None = None) -> bool:
    b = R.better(metric)
    if direction is not None:
        return b == direction
    return include_neutral or b in ("lower", "higher")


def _range(s: measures.SeriesMetric) -> tuple[float, float] | None:
    if s.bounds:
        return s.bounds
    if s.n > 1:
        return s.stats.low, s.stats.high
    return None


def to_bencher(summaries: Sequence[measures.SeriesMetric], *, include_neutral: bool = False) -> dict:
    out: dict[str, dict] = {}
    for s in summaries:
        if not _wanted(s.metric, include_neutral):
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
        if not _wanted(s.metric, False, DIRECTIONS[direction]):
            continue
        item = {"name": f"{s.series} {s.metric}", "unit": R.unit(s.metric) or "count", "value": s.median}
        r = _range(s)
        if r:
            item["range"] = f"± {max(s.median - r[0], r[1] - s.median):.6g}"
        how = "95% interval" if s.bounds else "min..max"
        item["extra"] = (f"{R.label(s.metric)}; median of {s.n} run(s) at commit {s.commit}"
                         + (f"; {how} {r[0]:.6g}..{r[1]:.6g}" if r else ""))
        out.append(item)
    return out


def run_rows(records: Sequence[ResultRecord], machine: str | None = None,
             include_neutral: bool = True) -> list[dict]:
    """Every measured run (of one machine, or all), one dict per metric, oldest first (ROW_FIELDS)."""
    out = []
    for r in sorted(records, key=lambda r: r.timestamp):
        if (machine and r.machine_fingerprint != machine) or not measures.is_measurement(r):
            continue
        base = {"machine": r.machine_fingerprint, "machine_class": r.machine_class, "commit": r.commit,
                "dirty": bool(r.dirty), "branch": r.branch, "saved_as": (r.extra or {}).get("saved_as"),
                "series": R.series_key(r), "bench": r.bench, "profile": r.profile, "test_id": r.test_id,
                "round": r.round, "timestamp": r.timestamp, "record_id": r.record_id, "target_met": r.target_met}
        for k, v in sorted(measures.record_values(r).items()):
            if _wanted(k, include_neutral):
                out.append({**base, "metric": k, "value": v, "unit": R.unit(k), "better": R.better(k)})
    return out


def to_csv(rows: Sequence[dict]) -> str:
    import csv
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_FIELDS), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row[k] is None else row[k]) for k in ROW_FIELDS})
    return buf.getvalue()


def to_jsonl(rows: Sequence[dict]) -> str:
    return "".join(json.dumps({k: row[k] for k in ROW_FIELDS}) + "\n" for row in rows)


def export(records: Sequence[ResultRecord], fmt: str, *, direction: str | None = None,
           machine: str | None = None, include_neutral: bool = False) -> dict | list | str:
    """The export document, validated against its format's schema (ExportError when it would be invalid);
    CSV and JSON Lines as text."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt in ("csv", "jsonl"):
        rows = run_rows(records, machine)
        if not rows:
            raise ExportError(f"no measured result records{' for machine ' + machine if machine else ''}: run "
                              f"the benches first (`make bench`), or point --results-dir at the folder that "
                              f"holds them")
        return to_csv(rows) if fmt == "csv" else to_jsonl(rows)
    summaries = select(records, machine)
    if fmt == "bencher":
        doc: dict | list = to_bencher(summaries, include_neutral=include_neutral)
    else:
        doc = to_github_action_benchmark(summaries, direction or "smaller")
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
