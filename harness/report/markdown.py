"""The Markdown printer: the session summary for --research-summary-md and $GITHUB_STEP_SUMMARY."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import TEXT, comparison, table
from .terminal import findings_lines, gate_lines, verdict_lines


def session_markdown(summary: Any, ctx: Any) -> str:
    """The session in Markdown: the table, what failed or is unverified, notes, the comparison, the findings."""
    from ..run.environment import commit_url
    git, o = ctx.git, ctx.options
    url = commit_url(getattr(o, "commit_url", None), git.commit)
    context = (f"commit {f'[`{git.short}`]({url})' if url else f'`{git.short}`'}"
               f"{f' on `{git.branch}`' if git.branch else ''}, machine `{ctx.machine.fingerprint}`, budgets for "
               f"`{ctx.machine_class}`{f' scaled x{o.budget_scale:g}' if o.budget_scale != 1 else ''}")
    comp = summary.comparison if summary.compare_requested else None
    missed, regressions = gate_lines(summary), comparison.regression_lines(comp)
    unverified = verdict_lines(summary, summary.unverified)
    fails_unverified = summary.unverified_policy == "fail"
    state = ("FAILED" if missed or regressions or (unverified and fails_unverified)
             else "targets met, time UNVERIFIED" if unverified else "targets met")
    return TEXT.get_template("summary.md.j2").render(
        s=summary, context=context, state=state, missed=missed, regressions=regressions, unverified=unverified,
        fails_unverified=fails_unverified, comp=comp, notes=[n for r in summary.instances for n in r.notes],
        findings=findings_lines(summary.records), table=table, comparison=comparison).removesuffix("\n")


def write(summary: Any, ctx: Any, path: Path | None) -> list[Path]:
    """Write the Markdown summary to `path` and append it to $GITHUB_STEP_SUMMARY when set."""
    from llm_research_bench.engine.atomic import write_text
    text = session_markdown(summary, ctx) + "\n"
    written = []
    if path is not None:
        write_text(path, text)
        written.append(path)
    gh = os.environ.get("GITHUB_STEP_SUMMARY")
    if gh:
        with open(gh, "a", encoding="utf-8") as fh:
            fh.write(text)
        written.append(Path(gh))
    return written
