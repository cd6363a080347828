"""`research-bench report`: the command reads the stored commits' dates and subjects from git and hands them to
the report, which labels commits with them; without git it labels them with their short hash."""
from __future__ import annotations

import subprocess

from llm_research_bench.harness.commands import cli
from llm_research_bench.harness.commands.report import commit_labels


def _repo(path) -> list[str]:
    """A git repository with two commits; their full hashes, oldest first."""
    def git(*a):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *a], cwd=path,
                              capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    shas = []
    for subject in ("engine: first", "engine: faster decode"):
        (path / "f").write_text(subject)
        git("add", "f")
        git("commit", "-q", "-m", subject)
        shas.append(git("rev-parse", "HEAD"))
    return shas


def test_commit_labels_come_from_git_and_are_empty_without_it(tmp_path):
    shas = _repo(tmp_path)
    labels = commit_labels(shas, str(tmp_path))
    assert [(c.sha, c.subject) for c in labels] == [(shas[0], "engine: first"), (shas[1], "engine: faster decode")]
    assert all(len(c.date) >= 19 and c.date[4] == "-" for c in labels)
    assert commit_labels(shas, str(tmp_path / "nowhere")) == []
    assert commit_labels([], str(tmp_path)) == []


def test_the_report_command_labels_the_latest_commit_with_its_subject(tmp_path, monkeypatch):
    from llm_research_bench.harness.run import store
    from tests.harness.testdata import record, varied_telemetry
    shas = _repo(tmp_path)
    for i, sha in enumerate(shas):
        for k in range(2):
            store.append(tmp_path / "results", record(varied_telemetry(1.0 + 0.01 * k), commit=sha,
                                                      ts=f"2026-11-2{i}T10:0{k}:00+00:00"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--out", "r.html", "--results-dir", "results", "--no-commit-links"]) == 0
    page = (tmp_path / "r.html").read_text()
    summary = page[page.index('<section id="summary"'):page.index("</section>")]
    assert f"{shas[1][:12]}</span> <span class=\"when\">" in summary and "<q>engine: faster decode</q>" in summary
