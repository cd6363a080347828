"""The HTML report: one self-contained page (inline CSS, script and SVG, no network), a part per machine, newest
first. templates/report.html.j2 lays it out; this module prepares what each section shows."""
from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from markupsafe import Markup

from ..analysis import measures
from ..analysis.changepoints import default_thresholds, history_steps
from ..analysis.gate import instance_verdicts
from ..analysis.quality import QualitySummary
from ..analysis.instances import judge
from ..analysis.stats import group_by
from ..records import ResultRecord, better, is_number, is_superseded, label, series_key, spec, unit
from ..units import num
from . import TEMPLATES, charts, document, regressions
from .regressions import chart_id

if TYPE_CHECKING:
    from ..analysis.gate import InstanceVerdict
    from ..run.history import Commit

_ARMS = (("retrieval", "retrieval (early exit on)"), ("retrieval_no_early_exit", "early exit off"),
         ("single_shot", "single-shot RAG"), ("closed_book", "closed-book"),
         ("retrieval_other_claim_mode", "other claim mode"), ("retrieval_free", "free claims (no grammar)"))
#: The metrics a bench's history charts first, in this order: time, TTFT, TPOT, memory, grounded rate.
HEADLINE = ("execution_time_s", "ttft_s", "tpot_s", "memory_peak_mb", "grounded_citation_rate")
#: A bench without any headline metric (quality, breakdown) opens on this many of its charts.
FIRST_CHARTS = 4
#: A metric whose every run lies within this share of its largest value did not change: it is folded.
FLAT_SPREAD = 0.01
_LINKS = TEMPLATES.get_template("regressions.html.j2").module
TEMPLATES.globals.update(chart_id=chart_id)


def _fmt(v, name: str) -> str:
    return num(v, unit(name))


def _kv(values) -> str:
    """'claims 10, cit. valid 1.00': metrics with their value."""
    return ", ".join(f"{label(k)} {_fmt(v, k)}" for k, v in values)


def _directional(k: str) -> bool:
    return better(k) in ("lower", "higher")


def _band(recs: Sequence[ResultRecord], k: str) -> tuple | None:
    return next((b for b in (measures.budget_band(r, k) for r in recs) if b), None)


@dataclass
class _Part:
    """One machine's part: its fingerprint, its commit order, and how its commits are linked and labelled."""
    fp: str | None
    git_order: Sequence[str] | None
    commit_url: str | None
    infos: Mapping[str, "Commit"]     # commit key -> hash, date, subject

    def commit(self, rec: ResultRecord, long: bool = False) -> str:
        """A record's commit key as HTML: linked, its date and subject on hover (and after it when `long`)."""
        from ..run.environment import commit_url
        key = measures.commit_key(rec)
        return _LINKS.commit_link(key, commit_url(self.commit_url, rec.commit), self.infos.get(key), long)


def _verdict_row(v: "InstanceVerdict", recs: Sequence[ResultRecord]) -> dict:
    """One bench instance at the latest commit: its verdict, runs that met their target, memory peak against limit."""
    peaks = [p for r in recs if measures.is_measurement(r) and (p := r.metric("memory_peak_mb")) is not None]
    mem = statistics.median(peaks) if peaks else None
    cap = next(((r.budget or {}).get("memory_mb") for r in reversed(recs) if (r.budget or {}).get("memory_mb")), None)
    notes = list(dict.fromkeys(v.run_reasons))
    if v.contended:
        notes.append(f"{v.contended} of {v.attempts} attempt(s) timed on a busy machine"
                     + ("; no quiet run: time unverified" if v.time_basis == "contended" else ""))
    if not v.gated:
        notes.append("not gated (an ablation or reference bench)")
    return dict(v=v, met=sum(1 for r in recs if not r.warmup and not is_superseded(r) and r.target_met),
                memory=mem, limit=cap, memory_over=bool(mem is not None and cap and mem > cap), notes=notes,
                measured_at=max(r.timestamp for r in recs)[:16].replace("T", " "))


def _summary(mine: Sequence[ResultRecord], pg: _Part) -> dict:
    """The latest commit measured on this machine: its instances' verdicts (timed benches first), the benches last
    measured earlier, its runs' seed rates, and its runs judged as one session (the embedded session document)."""
    judged = [r for r in mine if r.outcome != "skipped"]
    order = measures.commit_order(judged, pg.git_order)
    if not order:
        return dict(link=None, rows=[], document=None)
    at = [r for r in judged if measures.commit_key(r) == order[-1]]
    by_id = {r.record_id: r for r in at}
    rows = sorted((_verdict_row(v, [by_id[i] for i in v.record_ids if i in by_id]) for v in instance_verdicts(at)),
                  key=lambda row: (not is_number(row["v"].time_s), row["v"].key, row["measured_at"]))
    shown = {row["v"].key for row in rows}
    session = judge(at)
    head = document.records_head(session.records, "research-bench report: the latest commit's runs")
    return dict(link=pg.commit(at[0], long=True), rows=rows,
                older=sorted({series_key(r) for r in mine if measures.is_measurement(r)} - shown),
                rates=[a for a in session.aggregates if a.early_exit_rate.n or a.error_rate.count],
                document=Markup(document.script_json(document.session_document(session, head))))


def _latest(latest: Mapping[str, list[ResultRecord]], pg: _Part) -> list[dict]:
    """Per profile: the newest commit's medians per series and metric (with a direction), quality numbers apart."""
    out = []
    for profile, cols in sorted(group_by(sorted(latest), lambda c: latest[c][0].profile or "(none)").items()):
        vals = {c: measures.metric_values(latest[c]) for c in cols}
        names = sorted({k for c in cols for k in vals[c] if _directional(k) and spec(k).get("source") == "telemetry"},
                       key=lambda k: (k not in ("execution_time_s", "memory_peak_mb"), k))
        shown = [c for c in cols if any(k in vals[c] for k in names)]
        own = [dict(series=c, metric=k, n=len(vals[c][k]), value=_fmt(statistics.median(vals[c][k]), k),
                    commit=pg.commit(latest[c][0]))
               for c in cols for k in sorted(vals[c]) if _directional(k) and spec(k).get("source") != "telemetry"]
        out.append(dict(name=profile, own=own, rows=[_pivot_row(latest, vals, shown, k) for k in names],
                        cols=[dict(series=c, commit=pg.commit(latest[c][0]), runs=len(latest[c]),
                                   met=sum(r.target_met for r in latest[c])) for c in shown]))
    return out


def _pivot_row(latest: Mapping, vals: dict, cols: list[str], k: str) -> dict:
    """One run metric across the series of a profile, with its budget band; a cell is red over its budget."""
    band = _band([r for c in cols for r in latest[c]], k)
    cells = []
    for c in cols:                                   # a cell per series, empty where it lacks the metric
        vs, b = vals[c].get(k), _band(latest[c], k)
        med = statistics.median(vs) if vs else None
        cells.append(vs and dict(text=_fmt(med, k), tip=f"min {_fmt(min(vs), k)} .. max {_fmt(max(vs), k)}, n = "
                                 f"{len(vs)}", fail=b is not None and b[1] is not None and med > b[1]))
    btxt = "" if not band else f"{_fmt(band[0], k) if band[0] is not None else ''} .. {_fmt(band[1], k)}"
    return dict(metric=k, band=btxt, cells=cells)


def _quality_points(recs: Sequence[ResultRecord]) -> list[tuple[str, list]]:
    """The quality chart's series: per arm, its score against its time per question, a point per record."""
    arms: dict[str, list] = defaultdict(list)
    for r in recs:
        q, c = QualitySummary.of_record(r), measures.commit_key(r)
        for arm, name in _ARMS:
            a = q.arm(arm)
            score, ci = q.score(a)
            if score is not None and a.time_per_question_s is not None:
                ci = ci or [None, None]
                arms[name].append((a.time_per_question_s, score,
                                   f"{name} @ {c}: {'ROUGE-L' if q.free_text else 'accuracy'} {score:.2f} (n {a.n}, "
                                   f"95% CI {num(ci[0], 'ratio')}..{num(ci[1], 'ratio')}), "
                                   f"{a.time_per_question_s:.1f} s/question"))
        m = q.majority
        if m:
            arms[f"majority '{m.label}'"].append(
                (0.0, m.accuracy, f"majority class '{m.label}' @ {c}: {m.accuracy:.0%} on the sample "
                                  f"({m.full_set_share:.1%} on the full set), no model time"))
    return list(arms.items())


def _quality(records: Sequence[ResultRecord], pg: _Part) -> list[dict]:
    """Per profile and corpus (bench): a chart of score vs time and a table of the newest record's arms."""
    rated = [r for r in sorted(records, key=lambda r: r.timestamp)
             if measures.is_measurement(r) and QualitySummary.of_record(r)]
    out = []
    for profile, recs in sorted(group_by(rated, lambda r: f"{r.profile or '(none)'} / {r.bench}").items()):
        q = QualitySummary.of_record(recs[-1])
        arms = [(arm, q.arms[arm], *q.score(q.arms[arm])) for arm, _ in _ARMS if arm in q.arms]
        out.append(dict(title=profile, commit=pg.commit(recs[-1]), summary=q,
                        arms=[(n, a, s, ci or [None, None]) for n, a, s, ci in arms],
                        chart=charts.scatter_chart(
                            _quality_points(recs), title=f"{profile}: accuracy (or ROUGE-L) vs time per question",
                            x_title="time per question", y_title="accuracy / ROUGE-L", x_unit="s", y_unit="ratio")))
    return out


def _breakdown_cards(series: str, b: dict) -> list[str]:
    """A breakdown record's charts: phase shares, the native time split, and its growth series (y vs x)."""
    m = b.get("metrics") or {}
    shares = [(k.replace("phase_share_", ""), v) for k, v in m.items() if k.startswith("phase_share_")]
    native = [(k.replace("_share", ""), m[k]) for k in ("prompt_eval_share", "decode_share", "generation_other_share")
              if k in m]
    out = [charts.share_bar(shares, title=f"share of wall time by phase · {series}")] if shares else []
    if native:
        out.append(charts.share_bar(native, title=f"native time split (share of wall time) · {series}"))
    points, x = b.get("series") or [], b.get("x")
    if points and x:
        ys = b.get("plot") or [k for k, v in points[0].items()
                               if k != x and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for y in ys:
            pts = [(p[x], p[y]) for p in points if isinstance(p.get(y), (int, float))]
            if len(pts) >= 2:
                out.append(charts.xy_chart([(y, pts)], title=f"{y} vs {x} · {series}", x_title=x))
    return out


def _breakdown(latest: Mapping[str, list[ResultRecord]], pg: _Part) -> dict:
    """The newest breakdown record of each series (its charts and numbers), then the engine-efficiency medians."""
    cards, notes, efficiency = [], [], []
    for series, recs in sorted(latest.items()):
        b = (recs[-1].extra or {}).get("breakdown")
        if b:
            cards += _breakdown_cards(series, b)
            notes.append(dict(series=series, rounds=None, commit=pg.commit(recs[-1]), note=b.get("how"),
                              text=_kv((k, v) for k, v in (b.get("metrics") or {}).items()
                                       if not k.startswith("phase_share_"))))
        e = next((r.extra["efficiency"] for r in reversed(recs) if (r.extra or {}).get("efficiency")), None)
        if e:
            efficiency.append(dict(series=series, rounds=len(e.get("rounds") or []), commit=pg.commit(recs[-1]),
                                   text=f"{_kv(measures.efficiency_values(recs[-1]).items())}; prefix reuse "
                                        f"(evaluated/unique) {num(e.get('prefix_reuse_ratio_median'), 'ratio')}",
                                   note=f"goals: {e['goals']}" if e.get("goals") else None))
    return dict(cards=cards, notes=notes + efficiency)


def _chart(series: str, k: str, recs: list[ResultRecord], pg: _Part) -> dict | None:
    """One metric's history chart of a series, with its runs' values (to tell a flat series) and regressions."""
    pts = measures.history(recs, series, k, pg.git_order)
    if not pts:
        return None
    u = unit(k)
    title = label(k) + (f" [{u}]" if u and u != "ratio" else "") + (f" · {k}" if label(k) != k else "")
    return dict(id=chart_id(pg.fp or "", series, k), metric=k, values=[v for p in pts for v in p.values],
                regressions=sum(1 for p in pts if p.regression and not p.indicative),
                svg=charts.history_chart(pts, title=title, unit=u, better=better(k), commits=pg.infos))


def is_flat(values: Sequence[float]) -> bool:
    """Two runs or more, all within FLAT_SPREAD of the largest magnitude (all zero counts as flat)."""
    return len(values) >= 2 and max(values) - min(values) <= FLAT_SPREAD * max(abs(v) for v in values)


def _series_history(series: str, recs: list[ResultRecord], pg: _Part, is_open: bool) -> dict:
    """One series' history: the headline charts, the changing metrics folded, the flat ones named; its commits."""
    names = sorted({k for r in recs for k in measures.record_values(r) if _directional(k)},
                   key=lambda k: (k not in ("execution_time_s", "memory_peak_mb"), spec(k).get("source", ""), k))
    cards = {k: c for k in names if (c := _chart(series, k, recs, pg))}
    head = [k for k in HEADLINE if k in cards]
    flat = [k for k in cards if k not in head and is_flat(cards[k]["values"])]
    rest = [k for k in cards if k not in head and k not in flat]
    if not head:
        head, rest = rest[:FIRST_CHARTS], rest[FIRST_CHARTS:]
    first = {measures.commit_key(r): r for r in reversed(recs)}        # each commit's first record
    return dict(series=series, id=chart_id(pg.fp or "", series, "bench"), runs=len(recs), open=is_open,
                regressions=sum(c["regressions"] for c in cards.values()), first=[cards[k] for k in head],
                more=[cards[k] for k in rest], more_text=", ".join(map(label, rest)), flat=[cards[k] for k in flat],
                flat_text=_kv((k, statistics.median(cards[k]["values"])) for k in flat),
                commits=[pg.commit(first[c], long=True) for c in measures.commit_order(recs, pg.git_order)])


def _part(mine: list[ResultRecord], pg: _Part, sid: str) -> dict:
    """One machine's part, section by section; `sid` suffixes its ids."""
    from ..analysis.recommend import recommend
    measured = [r for r in mine if measures.is_measurement(r)]
    by_series = group_by(measured, series_key)
    summary = _summary(mine, pg)
    latest = {row["v"].key for row in summary["rows"]} & set(by_series) or set(sorted(by_series)[:1])
    timed = {s for s, recs in by_series.items() if any(r.metric("execution_time_s") is not None for r in recs)}
    newest = measures.latest_commit_records(mine, pg.git_order)
    steps = history_steps(measured, default_thresholds(), git_order=pg.git_order)
    by_key = {measures.commit_key(r): r for r in measured}
    return dict(sid=sid, fp=pg.fp, classes=", ".join(sorted({r.machine_class for r in mine})), n_records=len(mine),
                n_measured=len(measured), n_commits=len(measures.commit_order(measured, pg.git_order)),
                summary=summary, charted=set(by_series), profiles=_latest(newest, pg), quality=_quality(mine, pg),
                breakdown=_breakdown(newest, pg), recommendations=recommend(mine),
                history=[_series_history(s, by_series[s], pg, s in latest)
                         for s in sorted(by_series, key=lambda s: (s not in latest, s not in timed, s))],
                regressions=regressions.html_table(
                    regressions.rows(steps, {k: c.subject for k, c in pg.infos.items()}),
                    lambda k: pg.commit(by_key[k], long=True) if k in by_key else k))


def render(records: Sequence[ResultRecord], *, machine: str | None = None, title: str = "LLM research bench report",
           generated_at: str | None = None, git_order: Sequence[str] | None = None, order_note: str | None = None,
           commit_url: str | None = None, commits: Sequence["Commit"] | None = None) -> str:
    """The report page: a part per machine (newest first), or only `machine`'s. `git_order`: full SHAs oldest first,
    None to order commits by measuring time (`order_note` says which); `commit_url`: a template linking commits
    ({commit}, {short}); `commits`: the stored commits' dates and subjects, which label them."""
    newest = {fp: max(r.timestamp for r in recs)
              for fp, recs in group_by(records, lambda r: r.machine_fingerprint).items()}
    machines = [machine] if machine else sorted(newest, key=lambda fp: newest[fp], reverse=True) or [None]
    by_sha = {c.sha: c for c in commits or ()}
    infos = {measures.commit_key(r): by_sha[r.commit] for r in records if r.commit in by_sha}
    parts = [_part(sorted(measures.on_machine(records, fp), key=lambda r: r.timestamp),
                   _Part(fp, git_order, commit_url, infos), "" if i == 0 else f"-{i + 1}")
             for i, fp in enumerate(machines)]
    return TEMPLATES.get_template("report.html.j2").render(
        title=title, parts=parts, n_records=len(records), n_machines=len(newest),
        when=generated_at or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        others=len(set(newest) - set(machines)), order_note=order_note or (
            "commits in git history order" if git_order else
            "commits ordered by the time they were measured (no git history given)")) + "\n"


def write_report(recs: Sequence[ResultRecord], out: str | Path, **kw) -> Path:
    from llm_research_bench.engine.atomic import write_text
    return write_text(out, render(recs, **kw))
