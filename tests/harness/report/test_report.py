"""The HTML report: self-contained, charts and tables present, regressions and budget bands marked; then
opened in headless Chromium to check that the browser lays the charts and tables out."""
from __future__ import annotations

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
    links = re.findall(r'<a href="#(chart-[^"]+)">([^<]*)</a>', section)
    assert any("execution_time_s" in text and commits[3] in text for _, text in links), section
    for target, _ in links:
        assert f'id="{target}"' in page, target
