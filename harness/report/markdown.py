"""The Markdown printer: the session summary as a Markdown document (--research-summary-md FILE, and appended to
$GITHUB_STEP_SUMMARY when set)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from . import comparison as C
from .table import TABLE_LEGEND, detail_lines, rows
from .terminal import findings_lines, gate_lines, unverified_lines


def _escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", "<br>")


def markdown(instances: Sequence[Any], *, comparison: Any = None, gate_failures: Sequence[str] = (),
             compare_failures: Sequence[str] = (), header: str = "Research bench", context: str = "",
             delta_from: Any = None, unverified: Sequence[str] = (), unverified_fails: bool = False) -> str:
    headers, body = rows(instances, delta_from)
    ok = not gate_failures and not compare_failures and not (unverified and unverified_fails)
    if not instances:
        return f"## {header}: no bench ran\n\n{context}\n"
    state = "FAILED" if not ok else "targets met, time UNVERIFIED" if unverified else "targets met"
    out = [f"## {header}: {state}", ""]
    if context:
        out += [context, ""]
    out += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), "", f"<sub>{' '.join(TABLE_LEGEND)}</sub>",
            ""] + [f"- {_escape(line)}" for line in detail_lines(instances)] + [""]
    if unverified:
        out += [f"### UNVERIFIED: time budget missed only on a busy machine "
                f"(--research-unverified={'fail' if unverified_fails else 'pass'})", ""]
        out += [f"- {_escape(m)}" for m in unverified] + [""]
    if gate_failures:
        out += ["### Targets missed", ""] + [f"- {_escape(m)}" for m in gate_failures] + [""]
    notes = [n for r in instances for n in r.notes]
    if notes:
        out += ["### Notes", ""] + [f"- {_escape(n)}" for n in notes] + [""]
    if comparison is not None:
        out += [f"### Comparison with {comparison.baseline}", ""]
        if comparison.series:
            out += [C.table(comparison, tablefmt="github"), ""]
            out += [f"- note: {_escape(n)}" for n in C.notes(comparison)]
            out += [""]
        else:
            out += ["No bench instance has usable runs on both sides.", ""]
    if compare_failures:
        out += ["### Regressions", ""] + [f"- {_escape(m)}" for m in compare_failures] + [""]
    return "\n".join(out)


def session_markdown(summary: Any, ctx: Any) -> str:
    from ..run.environment import commit_url
    git = ctx.git
    url = commit_url(getattr(ctx.options, "commit_url", None), git.commit)
    commit = f"[`{git.short}`]({url})" if url else f"`{git.short}`"
    context = (f"commit {commit}{f' on `{git.branch}`' if git.branch else ''}, machine "
               f"`{ctx.machine.fingerprint}`, budgets for `{ctx.machine_class}`"
               f"{f' scaled x{ctx.options.budget_scale:g}' if ctx.options.budget_scale != 1 else ''}")
    comp = summary.comparison if summary.compare_requested else None
    text = markdown(summary.instances, comparison=comp, gate_failures=gate_lines(summary),
                    compare_failures=C.regression_lines(comp), context=context, delta_from=summary.comparison,
                    unverified=unverified_lines(summary), unverified_fails=summary.unverified_policy == "fail")
    extra = findings_lines(summary.records)
    if extra:
        text += "\n\n### Findings\n\n" + "\n".join(f"- {line}" for line in extra)
    skipped = getattr(summary, "store_skipped", [])
    if skipped:
        text += "\n\n### Results store\n\n" + "\n".join(f"- {_escape(line)}" for line in skipped)
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
