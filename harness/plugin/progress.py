"""Live progress on the terminal while benches run (pytest's terminal reporter, capture suspended): in a TTY one
status line per bench, redrawn in place and left standing at its end; piped, one line per round's verdict and per
re-measurement, plus the warm-up's index lines; nothing under -q or on xdist workers."""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable

import pytest

from ..report.layout import width, wrap
from ..units import num, seconds

HEARTBEAT_S = 30.0      # off a TTY: during the warm-up's embedding, at most one status line per this many seconds
REDRAW_S = 0.25         # in a TTY: redraw the status line at most this often
PREFIX = "[research-bench]"
#: The session warm-up's index stages with a line of their own (the embedding stage shows its progress).
INDEX_STAGES = {"cached": "index loaded from the cache ({total:,} passages)",
                "hnsw": "index build: HNSW graph of {total:,} passages built",
                "saved": "index build: saved to the cache"}


class LiveProgress:
    """The session's progress display (one per pytest config)."""

    def __init__(self, config: pytest.Config):
        self.tr, self.capman = map(config.pluginmanager.get_plugin, ("terminalreporter", "capturemanager"))
        self.enabled = self.tr is not None and config.get_verbosity() >= 0 and not hasattr(config, "workerinput")
        self.tty = bool(getattr(self.tr, "isatty", False))
        self._dangling = False          # a redrawn status line without its newline yet
        self._last_status = 0.0         # when a line was written or a status redrawn
        self._shown = ""                # the status line drawn last (cut to the terminal's width)

    def _suspended(self):
        return self.capman.global_and_fixture_disabled() if self.capman is not None else nullcontext()

    def line(self, text: str) -> None:
        """A durable line, wrapped to the terminal's width."""
        if not self.enabled:
            return
        text = "\n".join(wrap(f"{PREFIX} {text}", width(), indent="    "))
        with self._suspended():
            if self._dangling:
                self.tr.rewrite(text, erase=True)
                self.tr.write("\n", flush=True)
                self._dangling = False
            else:
                self.tr.write_line(text, flush=True)
        self._last_status = time.monotonic()

    def status(self, text: str, *, force: bool = False, heartbeat: bool = False) -> None:
        """Redrawn in place in a TTY; elsewhere nothing, or with `heartbeat` a line at most every HEARTBEAT_S."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_status < REDRAW_S:
                return
            with self._suspended():
                if not self._dangling:
                    self.tr.ensure_newline()
                self.tr.rewrite(f"{PREFIX} {text}"[:width() - 1], erase=True)    # one line, never wrapped
                self._dangling, self._shown = True, text
            self._last_status = now
        elif heartbeat and now - self._last_status >= HEARTBEAT_S:
            self.line(text)

    def live(self, text: str) -> None:
        """A bench's live line: the status line in a TTY (redrawn now), a plain line elsewhere."""
        if self.tty:
            self.status(text, force=True)
        else:
            self.line(text)

    def end(self) -> None:
        """A bench ended: its last status line, in a TTY, stays, whole (wrapped where the status was cut)."""
        if self.enabled and self.tty and self._dangling:
            self.line(self._shown)

    def warmup_event(self, ev: dict) -> None:
        stage, done, total = ev.get("stage"), ev.get("done") or 0, ev.get("total") or 0
        if ev.get("event") == "warmup":
            self.status(f"warm-up: {ev.get('step')}", force=True)
        elif ev.get("event") == "index" and stage == "embed":
            self.status(f"warm-up: index build: embedded {done:,}/{total:,} passages ({done / max(1, total):.0%})",
                        heartbeat=True)
        elif ev.get("event") == "index" and stage in INDEX_STAGES:
            self.line("warm-up: " + INDEX_STAGES[stage].format(total=total))


def other_load(cores: float | None) -> str:
    """Other processes' CPU use in words: '99 % of a core', '1.3 cores'."""
    if cores is None:
        return "other processes busy"
    return f"other processes {cores * 100:.0f} % of a core" if cores < 1 else f"other processes {cores:.1f} cores"


class _RunProgress:
    """One round's progress: 'pipeline[quick] round 2/3 | streaming batch 1 | 14.2 tok/s | 8.3 s / 30 s budget';
    a re-measurement (event 'attempt') says so and starts its own clock and rate."""

    def __init__(self, out: LiveProgress, label: str, budget_s: float | None):
        self.out, self.round_label, self.label, self.budget_s = out, label, label, budget_s
        self._reset()

    def _reset(self) -> None:
        self.t0 = self.chunk_t0 = time.monotonic()
        self.started, self.phase, self.chunks = False, "starting", 0
        self.batch: int | None = None
        self.tps: float | None = None

    def _text(self, what: str) -> str:
        budget = f" / {num(self.budget_s, 's')} budget" if self.budget_s else ""
        tps = f" | {num(self.tps, 'tok/s')}" if self.tps else ""
        return f"{self.label} | {what}{tps} | {seconds(time.monotonic() - self.t0)} s{budget}"

    def _where(self) -> str:
        return self.phase + (f" batch {self.batch}" if self.batch is not None else "")

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind in ("warmup", "index"):            # an isolated child warming up
            self.out.warmup_event(ev)
        elif kind == "phase":
            if not self.started:                   # the engine's clock starts here
                self.started, self.t0 = True, time.monotonic()
            self.phase, self.batch = ev.get("phase") or self.phase, ev.get("batch")
            self.chunks, self.chunk_t0 = 0, time.monotonic()
            self.out.status(self._text(self._where()), force=True)
        elif kind == "retrieved":
            self.out.status(self._text(f"retrieved {ev.get('hits')} passages"))
        elif kind == "batch":
            gate = "" if ev.get("admitted", True) else " -> below the novelty threshold, stopping"
            self.out.status(self._text(f"batch {ev.get('batch')}: {ev.get('size')} passages, novelty "
                                       f"{num(ev.get('novelty'), 'ratio')}{gate}"))
        elif kind == "batch_done":
            self.tps = ev.get("decode_tps") or self.tps
            self.out.status(self._text(f"batch {ev.get('batch')} done: {ev.get('claims')} claims, "
                                       f"{ev.get('tokens')} tokens"))
        elif kind == "tokens":
            first, self.chunks = self.chunks == 0, ev.get("count") or self.chunks + 1
            if first:                              # the rate counts from the first token: prompt eval apart
                self.chunk_t0 = time.monotonic()
            dt = time.monotonic() - self.chunk_t0
            rate = f" ({num((self.chunks - 1) / dt, 'tok/s')})" if dt > 0.5 and self.chunks > 1 else ""
            self.out.status(self._text(f"{self._where()}, {self.chunks} tokens streamed{rate}"))
        elif kind == "attempt":                    # a re-measurement (run/bench.py): its own clock and rate
            self.label = f"{self.round_label} attempt {ev.get('number')}/{ev.get('of')}"
            self._reset()
            self.out.live(f"{self.label} - busy machine ({other_load(ev.get('other_cores'))}), waiting up to "
                          f"{ev.get('wait_s'):g} s")
        elif kind == "verdict":                    # piped, an attempt measured again is said by the next one's line
            (self.out.status if ev.get("again") else self.out.live)(self._verdict(ev))

    def _verdict(self, ev: dict) -> str:
        t, rate = ev.get("execution_time_s"), ev.get("decode_tps")
        tps = f", {num(rate, 'tok/s')}" if rate else ""
        if ev.get("again"):
            how = f"timed on a busy machine ({other_load(ev.get('other_cores'))}): measuring again"
        else:
            how = ("target met" if ev.get("target_met")
                   else "; ".join(m.splitlines()[0] for m in ev.get("messages") or []) or "target missed")
            how += "; timed on a busy machine" if ev.get("contended") else ""
        took = f" in {num(t, 's')}" if t is not None else ""
        return f"{self.label} | {ev.get('status')}{took}{tps}: {how}"


PROGRESS_KEY = pytest.StashKey[LiveProgress]()


def reporter(config: pytest.Config) -> LiveProgress:
    """The config's progress display (made on first use)."""
    if PROGRESS_KEY not in config.stash:
        config.stash[PROGRESS_KEY] = LiveProgress(config)
    return config.stash[PROGRESS_KEY]


def run_progress(config: pytest.Config, bench: str, profile: str, budget_s: float | None,
                 ) -> Callable[[int, int, bool], Any]:
    """For a bench's runs: round index, count, warm-up flag -> the sink of that round's progress dicts (None when
    the display is off: the run then emits nothing)."""
    out = reporter(config)
    return lambda i, total, warmup: _RunProgress(out, f"{bench}[{profile}] " + (
        f"warm-up {i + 1}" if warmup else f"round {i + 1}/{total}"), budget_s) if out.enabled else None
