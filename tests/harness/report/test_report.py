"""The HTML report: self-contained, charts and tables present, regressions and budget bands marked; then
opened in headless Chromium to check that the browser lays the charts and tables out."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from llm_research_bench.harness.commands import cli
from llm_research_bench.harness.report import html as report_html
from tests.harness.testdata import TESTDATA_OTHER_MACHINE

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage"]


@pytest.fixture
def page(testdata_records) -> str:
    return report_html.render(testdata_records, generated_at="TESTDATA")


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg class=\"chart\".*?</svg>", html, flags=re.S)


def test_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<link|<img|<iframe|\bsrc=|url\(|@import", page)
    external = set(re.findall(r"https?://[^\s\"'<>]+", page)) - {"http://www.w3.org/2000/svg"}
    assert not external


def test_sections_tables_and_charts(page):
    for sec in ("latest", "quality", "breakdown", "recommendations", "history"):
        assert f'<section id="{sec}">' in page
    assert '<table class="latest">' in page and '<table class="quality">' in page
    kinds = {re.search(r'data-kind="(\w+)"', s).group(1) for s in _svgs(page)}
    assert kinds == {"history", "scatter", "xy", "shares"}
    assert len(_svgs(page)) > 20
    assert "early_exit_never_fires" in page                        # recommendations section filled


def test_history_marks_the_planted_regression_and_budget_band(page):
    time_chart = next(s for s in _svgs(page) if "execution_time_s" in s and 'data-kind="history"' in s)
    assert time_chart.count('class="band"') == 4                    # one band per commit
    reg = re.findall(r'<polygon class="regression".*?<title>(.*?)</title>', time_chart, flags=re.S)
    assert len(reg) == 1 and "vs bbbb2222bbbb" in reg[0]
    assert 'class="improvement"' in time_chart                     # the next commit came back down
    assert 'class="pt fail"' in time_chart                         # the 46 s run missed its budget
    assert time_chart.count('class="pt') == 12


def test_every_machine_in_its_own_part_or_one_machine(page, testdata_records):
    from tests.harness.testdata import TESTDATA_MACHINE
    assert page.count('<h2 class="machine"') == 2 and TESTDATA_OTHER_MACHINE in page
    assert page.index(TESTDATA_MACHINE) < page.index(f"<code>{TESTDATA_OTHER_MACHINE}</code>")   # newest first
    assert '<section id="history-2">' in page
    other = report_html.render(testdata_records, machine=TESTDATA_OTHER_MACHINE)
    assert "eeee5555eeee" in other and "dddd4444dddd" not in other and "1 other machine(s) not shown" in other


def test_commits_follow_git_history_not_measuring_time_and_link(testdata_records):
    """The git order given wins over the measuring time; the page says which order it used."""
    from llm_research_bench.harness.analysis import measures
    from tests.harness.testdata import TESTDATA_COMMITS, TESTDATA_MACHINE
    mine = [r for r in testdata_records if r.machine_fingerprint == TESTDATA_MACHINE]
    by_time = measures.commit_order(mine)
    assert by_time == [c[:12] for c in TESTDATA_COMMITS]
    git = list(reversed(TESTDATA_COMMITS))                      # e.g. commits measured out of history order
    assert measures.commit_order(mine, git) == [c[:12] for c in git]
    page = report_html.render(testdata_records, git_order=git, order_note="commits in git history order",
                              commit_url="https://example.org/r/commit/{commit}")
    assert "commits in git history order" in page
    assert f'href="https://example.org/r/commit/{TESTDATA_COMMITS[0]}"' in page
    assert "ordered by the time they were measured" in report_html.render(testdata_records)


def test_git_order_from_a_repository(tmp_path):
    import subprocess
    from llm_research_bench.harness.run.environment import git_order, remote_commit_url

    def git(*a):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *a], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    shas = []
    for i in range(3):
        (tmp_path / "f").write_text(str(i))
        git("add", "f")
        git("commit", "-q", "-m", str(i))
        shas.append(git("rev-parse", "HEAD"))
    order, note = git_order([shas[2], "f" * 40, shas[0], shas[1]], tmp_path)
    assert order == shas and "1 commit(s) git does not know" in note
    assert git_order(shas, tmp_path / "nowhere")[0] is None
    git("remote", "add", "origin", "git@github.com:org/repo.git")
    assert remote_commit_url(tmp_path) == "https://github.com/org/repo/commit/{commit}"


def test_empty_store_renders_a_page(tmp_path):
    html = report_html.render([])
    assert "No measured records yet" in html and "<svg" not in html


def test_cli(testdata_results_dir, tmp_path, capsys):
    out = tmp_path / "r" / "report.html"
    assert cli.main(["report", "--out", str(out), "--results-dir", str(testdata_results_dir)]) == 0
    assert out.read_text().count('<svg class="chart"') > 20
    assert "wrote" in capsys.readouterr().out


# -- in a real browser --------------------------------------------------------------------------------------

def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _png_ink(png: bytes) -> float:
    """Share of non-zero bytes in the PNG's decompressed (filtered) scanlines: ~0 for a blank page."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return sum(1 for b in raw[::7] if b) / max(1, len(raw[::7]))


@pytest.mark.skipif(_browser() is None, reason="headless Chromium not installed (Debian: apt-get install -y "
                                               "chromium); CI installs it, so this check runs there")
def test_renders_in_headless_chromium(testdata_records, tmp_path):
    path = report_html.write_report(testdata_records, tmp_path / "report.html")
    browser = _browser()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([browser, *CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2000",
                              "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
                             capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    total = len(_svgs(path.read_text()))
    assert int(attrs["charts-total"]) == total > 20
    assert int(attrs["charts-rendered"]) == total, "some charts did not lay out with visible marks"
    assert int(attrs["tables-rendered"]) >= 2
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([browser, *CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1600",
                            f"--screenshot={shot}", path.as_uri()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    assert _png_ink(shot.read_bytes()) > 0.01


def test_single_run_commits_get_indicative_marks_and_small_changes_none():
    from llm_research_bench.harness.report import charts
    from llm_research_bench.harness.analysis import measures
    from tests.harness.testdata import record, varied_telemetry
    recs = [record(varied_telemetry(f), commit=c, ts=f"2026-11-2{i}T00:00:00.000000+00:00")
            for i, (c, f) in enumerate([("c1", 1.0), ("c2", 1.02), ("c3", 1.5)])]
    pts = measures.history(recs, "research[quick]", "execution_time_s")
    assert pts[1].regression is None and pts[1].improvement is None          # +2 %: below the 5 % threshold
    assert pts[2].regression and pts[2].indicative and "indicative" in charts.describe_change(pts[2].regression)
    svg = charts.history_chart(pts, title="t", unit="s", better="lower")
    assert 'class="regression indicative"' in svg
    dec = measures.history(recs, "research[quick]", "tokens_per_second")   # higher is better: fell
    assert dec[2].regression and not dec[2].improvement


def test_the_regressions_list_links_each_step_to_its_chart():
    from tests.harness.testdata import record, varied_telemetry
    commits = [f"{i:x}" * 12 for i in range(1, 7)]                 # 111111111111 ... 666666666666
    recs = [record(varied_telemetry((1.0 if i < 3 else 1.4) * (1 + 0.01 * k)), commit=c,
                   ts=f"2026-11-2{i}T10:0{k}:00.000000+00:00") for i, c in enumerate(commits) for k in range(3)]
    page = report_html.render(recs, generated_at="TESTDATA")
    section = re.search(r'<section id="regressions">(.*?)</section>', page, flags=re.S).group(1)
    rows = re.findall(r'<tr><td class="l"><a href="#(chart-[^"]+)">([^<]*)</a></td>(.*?)</tr>', section)
    assert any("execution_time_s" in text and commits[3] in rest and "+40.0 %" in rest for _, text, rest in rows), \
        section
    for target, _, _ in rows:
        assert f'id="{target}"' in page, target


# -- the first screen: the latest commit's verdicts, the regressions, the headline charts ---------------------------

def _store() -> tuple[list, list]:
    """A store as a user's history looks (TEST DATA): the test helpers' pipeline history over four commits, each
    commit's runs one bench instance as the plugin stores them, a quality and two breakdown records on the last
    commit, a calibration bench measured only on the first; and the commits' dates and subjects as git gives them."""
    from llm_research_bench.harness.run.history import Commit
    from tests.harness.testdata import TESTDATA_COMMITS, history_records, record, varied_telemetry
    recs = history_records()
    for i, r in enumerate(recs):
        r.extra["instance"] = f"{r.machine_fingerprint}-{r.commit}-{r.bench}"
        if r.telemetry:                       # the recorded document predates the grounded-citation rate
            r.telemetry["metrics"]["grounded_citation_rate"] = (0.4, 0.5, 0.6)[i % 3]
    recs += [record(varied_telemetry(1.0 + 0.02 * k), commit=TESTDATA_COMMITS[0], bench="calibration",
                    ts=f"2026-11-20T12:0{k}:00.000000+00:00", extra={"instance": "calibration-1"}) for k in range(3)]
    commits = [Commit(c, f"engine: change number {i}", f"2026-11-{20 + i}T09:00:00+00:00")
               for i, c in enumerate(TESTDATA_COMMITS)]
    return recs, commits


@pytest.fixture
def store_page() -> str:
    recs, commits = _store()
    return report_html.render(recs, generated_at="TESTDATA", commits=commits)


def _section(page: str, name: str) -> str:
    return re.search(rf'<section id="{name}"[^>]*>(.*?)</section>', page, flags=re.S).group(1)


def test_the_page_opens_on_the_latest_commits_verdicts_then_the_regressions(store_page):
    from tests.harness.testdata import TESTDATA_COMMITS
    sections = re.findall(r'<section id="([\w-]+)"', store_page)
    assert sections[:3] == ["summary", "regressions", "history"]
    assert store_page.index('<section id="summary"') < store_page.index("<svg")        # verdicts before any chart
    summary = _section(store_page, "summary")
    assert f"{TESTDATA_COMMITS[-1]}</span> <span class=\"when\">2026-11-23</span> <q>engine: change number 3</q>" \
           in summary
    rows = re.findall(r'<tr class="(\w+)"><td class="l"><a href="#([^"]+)">([^<]+)</a>.*?</tr>', summary, flags=re.S)
    assert [(status, bench) for status, _, bench in rows] == [    # one row per bench instance of the last commit,
        ("met", "research[quick]"), ("met", "breakdown_corpus_scaling[quick]"),    # the timed benches first
        ("met", "breakdown_phases[quick]"), ("met", "quality[quick]")]
    for _, target, _ in rows:
        assert f'id="{target}"' in store_page
    research = re.search(r'research\[quick\]</a>.*?</tr>', summary, flags=re.S).group(0)
    assert "3/3" in research and "10–45 s" in research and "4,096 MB" in research
    assert "calibration" not in "".join(b for _, _, b in rows) and "earlier commits" in summary   # named, not a row


def test_a_missed_target_shows_in_its_verdict_row():
    from tests.harness.testdata import record, varied_telemetry
    recs = [record(varied_telemetry(2.6), commit="c1", ts=f"2026-11-20T10:0{k}:00+00:00", target_met=False,
                   extra={"instance": "i1"}) for k in range(2)]
    for r in recs:
        r.reasons = ["quick: 46.6 s > 45 s budget (+4 %)"]
    summary = _section(report_html.render(recs), "summary")
    assert '<tr class="missed">' in summary and '<td class="fail">' in summary and "0/2" in summary


def test_each_bench_opens_on_its_headline_charts_and_folds_the_rest(store_page):
    from llm_research_bench.harness.report.html import HEADLINE
    history = _section(store_page, "history")
    blocks = re.findall(r'<details class="bench" id="([^"]+)" data-series="([^"]+)"( open)?>(.*?)</details>\n'
                        r'(?=<details class="bench"|$)', history, flags=re.S)
    assert [(series, bool(is_open)) for _, series, is_open, _ in blocks] == [
        ("research[quick]", True), ("breakdown_corpus_scaling[quick]", True), ("breakdown_phases[quick]", True),
        ("quality[quick]", True), ("calibration[quick]", False)]     # the last commit's benches first and open
    research = blocks[0][3]
    shown = research.split("<details")[0]                             # the charts outside any fold
    assert re.findall(r'id="chart-TESTDATA-machine-a-research-quick-(\w+)"', shown) == list(HEADLINE)
    assert '<details class="more"><summary>7 more metric(s): ITL p50, ITL p90, ITL p99, memory_efficiency, prompt ' \
           'tok/s, decode tok/s, wall tok/s</summary>' in research
    flat = re.search(r'<details class="flat"><summary>unchanged across these runs: ([^<]*)</summary>', research)
    assert flat and "claims 5" in flat.group(1)                     # the same in every run: folded, named once
    for _, _, _, block in blocks:
        assert len(re.findall(r'<svg class="chart"', block.split("<details")[0])) <= 5


def test_commits_are_labelled_with_date_and_subject_or_their_short_hash(store_page, testdata_records):
    time_chart = re.search(r'<div class="card" id="chart-TESTDATA-machine-a-research-quick-execution_time_s">'
                           r'(.*?)</svg>', store_page, flags=re.S).group(1)
    ticks = re.findall(r'<text class="tick commit"[^>]*><tspan[^>]*>([^<]*)</tspan><tspan[^>]*>([^<]*)</tspan>'
                       r'<title>([^<]*)</title>', time_chart)
    assert ticks == [(f"11-{20 + i}", c[:7], f"{c} · 2026-11-{20 + i} · engine: change number {i}")
                     for i, c in enumerate(["aaaa1111aaaa", "bbbb2222bbbb", "cccc3333cccc", "dddd4444dddd"])]
    assert '<ol class="commits"><li><span title="2026-11-20 engine: change number 0">aaaa1111aaaa</span>' \
           in store_page
    bare = report_html.render(testdata_records)                        # no git: the short hash alone
    assert ">aaaa1111<title>aaaa1111aaaa</title>" in bare and "engine: change" not in bare


def test_the_bench_picker_lists_every_bench_and_points_at_its_block(store_page):
    picker = re.search(r'<select id="bench-picker" class="bench-picker" data-part="history">(.*?)</select>',
                       store_page).group(1)
    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', picker)
    assert options[0] == ("", "all benches (5)") and len(options) == 6
    for target, series in options[1:]:
        assert f'<details class="bench" id="{target}" data-series="{series}"' in store_page
    assert "select.bench-picker" in store_page and "addEventListener('change'" in store_page


#: Where the first-screen test leaves its screenshot (the repository's out/, which git ignores).
FIRST_SCREEN_PNG = Path(__file__).resolve().parents[3] / "out" / "report-first-screen.png"


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900", *args],
                              capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(_browser() is None, reason="headless Chromium not installed (Debian: apt-get install -y "
                                               "chromium); CI installs it, so this check runs there")
def test_the_first_screen_in_headless_chromium_holds_the_latest_verdicts(tmp_path):
    """At 1280 x 900 the first section is the latest commit's verdicts, its rows end within the first 900 px and
    every chart comes after them; the screenshot of that screen is left at FIRST_SCREEN_PNG."""
    recs, commits = _store()
    path = report_html.write_report(recs, tmp_path / "report.html", generated_at="TESTDATA", commits=commits)
    dom = _chromium(_browser(), "--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    first = re.search(r'<section id="([\w-]+)"', dom.stdout)
    assert first and first.group(1) == "summary"
    assert dom.stdout.index('<table class="verdicts">') < dom.stdout.index("<svg")
    attrs = dict(re.findall(r'data-([\w-]+)="(\d+)"', re.search(r"<body([^>]*)>", dom.stdout).group(1)))
    assert 0 < int(attrs["verdicts-bottom"]) <= 900
    assert int(attrs["first-chart-top"]) > int(attrs["verdicts-bottom"])
    assert int(attrs["charts-rendered"]) == int(attrs["charts-total"]) > 20     # folded charts lay out when opened
    FIRST_SCREEN_PNG.parent.mkdir(exist_ok=True)
    FIRST_SCREEN_PNG.unlink(missing_ok=True)
    shot = _chromium(_browser(), f"--screenshot={FIRST_SCREEN_PNG}", path.as_uri())
    assert shot.returncode == 0 and FIRST_SCREEN_PNG.exists(), shot.stderr[-2000:]
    assert _png_ink(FIRST_SCREEN_PNG.read_bytes()) > 0.01


def test_a_long_history_names_a_few_commits_under_the_axis():
    from llm_research_bench.harness.report import charts
    from tests.harness.testdata import record, varied_telemetry
    from llm_research_bench.harness.analysis import measures
    recs = [record(varied_telemetry(1.0), commit=f"{i:02d}" * 6, ts=f"2026-11-{i + 1:02d}T00:00:00+00:00")
            for i in range(20)]
    labels = charts.commit_labels(measures.history(recs, "research[quick]", "execution_time_s"))
    assert [i for i, (_, _, _, named) in enumerate(labels) if named] == [0, 4, 8, 11, 15, 19]


@pytest.mark.skipif(_browser() is None, reason="headless Chromium not installed (Debian: apt-get install -y "
                                               "chromium); CI installs it, so this check runs there")
def test_a_link_to_a_folded_chart_opens_its_folds_in_headless_chromium(tmp_path):
    """The regressions table and the verdicts link to charts and benches that may sit in closed folds: following
    such a link opens them (report.js), and the folds the link does not reach stay closed."""
    recs, commits = _store()
    path = report_html.write_report(recs, tmp_path / "report.html", commits=commits)
    target = "chart-TESTDATA-machine-a-calibration-quick-wall_tokens_per_second"    # closed bench, "more" fold
    assert re.search(rf'<details class="bench" id="[^"]*calibration-quick-bench" data-series="calibration\[quick\]">'
                     rf'(?:(?!</details>\n<details class="bench").)*id="{target}"', path.read_text(), flags=re.S)
    dom = _chromium(_browser(), "--virtual-time-budget=5000", "--dump-dom", f"{path.as_uri()}#{target}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<details class="bench" id="[^"]*calibration-quick-bench" data-series="calibration\[quick\]" '
                     r'open="">(?:(?!</details>).)*<details class="more" open="">', dom.stdout, flags=re.S)
    research = re.search(r'<details class="bench" id="[^"]*research-quick-bench"[^>]*>(.*?)<details class="commits"',
                         dom.stdout, flags=re.S).group(1)
    assert '<details class="more">' in research                        # untouched folds stay closed


# -- the seed's rates of the latest commit, shown and embedded as the session document ------------------------------

def _rated_store() -> tuple[list, list]:
    """The store of _store with the last commit's research runs given what the seed's rates count (TEST DATA): one
    run stopped early with three batches judged, one run with one batch judged, and one run that crashed."""
    from llm_research_bench.harness import records
    from tests.harness.testdata import TESTDATA_COMMITS, record
    recs, commits = _store()
    last = [r for r in recs if r.commit == TESTDATA_COMMITS[-1] and r.bench == "research"]
    last[0].telemetry["early_exit"] = {"triggered": True, "batch": 2, "reason": "information_gain"}
    last[0].telemetry["traces"]["gate"] = [{"batch": 0, "reason": "reference", "novelty": 1.0},
                                           {"batch": 1, "reason": "above_threshold", "novelty": 0.6},
                                           {"batch": 2, "reason": "below_threshold", "novelty": 0.2}]
    last[1].telemetry["traces"]["gate"] = [{"batch": 1, "reason": "above_threshold", "novelty": 0.7}]
    crashed = record(None, commit=TESTDATA_COMMITS[-1], ts="2026-11-23T10:05:00.000000+00:00", target_met=False,
                     extra={"instance": last[0].extra["instance"], "reason_codes": [records.RUN_CRASHED]})
    crashed.outcome = records.CRASHED
    return recs + [crashed], commits


def test_the_latest_commit_shows_the_seed_rates_of_its_runs_per_bench():
    recs, commits = _rated_store()
    summary = _section(report_html.render(recs, generated_at="TESTDATA", commits=commits), "summary")
    table = re.search(r'<table class="rates">(.*?)</table>', summary, flags=re.S).group(1)
    rows = re.findall(r"<tr><td class=\"l\">([^<]+)</td>(.*?)</tr>", table)
    assert [bench for bench, _ in rows] == ["research[quick]"]        # quality and breakdown: no pipeline runs
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows[0][1])
    assert cells[:4] == ["4 (1)", "1/3 (33%)", "1/4 (25%)", "0.50 over 3 batches"]
    assert cells[4].endswith(" tok/s") and 'title="median over 3 run(s)"' in rows[0][1]
    assert summary.index('<table class="verdicts">') < summary.index('<table class="rates">')


def _embedded(page: str, sid: str = "") -> dict:
    import json
    text = re.search(rf'<script type="application/json" id="session-document{sid}">(.*?)</script>', page,
                     flags=re.S).group(1)
    return json.loads(text)


def _json_round_trip(d: dict) -> dict:
    import json
    return json.loads(json.dumps(d))


def test_the_page_embeds_the_latest_commits_session_document_valid_against_its_schema():
    """The document --research-json writes, built by the same code over the latest commit's runs of each machine:
    it parses, validates against schemas/session.schema.json, and holds the rates the table shows."""
    from llm_research_bench.harness import records
    from llm_research_bench.harness.analysis.session import aggregates
    from tests.harness.testdata import TESTDATA_COMMITS, TESTDATA_MACHINE, TESTDATA_OTHER_MACHINE
    recs, commits = _rated_store()
    page = report_html.render(recs, generated_at="TESTDATA", commits=commits)
    doc = _embedded(page)
    assert records.validation_errors("session", doc) == []
    at = [r for r in recs if r.commit == TESTDATA_COMMITS[-1] and r.machine_fingerprint == TESTDATA_MACHINE]
    assert doc["commit"]["id"] == TESTDATA_COMMITS[-1] and doc["machine"] == {"fingerprint": TESTDATA_MACHINE}
    assert sorted(r["record_id"] for r in doc["records"]) == sorted(r.record_id for r in at)
    assert [b["bench"] for b in doc["benches"]] == ["research", "quality", "breakdown_phases",
                                                    "breakdown_corpus_scaling"]
    research = doc["benches"][0]
    assert research == _json_round_trip(dataclasses.asdict(aggregates(at)[0]))
    assert research["early_exit_rate"] == {"value": pytest.approx(1 / 3), "count": 1, "n": 3}
    assert research["error_rate"]["count"] == 1 and research["novelty_score_average"]["n"] == 3
    assert doc["rates"]["error_rate"] == {"value": pytest.approx(1 / 7), "count": 1, "n": 7}   # every bench's runs
    assert doc["passed"] is False                                                               # the crash missed
    other = _embedded(page, "-2")
    assert records.validation_errors("session", other) == [] and other["machine"]["fingerprint"] == \
        TESTDATA_OTHER_MACHINE


def test_embedded_json_cannot_end_its_script_element_and_reads_back_unchanged():
    import json
    from llm_research_bench.harness.report.document import script_json
    doc = {"answer": "a </script><script>alert(1)</script> b", "url": "http://127.0.0.1:11434"}
    text = script_json(doc)
    assert "<" not in text and "http://" not in text
    assert json.loads(text) == doc
