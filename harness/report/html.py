"""The HTML report: one self-contained page (inline CSS, script and SVG, no network), a part per machine, newest
first. templates/report.html.j2 lays it out; this module prepares what each section shows."""
from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..analysis import measures
from ..analysis.changepoints import default_thresholds, history_steps
from ..analysis.quality import QualitySummary
from ..records import ResultRecord, better, label, series_key, spec, unit
from ..units import num
from . import TEMPLATES, charts, document, overview, regressions
from . import Raw as _Raw
from .regressions import chart_id

if TYPE_CHECKING:
    from ..run.history import Commit

_ARMS = (("retrieval", "retrieval (early exit on)"), ("retrieval_no_early_exit", "early exit off"),
         ("single_shot", "single-shot RAG"), ("closed_book", "closed-book"),
         ("retrieval_other_claim_mode", "other claim mode"), ("retrieval_free", "free claims (no grammar)"))


def _fmt(v, name: str) -> str:
    return num(v, unit(name))


def _directional(k: str) -> bool:
    return better(k) in ("lower", "higher")


def _band(recs: Sequence[ResultRecord], k: str) -> tuple | None:
    return next((b for b in (measures.budget_band(r, k) for r in recs) if b), None)


@dataclass
class _Part:
    """One machine's part: its commit order and link template, the ids' suffix, and what each section shows."""
    git_order: Sequence[str] | None = None
    commit_url: str | None = None
    sid: str = ""
    fp: str | None = None
    classes: str = ""
    n_records: int = 0
    n_measured: int = 0
    n_commits: int = 0
    profiles: list = field(default_factory=list)
    quality: list = field(default_factory=list)
    breakdown: dict = field(default_factory=dict)
    recommendations: list = field(default_factory=list)
    history: list = field(default_factory=list)
    regressions: str = ""
    infos: Mapping[str, "Commit"] = field(default_factory=dict)     # commit key -> hash, date, subject
    summary: overview.Summary | None = None
    summary_commit: str = ""                                        # the latest commit, labelled, as HTML
    charted: set = field(default_factory=set)                       # the series with a history block
    document: _Raw | None = None                                    # the latest commit's session document, JSON

    def commit(self, rec: ResultRecord, long: bool = False) -> _Raw:
        """A record's commit key as HTML: linked, its date and subject on hover (and after it when `long`)."""
        from ..run.environment import commit_url
        key = measures.commit_key(rec)
        url, info = commit_url(self.commit_url, rec.commit), self.infos.get(key)
        tip = f' title="{escape(f"{info.date[:10]} {info.subject}")}"' if info else ""
        link = f'<a href="{escape(url)}"{tip}>{escape(key)}</a>' if url else f"<span{tip}>{escape(key)}</span>"
        if long and info:
            link += f' <span class="when">{escape(info.date[:10])}</span> <q>{escape(info.subject)}</q>'
        return _Raw(link)


def _latest(records: Sequence[ResultRecord], pg: _Part) -> list[dict]:
    """Per profile: the newest commit's medians per series and metric (with a direction), quality numbers apart."""
    latest = measures.latest_commit_records(records, pg.git_order)
    by_profile: dict[str, list[str]] = defaultdict(list)
    for series, recs in latest.items():
        by_profile[recs[0].profile or "(none)"].append(series)
    out = []
    for profile in sorted(by_profile):
        cols = sorted(by_profile[profile])
        vals: dict[str, dict[str, list[float]]] = {c: defaultdict(list) for c in cols}
        for c in cols:
            for r in latest[c]:
                for k, v in measures.record_values(r).items():
                    vals[c][k].append(v)
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


def _pivot_row(latest: dict, vals: dict, cols: list[str], k: str) -> dict:
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
    by_profile: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        if measures.is_measurement(r) and QualitySummary.of_record(r):
            by_profile[f"{r.profile or '(none)'} / {r.bench}"].append(r)
    out = []
    for profile, recs in sorted(by_profile.items()):
        recs.sort(key=lambda r: r.timestamp)
        q = QualitySummary.of_record(recs[-1])
        arms = [(arm, q.arms[arm], *q.score(q.arms[arm])) for arm, _ in _ARMS if arm in q.arms]
        out.append(dict(title=profile, commit=pg.commit(recs[-1]), summary=q,
                        arms=[(n, a, s, ci or [None, None]) for n, a, s, ci in arms],
                        chart=_Raw(charts.scatter_chart(
                            _quality_points(recs), title=f"{profile}: accuracy (or ROUGE-L) vs time per question",
                            x_title="time per question", y_title="accuracy / ROUGE-L", x_unit="s", y_unit="ratio"))))
    return out


def _breakdown_cards(series: str, b: dict) -> list[_Raw]:
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
    return [_Raw(svg) for svg in out]


def _breakdown(records: Sequence[ResultRecord], pg: _Part) -> dict:
    """The newest breakdown record of each series (its charts and numbers) and the engine-efficiency medians."""
    latest = sorted(measures.latest_commit_records(records, pg.git_order).items())
    cards, notes = [], []
    for series, recs in latest:
        b = (recs[-1].extra or {}).get("breakdown")
        if b:
            cards += _breakdown_cards(series, b)
            kv = ", ".join(f"{label(k)} {_fmt(v, k)}" for k, v in (b.get("metrics") or {}).items()
                           if not k.startswith("phase_share_"))
            notes.append(dict(series=series, rounds=None, commit=pg.commit(recs[-1]), text=kv, note=b.get("how")))
    for series, recs in latest:
        e = next((r.extra["efficiency"] for r in reversed(recs) if (r.extra or {}).get("efficiency")), None)
        if e:
            kv = ", ".join(f"{label(k)} {_fmt(v, k)}" for k, v in measures.efficiency_values(recs[-1]).items())
            notes.append(dict(series=series, rounds=len(e.get("rounds") or []), commit=pg.commit(recs[-1]),
                              text=f"{kv}; prefix reuse (evaluated/unique) "
                                   f"{num(e.get('prefix_reuse_ratio_median'), 'ratio')}",
                              note=f"goals: {e['goals']}" if e.get("goals") else None))
    return dict(cards=cards, notes=notes)


def bench_id(machine: str | None, series: str) -> str:
    """The id of a bench's history block: what the verdicts table and the bench picker point at."""
    return chart_id(machine or "", series, "bench")


TEMPLATES.globals.update(bench_id=bench_id)


def _chart(series: str, k: str, recs: list[ResultRecord], pg: _Part) -> dict | None:
    """One metric's history chart of a series, with its runs' values (to tell a flat series) and regressions."""
    pts = measures.history(recs, series, k, pg.git_order)
    if not pts:
        return None
    u = unit(k)
    title = label(k) + (f" [{u}]" if u and u != "ratio" else "") + (f" · {k}" if label(k) != k else "")
    return dict(id=chart_id(pg.fp or "", series, k), metric=k, values=[v for p in pts for v in p.values],
                regressions=sum(1 for p in pts if p.regression and not p.indicative),
                svg=_Raw(charts.history_chart(pts, title=title, unit=u, better=better(k), commits=pg.infos)))


def _series_history(series: str, recs: list[ResultRecord], pg: _Part, is_open: bool) -> dict:
    """One series' history: headline charts, then the changing metrics, then the flat ones; and its commits."""
    names = sorted({k for r in recs for k in measures.record_values(r) if _directional(k)},
                   key=lambda k: (k not in ("execution_time_s", "memory_peak_mb"), spec(k).get("source", ""), k))
    cards = {k: c for k in names if (c := _chart(series, k, recs, pg))}
    values = {k: c["values"] for k, c in cards.items()}
    head, rest, flat = overview.chart_groups(list(cards), values)
    first: dict[str, ResultRecord] = {}
    for r in recs:
        first.setdefault(measures.commit_key(r), r)
    return dict(series=series, id=bench_id(pg.fp, series), runs=len(recs), open=is_open,
                regressions=sum(c["regressions"] for c in cards.values()), first=[cards[k] for k in head],
                more=[cards[k] for k in rest], more_text=", ".join(map(label, rest)), flat=[cards[k] for k in flat],
                flat_text=overview.flat_text(flat, values),
                commits=[pg.commit(first[c], long=True) for c in measures.commit_order(recs, pg.git_order)])


def _part(mine: list[ResultRecord], pg: _Part) -> _Part:
    """Fill one machine's part from its records, section by section."""
    from ..analysis.recommend import recommend
    measured = [r for r in mine if measures.is_measurement(r)]
    by_series: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in measured:
        by_series[series_key(r)].append(r)
    pg.classes = ", ".join(sorted({r.machine_class for r in mine}))
    pg.n_records, pg.n_measured = len(mine), len(measured)
    pg.n_commits = len(measures.commit_order(measured, pg.git_order))
    pg.summary = overview.summary(mine, pg.git_order, pg.infos)
    pg.summary_commit = next((pg.commit(r, long=True) for r in mine if measures.commit_key(r) == pg.summary.commit), "")
    if pg.summary.session is not None:
        runs = pg.summary.session.records
        pg.document = _Raw(document.script_json(document.session_document(
            pg.summary.session, document.records_head(runs, "research-bench report: the latest commit's runs"))))
    pg.charted = set(by_series)
    pg.profiles, pg.quality, pg.breakdown = _latest(mine, pg), _quality(mine, pg), _breakdown(mine, pg)
    pg.recommendations = recommend(mine)
    latest = {row.series for row in pg.summary.rows} & set(by_series) or set(sorted(by_series)[:1])
    timed = {s for s, recs in by_series.items() if any(r.metric("execution_time_s") is not None for r in recs)}
    pg.history = [_series_history(s, by_series[s], pg, s in latest)
                  for s in sorted(by_series, key=lambda s: (s not in latest, s not in timed, s))]
    steps = history_steps(measured, default_thresholds(), git_order=pg.git_order)
    by_key = {measures.commit_key(r): r for r in measured}
    pg.regressions = _Raw(regressions.html_table(
        regressions.rows(steps, {k: c.subject for k, c in pg.infos.items()}),
        lambda k: pg.commit(by_key[k], long=True) if k in by_key else k))
    return pg


def render(records: Sequence[ResultRecord], *, machine: str | None = None, title: str = "LLM research bench report",
           generated_at: str | None = None, git_order: Sequence[str] | None = None, order_note: str | None = None,
           commit_url: str | None = None, commits: Sequence["Commit"] | None = None) -> str:
    """The report page as one HTML string: a part per machine (newest first), or only `machine`'s.
    `git_order`: full SHAs oldest first (run.environment.git_order), None to order commits by measuring time;
    `order_note` says which; `commit_url`: a template linking commits ({commit}, {short}); `commits`: the stored
    commits' dates and subjects (run.history.describe), which label them (the short hash alone without)."""
    newest: dict[str, str] = {}
    for r in records:
        newest[r.machine_fingerprint] = max(newest.get(r.machine_fingerprint, ""), r.timestamp)
    machines = [machine] if machine else sorted(newest, key=lambda fp: newest[fp], reverse=True) or [None]
    infos = overview.commit_infos(records, commits)
    parts = [_part(sorted(measures.on_machine(records, fp), key=lambda r: r.timestamp),
                   _Part(git_order, commit_url, "" if i == 0 else f"-{i + 1}", fp, infos=infos))
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
