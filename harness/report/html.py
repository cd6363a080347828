"""The HTML report: one self-contained page (inline CSS and SVG, no network). One part per machine, newest
first, each with the latest results per profile, quality vs time, the performance breakdown, recommendations and
each series' history across commits (in git's order when known). An inline script writes on <body> how many
charts and tables the browser laid out, for the headless-browser test."""
from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Sequence

from ..analysis import measures
from ..analysis.quality import QualitySummary
from ..records import ResultRecord, better, label, series_key, spec, unit
from ..units import num
from . import charts

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 14px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}tr.fail td,td.fail{background:#fdecea}
th.series{max-width:130px;white-space:normal;word-break:break-all;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #eee;border-radius:4px;padding:2px}
svg.chart{background:#fff}svg .axis{stroke:#888}svg .grid{stroke:#eee}svg .tick{font-size:10px;fill:#555}
svg .ctitle{font-size:11px;font-weight:600;fill:#222}svg .median{fill:none;stroke:#1f77b4;stroke-width:1.5}
svg circle.pt{fill:#1f77b4;fill-opacity:.75}svg circle.pt.fail{fill:#d62728}
svg rect.band{fill:#2ca02c;fill-opacity:.12}svg .regression{fill:#d62728}svg .improvement{fill:#2ca02c}
svg .indicative{fill:#fff;stroke-width:1.5}svg .regression.indicative{stroke:#d62728}
svg .improvement.indicative{stroke:#2ca02c}
.muted{color:#777}.warn{color:#b00}.info{color:#555}ul.recs li{margin:4px 0}
details>summary{cursor:pointer;font-weight:600;margin:8px 0}
"""

CHECK_JS = """
(function(){
  var n=0, svgs=document.querySelectorAll('svg.chart');
  svgs.forEach(function(s){var r=s.getBoundingClientRect(), marks=s.querySelectorAll('.pt,.median,.band');
    var ok=r.width>0&&r.height>0&&marks.length>0;
    marks.forEach(function(m){try{var b=m.getBBox(); if(!(b.width>0||b.height>0)) ok=false;}catch(e){ok=false;}});
    if(ok) n++;});
  var t=0; document.querySelectorAll('table').forEach(function(x){if(x.rows.length>1&&x.getBoundingClientRect().height>0) t++;});
  document.body.setAttribute('data-charts-total', svgs.length);
  document.body.setAttribute('data-charts-rendered', n);
  document.body.setAttribute('data-tables-rendered', t);
})();
"""


def _e(x) -> str:
    return escape(str(x))


def _fmt(v, name: str) -> str:
    return num(v, unit(name))


def _card(svg: str) -> str:
    return f'<div class="card">{svg}</div>'


def _directional(k: str) -> bool:
    return better(k) in ("lower", "higher")


def _metric_cell(k: str) -> str:
    return (f'<td class="l" title="{_e(spec(k).get("description", ""))}">{_e(label(k))} '
            f'<span class="muted">{_e(k)}</span></td>')


def _band(recs: Sequence[ResultRecord], k: str) -> tuple | None:
    return next((b for b in (measures.budget_band(r, k) for r in recs) if b), None)


@dataclass
class _Page:
    """What every section of one machine's part needs: the commit order, the link template, the ids' suffix."""
    git_order: Sequence[str] | None = None
    commit_url: str | None = None
    sid: str = ""

    def commit(self, rec: ResultRecord) -> str:
        """A record's commit key as HTML, linked when a URL template is set."""
        from ..run.environment import commit_url
        key = measures.commit_key(rec)
        url = commit_url(self.commit_url, rec.commit)
        return f'<a href="{_e(url)}">{_e(key)}</a>' if url else _e(key)


def _chart_title(k: str) -> str:
    u = unit(k)
    return label(k) + (f" [{u}]" if u and u != "ratio" else "") + (f" · {k}" if label(k) != k else "")


def _latest_tables(records: Sequence[ResultRecord], pg: _Page) -> list[str]:
    """Per profile: a table of run metrics (a column per series at its newest commit, a cell the median over
    that commit's runs) and a table of the quality and breakdown numbers; only metrics with a direction."""
    latest = measures.latest_commit_records(records, pg.git_order)
    by_profile: dict[str, list[str]] = defaultdict(list)
    for series, recs in latest.items():
        by_profile[recs[0].profile or "(none)"].append(series)
    out = [f'<section id="latest{pg.sid}"><h2>Latest results per profile</h2>',
           '<p class="muted">Newest commit of each series (bench) on this machine: the median over that commit\'s '
           'runs (hover a cell for min..max and n). Only metrics with a direction are listed. The budget column '
           'is the band the harness held time and memory to; a red cell missed it.</p>']
    if not latest:
        out.append("<p>No measured records yet.</p>")
    for profile in sorted(by_profile):
        cols = sorted(by_profile[profile])
        vals: dict[str, dict[str, list[float]]] = {c: defaultdict(list) for c in cols}
        for c in cols:
            for r in latest[c]:
                for k, v in measures.record_values(r).items():
                    vals[c][k].append(v)
        run_names = sorted({k for c in cols for k in vals[c] if _directional(k) and spec(k).get("source") == "telemetry"},
                           key=lambda k: (k not in ("execution_time_s", "memory_peak_mb"), k))
        out.append(f'<h3>Profile {_e(profile)}: run metrics</h3>')
        out += _pivot(latest, vals, [c for c in cols if any(k in vals[c] for k in run_names)], run_names, pg)
        own = [(c, k) for c in cols for k in sorted(vals[c]) if _directional(k) and spec(k).get("source") != "telemetry"]
        if own:
            out.append(f'<h3>Profile {_e(profile)}: quality and breakdown numbers</h3>'
                       '<table class="latest"><tr><th class="l">series</th><th class="l">metric</th><th>value</th>'
                       '<th>better</th><th class="l">commit</th></tr>')
            out += [f'<tr><td class="l">{_e(c)}</td>{_metric_cell(k)}<td title="n = {len(vals[c][k])}">'
                    f'{_e(_fmt(statistics.median(vals[c][k]), k))}</td><td>{_e(better(k))}</td><td class="l">'
                    f'{pg.commit(latest[c][0])}</td></tr>' for c, k in own] + ["</table>"]
    return out + ["</section>"]


def _pivot(latest: dict, vals: dict, cols: list[str], names: list[str], pg: _Page) -> list[str]:
    """The run metrics of one profile: a row per metric with its budget band, a column per series."""
    if not cols:
        return ['<p class="muted">No run telemetry in these series.</p>']
    head = "".join(f'<th class="series">{_e(c)}</th>' for c in cols)
    out = [f'<div style="overflow-x:auto"><table class="latest">'
           f'<tr><th class="l">metric</th><th>better</th><th class="l">budget</th>{head}</tr>',
           '<tr><td class="l muted">commit · runs · target met</td><td></td><td></td>' + "".join(
               f'<td class="muted">{pg.commit(latest[c][0])} · {len(latest[c])} · '
               f'{sum(r.target_met for r in latest[c])}/{len(latest[c])}</td>' for c in cols) + "</tr>"]
    for k in names:
        band = _band([r for c in cols for r in latest[c]], k)
        btxt = "" if not band else f"{_fmt(band[0], k) if band[0] is not None else ''} .. {_fmt(band[1], k)}"
        cells = []
        for c in cols:
            vs = vals[c].get(k)
            if not vs:
                cells.append("<td></td>")
                continue
            med, b = statistics.median(vs), _band(latest[c], k)
            over = b is not None and b[1] is not None and med > b[1]
            tip = f"min {_fmt(min(vs), k)} .. max {_fmt(max(vs), k)}, n = {len(vs)}"
            cells.append(f'<td{" class=fail" if over else ""} title="{_e(tip)}">{_e(_fmt(med, k))}</td>')
        out.append(f'<tr>{_metric_cell(k)}<td>{_e(better(k))}</td><td class="l">{_e(btxt)}</td>{"".join(cells)}</tr>')
    return out + ["</table></div>"]


_ARMS = (("retrieval", "retrieval (early exit on)"), ("retrieval_no_early_exit", "early exit off"),
         ("single_shot", "single-shot RAG"), ("closed_book", "closed-book"))


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


def _quality_table(title: str, rec: ResultRecord, pg: _Page) -> str:
    """The newest record's arms, majority baseline and early-exit trade-off."""
    q = QualitySummary.of_record(rec)
    rows = []
    for arm, _ in _ARMS:
        a = q.arms.get(arm)
        if a is None:
            continue
        score, ci = q.score(a)
        ci = ci or [None, None]
        cells = [(a.grounded_citation_rate, "ratio"), (a.citation_validity, "ratio"), (a.citation_precision, "ratio"),
                 (a.context_gold_recall, "ratio"), (a.claims_per_question, ""), (a.tokens_per_question, ""),
                 (a.time_per_question_s, "s")]
        rows.append(f'<tr><td class="l">{_e(arm)}</td><td>{a.n}</td><td>{num(score, "ratio")}</td>'
                    f'<td>{num(ci[0], "ratio")}..{num(ci[1], "ratio")}</td>'
                    + "".join(f"<td>{num(v, u)}</td>" for v, u in cells) + "</tr>")
    m, ee = q.majority, q.early_exit
    if m:
        rows.append(f'<tr><td class="l">majority \'{_e(m.label)}\'</td><td>{m.n}</td><td>{num(m.accuracy, "ratio")}'
                    f'</td><td colspan="8" class="l">{m.full_set_share:.1%} of the {m.full_set_n} labelled questions'
                    '</td></tr>')
    return (f'<h3>{_e(title)} @ {pg.commit(rec)}: {q.sample_size} questions, seed {q.seed}</h3>'
            '<table class="quality"><tr><th class="l">arm</th><th>n</th><th>accuracy / ROUGE-L</th><th>95% CI</th>'
            '<th>cit. grounded</th><th>cit. valid</th><th>cit. precision</th><th>gold in ctx</th><th>claims/q</th>'
            '<th>tokens/q</th><th>time/q</th></tr>' + "".join(rows) + "</table>"
            f'<p>Early exit on vs off ({ee.n} paired questions; fired in {ee.fired}): tokens {ee.tokens_off} -> '
            f'{ee.tokens_on} (saved {num(ee.tokens_saved_share, "ratio")}), accuracy {num(ee.accuracy_off, "ratio")} '
            f'-> {num(ee.accuracy_on, "ratio")} (change {num(ee.accuracy_change, "ratio")}, exact McNemar p = '
            f'{num(ee.p_value, "ratio")}).</p>')


def _quality(records: Sequence[ResultRecord], pg: _Page) -> list[str]:
    """One chart of score vs time and one table per profile and corpus (bench)."""
    qrecs = [r for r in records if measures.is_measurement(r) and QualitySummary.of_record(r)]
    out = [f'<section id="quality{pg.sid}"><h2>Answer quality vs time per profile and corpus</h2>']
    if not qrecs:
        out.append('<p class="muted">No quality bench records yet (<code>make quality</code>).</p></section>')
        return out
    by_profile: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in qrecs:
        by_profile[f"{r.profile or '(none)'} / {r.bench}"].append(r)
    out.append('<div class="grid">')
    tables = []
    for profile, recs in sorted(by_profile.items()):
        recs.sort(key=lambda r: r.timestamp)
        out.append(_card(charts.scatter_chart(
            _quality_points(recs), title=f"{profile}: accuracy (or ROUGE-L) vs time per question",
            x_title="time per question", y_title="accuracy / ROUGE-L", x_unit="s", y_unit="ratio")))
        tables.append(_quality_table(profile, recs[-1], pg))
    return out + ["</div>", *tables, "</section>"]


def _breakdown_cards(series: str, b: dict) -> list[str]:
    """A breakdown record's charts: phase shares, the native time split, and its growth series (y vs x)."""
    m = b.get("metrics") or {}
    shares = [(k.replace("phase_share_", ""), v) for k, v in m.items() if k.startswith("phase_share_")]
    native = [(k.replace("_share", ""), m[k]) for k in ("prompt_eval_share", "decode_share", "generation_other_share")
              if k in m]
    out = [_card(charts.share_bar(shares, title=f"share of wall time by phase · {series}"))] if shares else []
    if native:
        out.append(_card(charts.share_bar(native, title=f"native time split (share of wall time) · {series}")))
    points, x = b.get("series") or [], b.get("x")
    if points and x:
        ys = b.get("plot") or [k for k, v in points[0].items()
                               if k != x and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for y in ys:
            pts = [(p[x], p[y]) for p in points if isinstance(p.get(y), (int, float))]
            if len(pts) >= 2:
                out.append(_card(charts.xy_chart([(y, pts)], title=f"{y} vs {x} · {series}", x_title=x)))
    return out


def _breakdown(records: Sequence[ResultRecord], pg: _Page) -> list[str]:
    latest = measures.latest_commit_records(records, pg.git_order)
    items = [(s, recs[-1]) for s, recs in sorted(latest.items()) if (recs[-1].extra or {}).get("breakdown")]
    eff = [(s, recs) for s, recs in sorted(latest.items()) if any((r.extra or {}).get("efficiency") for r in recs)]
    out = [f'<section id="breakdown{pg.sid}"><h2>Performance breakdown</h2>']
    if not items and not eff:
        out.append('<p class="muted">No breakdown bench records yet (<code>make breakdown</code>).</p></section>')
        return out
    out.append('<div class="grid">')
    notes = []
    for series, r in items:
        b = r.extra["breakdown"]
        out += _breakdown_cards(series, b)
        kv = ", ".join(f"{label(k)} {_fmt(v, k)}" for k, v in (b.get("metrics") or {}).items()
                       if not k.startswith("phase_share_"))
        notes.append(f'<li><b>{_e(series)}</b> @ {pg.commit(r)}: {_e(kv) or "—"}'
                     f'{"<br><span class=muted>" + _e(b["how"]) + "</span>" if b.get("how") else ""}</li>')
    for series, recs in eff:
        e = next(r.extra["efficiency"] for r in reversed(recs) if (r.extra or {}).get("efficiency"))
        kv = ", ".join(f"{label(k)} {_fmt(v, k)}" for k, v in measures.efficiency_values(recs[-1]).items())
        goals = e.get("goals") or {}
        notes.append(f'<li><b>{_e(series)}</b> (engine vs raw llama-cpp-python, {len(e.get("rounds") or [])} rounds, '
                     f'medians) @ {pg.commit(recs[-1])}: {_e(kv)}; prefix reuse (evaluated/unique) '
                     f'{_e(num(e.get("prefix_reuse_ratio_median"), "ratio"))}'
                     + (f'<br><span class=muted>goals: {_e(goals)}</span>' if goals else "") + '</li>')
    return out + ["</div><ul>" + "".join(notes) + "</ul></section>"]


def _recommendations(records: Sequence[ResultRecord], pg: _Page) -> list[str]:
    from ..analysis.recommend import recommend
    recs = recommend(records)
    body = ('<ul class="recs">' + "".join(f'<li class="{_e(r.severity)}"><b>{_e(r.rule)}</b> [{_e(r.severity)}] '
                                          f'{_e(r.message)}</li>' for r in recs) + "</ul>" if recs
            else '<p class="muted">No rule fired on the newest results.</p>')
    return [f'<section id="recommendations{pg.sid}"><h2>Recommendations</h2>', body, "</section>"]


def _series_history(series: str, recs: list[ResultRecord], pg: _Page, open_: bool) -> str:
    """One series' history: a chart per metric with a direction, in a collapsible block."""
    names = sorted({k for r in recs for k in measures.record_values(r) if _directional(k)},
                   key=lambda k: (k not in ("execution_time_s", "memory_peak_mb"), spec(k).get("source", ""), k))
    order = measures.commit_order(recs, pg.git_order)
    regress, cards = 0, []
    for k in names:
        pts = measures.history(recs, series, k, pg.git_order)
        if pts:
            regress += sum(1 for p in pts if p.regression and not p.indicative)
            cards.append(_card(charts.history_chart(pts, title=_chart_title(k), unit=unit(k), better=better(k))))
    first: dict[str, ResultRecord] = {}
    for r in recs:
        first.setdefault(measures.commit_key(r), r)
    commits = " → ".join(pg.commit(first[c]) for c in order)
    return (f'<details{" open" if open_ else ""}><summary>{_e(series)}: {len(recs)} runs over {len(order)} '
            f'commit(s), {regress} regression mark(s)</summary><p class="muted commits">commits, oldest first: '
            f'{commits}</p><div class="grid">{"".join(cards)}</div></details>')


def _history(records: Sequence[ResultRecord], pg: _Page) -> list[str]:
    by_series: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        if measures.is_measurement(r):
            by_series[series_key(r)].append(r)
    out = [f'<section id="history{pg.sid}"><h2>History across commits (this machine)</h2>',
           '<p class="muted">One chart per metric with a direction: dots are runs (red: the run missed its target), '
           'the line joins the per-commit medians, the green band is the budget, a red triangle marks a regression '
           '(the median moved the wrong way by more than 5 % against the previous commit and the noise test of '
           '<code>--research-compare</code> says it is real) and a green one an improvement; hollow triangles are indicative '
           '(one run on a side, no noise test); hover for the numbers.</p>']
    out += [_series_history(s, recs, pg, i == 0) for i, (s, recs) in enumerate(sorted(by_series.items()))]
    return out + (["<p>No measured records yet.</p>"] if not by_series else []) + ["</section>"]


def _machine_part(mine: list[ResultRecord], fp: str | None, pg: _Page) -> list[str]:
    classes = sorted({r.machine_class for r in mine})
    commits = measures.commit_order([r for r in mine if measures.is_measurement(r)], pg.git_order)
    head = (f'<h2 class="machine" id="machine{pg.sid}">Machine <code>{_e(fp)}</code> ({_e(", ".join(classes) or "?")})'
            f'</h2><p>{len(mine)} records ({sum(measures.is_measurement(r) for r in mine)} measured), '
            f'{len(commits)} commit(s).</p>'
            f'<nav><a href="#latest{pg.sid}">latest</a> · <a href="#quality{pg.sid}">quality</a> · '
            f'<a href="#breakdown{pg.sid}">breakdown</a> · <a href="#recommendations{pg.sid}">recommendations</a> · '
            f'<a href="#history{pg.sid}">history</a></nav>')
    return [head, *_latest_tables(mine, pg), *_quality(mine, pg), *_breakdown(mine, pg),
            *_recommendations(mine, pg), *_history(mine, pg)]


def render(records: Sequence[ResultRecord], *, machine: str | None = None, title: str = "LLM research bench report",
           generated_at: str | None = None, git_order: Sequence[str] | None = None, order_note: str | None = None,
           commit_url: str | None = None) -> str:
    """The report page as one HTML string: a part per machine (newest first), or only `machine`'s.
    `git_order`: full SHAs oldest first (run.environment.git_order), None to order commits by measuring time;
    `order_note` says which; `commit_url`: a template linking commits ({commit}, {short})."""
    when = generated_at or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    newest: dict[str, str] = {}
    for r in records:
        newest[r.machine_fingerprint] = max(newest.get(r.machine_fingerprint, ""), r.timestamp)
    machines = [machine] if machine else sorted(newest, key=lambda fp: newest[fp], reverse=True) or [None]
    order_note = order_note or ("commits in git history order" if git_order else
                                "commits ordered by the time they were measured (no git history given)")
    parts: list[str] = []
    for i, fp in enumerate(machines):
        mine = sorted(measures.on_machine(records, fp), key=lambda r: r.timestamp)
        parts += _machine_part(mine, fp, _Page(git_order, commit_url, "" if i == 0 else f"-{i + 1}"))
    links = " · ".join(f'<a href="#machine{"" if i == 0 else f"-{i + 1}"}">{_e(fp)}</a>'
                       for i, fp in enumerate(machines) if fp)
    others = sorted(set(newest) - set(machines))
    head = (f'<h1>{_e(title)}</h1><p>Generated {_e(when)} from {len(records)} records of {len(newest)} machine(s)'
            + (f'; shown: {_e(machines[0])} only, {len(others)} other machine(s) not shown' if others else "")
            + f'. Timings of different machines are never mixed. <span class="muted order">{_e(order_note)}.'
              f'</span></p>' + (f'<p>Machines: {links}</p>' if len(machines) > 1 else ""))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join([head, *parts])
            + f"\n<script>{CHECK_JS}</script>\n</body></html>\n")


def write_report(recs: Sequence[ResultRecord], out: str | Path, **kw) -> Path:
    from llm_research_bench.engine.atomic import write_text
    return write_text(out, render(recs, **kw))
