"""What `research-engine` prints for a person: the output width, wrapped claims and answers, the progress lines
on stderr (a live line on a terminal, one line per phase when piped) and a run's closing report."""
from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from typing import TextIO

MAX_WIDTH = 120          # no line is wider, whatever the terminal
PIPED_WIDTH = 100        # the width when the output is not a terminal
MIN_WIDTH = 40
MAX_UNCITED_SOURCES = 10  # passages in context listed when none was cited


def output_width(stream: TextIO | None = None) -> int:
    """Columns to fill: the terminal's (COLUMNS first), else PIPED_WIDTH; kept within MIN_WIDTH..MAX_WIDTH."""
    if stream is None:
        cols = shutil.get_terminal_size((PIPED_WIDTH, 24)).columns
    else:
        try:
            cols = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                cols = os.get_terminal_size(stream.fileno()).columns if stream.isatty() else PIPED_WIDTH
            except (AttributeError, OSError, ValueError):
                cols = PIPED_WIDTH
    return max(MIN_WIDTH, min(MAX_WIDTH, cols or PIPED_WIDTH))


def wrap(text: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """`text` wrapped to `width` columns behind the prefix `first` (later lines behind `rest`); every line fits."""
    rest = " " * len(first) if rest is None else rest
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_long_words=True,
                         break_on_hyphens=False) or [first.rstrip()]


def claim_lines(n: int, claim, width: int) -> list[str]:
    """One streamed claim, its citations after it (`(invalid)` marks one naming no passage in context)."""
    cites = " ".join(f"[{x.raw}]{'' if x.valid else '(invalid)'}" for x in claim.citations) or "(no citation)"
    return wrap(f"{claim.text} {cites}", width, first=f"  claim {n}: ", rest="    ")


class Progress:
    """Progress on stderr: a live status line on a terminal; one line per phase otherwise; claims on stdout."""

    def __init__(self, quiet: bool = False, live: bool | None = None, err: TextIO | None = None,
                 out: TextIO | None = None):
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.quiet = quiet
        self.live = self.err.isatty() if live is None else live
        self.t0 = time.perf_counter()
        self.batch = None
        self.call_chunks, self.call_t0 = 0, 0.0
        self.claims = 0
        self.phase = "loading the model"
        self.notes: list[str] = []     # what happened since the last phase line (piped)

    def start(self) -> None:
        """On a terminal, say at once that the run has begun (the model loads before the first phase). Piped, the
        first line waits for the first phase, so that a run refused before it (bad corpus, model) ends in one line."""
        self._status()

    def _elapsed(self) -> str:
        return f"[{time.perf_counter() - self.t0:5.1f}s]"

    def _label(self) -> str:
        return {"plan": "plan: retrieving passages",
                "streaming_inference": f"batch {self.batch}: generating claims",
                "synthesis": "synthesis: writing the answer"}.get(self.phase, self.phase)

    def _status(self, extra: str = "") -> None:
        if self.quiet or not self.live:
            return
        line = f"{self._elapsed()} {self._label()}{extra}"[:output_width(self.err) - 1]
        self.err.write(f"\r\033[K{line}")
        self.err.flush()

    def _phase_line(self) -> None:
        if self.quiet or self.live:
            return
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        self.notes = []
        for line in wrap(f"{self._elapsed()} {self._label()}{notes}", output_width(self.err), rest="         "):
            print(line, file=self.err, flush=True)

    def __call__(self, kind: str, data: dict) -> None:
        if kind == "phase":
            self.phase, self.batch = data["phase"], data.get("batch")
            self.call_chunks, self.call_t0 = 0, time.perf_counter()
            self._phase_line()
            self._status()
        elif kind == "retrieved":
            note = f"retrieved {data['hits']} passages, index {'cached' if data['cache_hit'] else 'built'}"
            self.notes.append(note)
            self._status(f" | {note}")
        elif kind == "batch":
            note = (f"batch {data['batch']}: {data['size']} passages, novelty {data['novelty']:.2f}"
                    f"{'' if data['admitted'] else ', below the threshold: stopping'}")
            self.notes.append(note)
            self._status(f" | {note}")
        elif kind == "claim":
            self.claims += 1
            self._clear()
            print("\n".join(claim_lines(self.claims, data["claim"], output_width())), file=self.out, flush=True)
        elif kind == "answer_delta":          # the rate counts from the first chunk, so the wait for it is left out
            self.call_chunks += 1
            if self.call_chunks == 1:
                self.call_t0 = time.perf_counter()
            rate = (self.call_chunks - 1) / max(1e-6, time.perf_counter() - self.call_t0)
            self._status(f" | {self.call_chunks} chunks, {rate:.0f}/s")
        elif kind == "batch_done":
            call = data["call"]          # the batch's CallRecord (engine.runlog)
            ntok, e2e, ttft = call.tokens_generated, call.e2e_s, call.ttft_s or 0
            rate = (ntok - 1) / (e2e - ttft) if ntok > 1 and e2e > ttft else 0.0
            note = f"batch {data['batch']}: {data['claims']} claims, {ntok} tokens, {rate:.0f} tok/s"
            self.notes.append(note)
            self._status(f" | {note}")

    def _clear(self) -> None:
        if self.live and not self.quiet:
            self.err.write("\r\033[K")
            self.err.flush()

    def done(self) -> None:
        """Clear the status line, so that any message below stands on its own line."""
        self._clear()


def source_lines(session, width: int) -> list[str]:
    """The numbered sources under the answer: those cited validly, else (saying so) those that were in context."""
    cited = session.cited_sources()
    if cited:
        head, rows = "Sources (cited):", cited
    elif session.sources:
        head, rows = "Sources: none cited validly; the passages in context were:", sorted(session.sources.items())
    else:
        return ["Sources: none (no passage was in context)"]
    shown = rows if cited else rows[:MAX_UNCITED_SOURCES]
    lines = [head]
    for label, pid in shown:
        p = session.passages.get(pid)
        title = f" - {p.title}" if p and p.title else ""
        lines += wrap(f"{pid}{title}", width, first=f"  [{label}] ", rest="      ")
    if len(shown) < len(rows):
        lines.append(f"  ... and {len(rows) - len(shown)} more (the telemetry's batches list them all)")
    return lines


def citation_line(metrics: dict, answer: dict) -> str:
    """How many citations named a passage in context (valid) and how many the passage supports (grounded)."""
    n, answer_n = metrics["citations"], metrics["answer_citations"]
    cites = len(answer["sources"])
    grounded = (f"{metrics['grounded_citations']}/{n + answer_n} grounded in the passage they cite"
                if n + answer_n else "none to ground")
    return (f"Citations: {metrics['valid_citations']}/{n} in the claims valid; the answer's statements cite "
            f"{cites} source{'' if cites == 1 else 's'} validly ({answer_n} citation{'' if answer_n == 1 else 's'}); "
            f"{grounded}")


def uncited(session) -> bool:
    """No citation of the claims or the answer names a passage that was in context, though there were some."""
    return bool(session.sources) and not session.cited_sources()


def run_report(session, width: int) -> list[str]:
    """The lines printed after a run: answer, sources, decision, citations, and the run's figures."""
    tel = session.telemetry
    m, ans = tel["metrics"], tel["answer"]
    lines = ["", "Answer:"]
    for para in session.answer.removeprefix("Answer:").strip().splitlines():      # the synthesis prefill
        lines += wrap(para, width, first="  ") if para.strip() else [""]
    lines += [""] + source_lines(session, width)
    if ans["decision"] is not None:
        probs = ans.get("decision_probabilities")
        shown = (", " + ", ".join(f"{k} {v:.2f}" for k, v in probs.items())) if probs else ""
        lines += ["", f"Decision: {ans['decision']} (by {ans['decision_method'].replace('_', ' ')}{shown})"]
    elif tel["question"].get("answer_type") == "polar":
        lines += ["", "Decision: none could be parsed from the answer"]
    lines += [""] + wrap(citation_line(m, ans), width, rest="  ")
    figures = (f"{tel['profile']['name']} on {tel['backend']}/{tel['model']['name']}: {m['execution_time_s']:.1f} s, "
               f"{m['tokens_generated']} tokens, decode {m['tokens_per_second'] or 0:.0f} tok/s, "
               f"TTFT {m['ttft_s'] or 0:.2f} s, peak {m['memory_peak_mb'] or 0:.0f} MB, {m['claims']} claims, "
               f"stop: {tel['early_exit']['reason']}")
    return lines + wrap(figures, width, rest="  ")


PROFILE_HEADERS = ["profile", "time budget", "context", "mem MB", "batch", "ef", "max tok", "timeout", "novelty"]


def profiles_table(profiles: list, machine_class: str, width: int) -> list[str]:
    """Each profile's budget on `machine_class` and its settings; the models in their own columns when they fit
    in `width`, else listed under the table."""
    rows, models, fallback = [], [], False
    for p in profiles:
        b = p.budget_for(machine_class)
        fallback |= b.is_reference_fallback
        rows.append([p.name, f"{b.time_lower_s:g}-{b.time_upper_s:g} s{' *' if b.is_reference_fallback else ''}",
                     p.context_window, f"{b.memory_mb:g}", p.batch_size, p.ef_search, p.max_tokens,
                     f"{p.timeout_s:g} s", p.novelty_threshold])
        models.append([p.models.get("llamacpp"), p.models.get("ollama")])
    lines = columns(PROFILE_HEADERS + ["llamacpp", "ollama"], [r + m for r, m in zip(rows, models)])
    if max(map(len, lines)) > width:
        lines = columns(PROFILE_HEADERS, rows) + ["", "models (llamacpp, ollama):"]
        lines += [f"  {p.name}: {', '.join(str(x) for x in m)}" for p, m in zip(profiles, models)]
    if fallback:
        lines.append(f"* no budget for {machine_class}: the reference machine class's budget")
    return lines


def columns(headers: list[str], rows: list[list]) -> list[str]:
    """A plain table: two spaces between columns, numbers right-aligned, a dashed rule under the headers."""
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()
    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
