"""The Markdown printer: the session summary as a Markdown document (--research-summary-md FILE, and appended to
$GITHUB_STEP_SUMMARY when set)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from . import comparison, table
from .terminal import findings_lines, gate_lines, unverified_lines


def _escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", "<br>")


def _bullets(items: Sequence[str], prefix: str = "- ") -> list[str]:
    return [f"{prefix}{_escape(m)}" for m in items] + [""]


def _section(title: str, items: Sequence[str]) -> list[str]:
    return [title, "", *_bullets(items)] if items else []


def _context(ctx: Any) -> str:
    from ..run.environment import commit_url
    git, o = ctx.git, ctx.options
    url = commit_url(getattr(o, "commit_url", None), git.commit)
    commit = f"[`{git.short}`]({url})" if url else f"`{git.short}`"
    return (f"commit {commit}{f' on `{git.branch}`' if git.branch else ''}, machine `{ctx.machine.fingerprint}`, "
            f"budgets for `{ctx.machine_class}`{f' scaled x{o.budget_scale:g}' if o.budget_scale != 1 else ''}")


def _report(summary: Any, context: str) -> list[str]:
    """The table, what failed or could not be verified, the notes and the comparison."""
    comp = summary.comparison if summary.compare_requested else None
    missed, regressions, unverified = gate_lines(summary), comparison.regression_lines(comp), unverified_lines(summary)
    fails_unverified = summary.unverified_policy == "fail"
    state = ("FAILED" if missed or regressions or (unverified and fails_unverified)
             else "targets met, time UNVERIFIED" if unverified else "targets met")
    out = [f"## Research bench: {state}", "", context, "",
           table.render(summary.instances, summary.comparison, "github"), "",
           f"<sub>{' '.join(table.TABLE_LEGEND)}</sub>", ""]
    out += _bullets(table.detail_lines(summary.instances))
    out += _section("### UNVERIFIED: time budget missed only on a busy machine "
                    f"(--research-unverified={'fail' if fails_unverified else 'pass'})", unverified)
    out += _section("### Targets missed", missed)
    out += _section("### Notes", [n for r in summary.instances for n in r.notes])
    if comp is not None:
        out += [f"### Comparison with {comp.baseline}", ""]
        if comp.series:
            out += [comparison.table(comp, tablefmt="github"), "", *_bullets(comparison.notes(comp), "- note: ")]
        else:
            out += ["No bench instance has usable runs on both sides.", ""]
    return out + _section("### Regressions", regressions)


def session_markdown(summary: Any, ctx: Any) -> str:
    context = _context(ctx)
    if summary.instances:
        text = "\n".join(_report(summary, context))
    else:
        text = f"## Research bench: no bench ran\n\n{context}\n"
    extra = findings_lines(summary.records)
    if extra:
        text += "\n\n### Findings\n\n" + "\n".join(f"- {line}" for line in extra)
    if summary.store_skipped:
        text += "\n\n### Results store\n\n" + "\n".join(f"- {_escape(line)}" for line in summary.store_skipped)
    return text


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
