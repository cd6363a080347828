"""Live progress on the terminal while benches run (session warm-up, each run's phase, batch, tokens per second
and time against budget), through pytest's terminal reporter with capture suspended. Quiet under -q and on xdist
workers; in a TTY a status line is redrawn in place, elsewhere status lines come at most every HEARTBEAT_S."""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable

import pytest

from ..units import num, seconds

#: Off a TTY: at most one status line per this many seconds between durable lines.
HEARTBEAT_S = 10.0
#: In a TTY: redraw the status line at most this often.
REDRAW_S = 0.25
PREFIX = "[research-bench]"
#: The session warm-up's index stages with a line of their own (the embedding stage shows its progress).
INDEX_STAGES = {"cached": "index loaded from the cache ({total:,} passages)",
                "hnsw": "index build: HNSW graph of {total:,} passages built",
                "saved": "index build: saved to the cache"}


class LiveProgress:
    """The session's progress display (one per pytest config)."""

    def __init__(self, config: pytest.Config):
        self.tr = config.pluginmanager.get_plugin("terminalreporter")
        self.capman = config.pluginmanager.get_plugin("capturemanager")
        self.enabled = (self.tr is not None and config.get_verbosity() >= 0
                        and getattr(config, "workerinput", None) is None)
        self.tty = bool(getattr(self.tr, "isatty", False))
        self._dangling = False          # a redrawn status line without its newline yet
        self._last_status = 0.0         # when a line was written or a status redrawn

    def _suspended(self):
        return self.capman.global_and_fixture_disabled() if self.capman is not None else nullcontext()

    def line(self, text: str) -> None:
        """A durable line."""
        if not self.enabled:
            return
        with self._suspended():
            if self._dangling:
                self.tr.rewrite(f"{PREFIX} {text}", erase=True)
                self.tr.write("\n", flush=True)
                self._dangling = False
            else:
                self.tr.write_line(f"{PREFIX} {text}", flush=True)
        self._last_status = time.monotonic()

    def status(self, text: str, *, force: bool = False) -> None:
        """A passing status: redrawn in place in a TTY, a throttled plain line elsewhere."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_status < REDRAW_S:
                return
            with self._suspended():
                if not self._dangling:
                    self.tr.ensure_newline()
                self.tr.rewrite(f"{PREFIX} {text}", erase=True)
                self._dangling = True
            self._last_status = now
        elif force or now - self._last_status >= HEARTBEAT_S:
            self.line(text)

    # -- the session warm-up -----------------------------------------------------------------------------------
    def warmup_event(self, ev: dict) -> None:
        stage, done, total = ev.get("stage"), ev.get("done") or 0, ev.get("total") or 0
        if ev.get("event") == "warmup":
            self.line(f"warm-up: {ev.get('step')}")
        elif ev.get("event") == "index" and stage == "embed":
            text = f"warm-up: index build: embedded {done:,}/{total:,} passages ({done / max(1, total):.0%})"
            (self.line if done in (0, total) else self.status)(text)
        elif ev.get("event") == "index" and stage in INDEX_STAGES:
            self.line("warm-up: " + INDEX_STAGES[stage].format(total=total))


class _RunProgress:
    """One run's progress lines: '<bench>[<profile>] round 2/3 | streaming batch 1 | 14.2 tok/s | 8.3 s / 30 s'."""

    def __init__(self, out: LiveProgress, label: str, budget_s: float | None):
        self.out, self.label, self.budget_s = out, label, budget_s
        self.t0 = self.chunk_t0 = time.monotonic()
        self.started, self.phase, self.chunks = False, "starting", 0
        self.batch: int | None = None
        self.tps: float | None = None

    def _text(self, what: str) -> str:
        el = time.monotonic() - self.t0
        budget = f" / {num(self.budget_s, 's')} budget" if self.budget_s else ""
        tps = f" | {num(self.tps, 'tok/s')}" if self.tps else ""
        return f"{self.label} | {what}{tps} | {seconds(el)} s{budget}"

    def _where(self) -> str:
        return self.phase + (f" batch {self.batch}" if self.batch is not None else "")

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind in ("warmup", "index"):            # an isolated child warming up
            self.out.warmup_event(ev)
            return
        if kind == "phase":
            if not self.started:                   # the engine's clock starts here
                self.started, self.t0 = True, time.monotonic()
            self.phase, self.batch = ev.get("phase") or self.phase, ev.get("batch")
            self.chunks, self.chunk_t0 = 0, time.monotonic()
            self.out.line(self._text(self._where()))
        elif kind == "retrieved":
            self.out.line(self._text(f"retrieved {ev.get('hits')} passages"))
        elif kind == "batch":
            nov = ev.get("novelty")
            gate = "" if ev.get("admitted", True) else " -> below the novelty threshold, stopping"
            self.out.status(self._text(f"batch {ev.get('batch')}: {ev.get('size')} passages, novelty "
                                       f"{num(nov, 'ratio')}{gate}"), force=not ev.get("admitted", True))
        elif kind == "batch_done":
            if ev.get("decode_tps"):
                self.tps = ev["decode_tps"]
            self.out.line(self._text(f"batch {ev.get('batch')} done: {ev.get('claims')} claims, "
                                     f"{ev.get('tokens')} tokens"))
        elif kind == "tokens":
            self.chunks = ev.get("count") or self.chunks + 1
            dt = time.monotonic() - self.chunk_t0
            live = f", {self.chunks} tokens streamed ({num(self.chunks / dt, 'tok/s')})" if dt > 0.5 else ""
            self.out.status(self._text(self._where() + live))
        elif kind == "verdict":                    # the harness judged the run (run/bench.py)
            t = ev.get("execution_time_s")
            how = "target met" if ev.get("target_met") else "; ".join(ev.get("messages") or []) or "target missed"
            self.out.line(f"{self.label} | {ev.get('status')} in {num(t, 's')}: {how}")


PROGRESS_KEY = pytest.StashKey[LiveProgress]()


def reporter(config: pytest.Config) -> LiveProgress:
    """The config's progress display (made on first use)."""
    p = config.stash.get(PROGRESS_KEY, None)
    if p is None:
        p = config.stash[PROGRESS_KEY] = LiveProgress(config)
    return p


def run_progress(config: pytest.Config, bench: str, profile: str, budget_s: float | None,
                 ) -> Callable[[int, int, bool], Any]:
    """For a bench's runs: round index, count, warm-up flag -> the sink of that round's progress dicts (None when
    the display is off: the run then emits nothing)."""
    out = reporter(config)
    return lambda i, total, warmup: _RunProgress(out, f"{bench}[{profile}] " + (
        f"warm-up {i + 1}" if warmup else f"round {i + 1}/{total}"), budget_s) if out.enabled else None
