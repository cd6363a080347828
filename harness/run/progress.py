"""Live progress of a run as small JSON-able dicts (plugin/runner.py turns them into terminal lines): in-process,
fed to a callback; from an isolated child, appended to a file its parent follows. "event": phase, retrieved, batch,
batch_done (decode_tps), tokens (count), index, warmup."""
from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Callable

Sink = Callable[[dict], None]
#: The engine event's keys each plain progress dict keeps.
EVENT_KEYS = {"phase": ("phase", "batch"), "retrieved": ("hits", "cache_hit"),
              "batch": ("batch", "size", "novelty", "admitted")}


def decode_rate(call: Any) -> float | None:
    """Tokens per second of one generation call (engine.runlog.CallRecord)."""
    if getattr(call, "native_decode_tokens", None) and getattr(call, "native_decode_s", None):
        return call.native_decode_tokens / call.native_decode_s
    n, e2e, ttft = call.tokens_generated, call.e2e_s, call.ttft_s or 0.0
    return (n - 1) / (e2e - ttft) if n > 1 and e2e > ttft else None


def summarize(kind: str, data: dict) -> dict | None:
    """One engine event as a progress dict (None for events progress does not show)."""
    if kind in EVENT_KEYS:
        return {"event": kind, **{k: data.get(k) for k in EVENT_KEYS[kind]}}
    if kind == "batch_done":
        call = data.get("call")
        return {"event": "batch_done", "batch": data.get("batch"), "claims": data.get("claims"),
                "tokens": getattr(call, "tokens_generated", None),
                "decode_tps": decode_rate(call) if call is not None else None}
    return {"event": "tokens", "count": 1} if kind == "answer_delta" else None


def engine_listener(sink: Sink) -> Callable[[str, dict], None]:
    """An `on_event` for engine.research that feeds `sink` progress dicts (answer chunks counted per phase)."""
    count = 0

    def on_event(kind: str, data: dict) -> None:
        nonlocal count
        ev = summarize(kind, data)
        if ev is None:
            return
        if ev["event"] == "tokens":
            count += 1
            ev["count"] = count
        elif ev["event"] == "phase":
            count = 0
        with contextlib.suppress(Exception):      # a display problem never breaks a measured run
            sink(ev)

    return on_event


class FileSink:
    """Progress dicts appended to a JSON-lines file by an isolated child; chunk counts at most every `every_s`."""

    def __init__(self, path: str, every_s: float = 0.5):
        self.path, self.every_s, self._last = path, every_s, 0.0

    def __call__(self, ev: dict) -> None:
        now = time.monotonic()
        if ev.get("event") == "tokens" and now - self._last < self.every_s:
            return
        self._last = now
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(ev, default=str) + "\n")


class FileFollower:
    """The parent's side: new progress dicts of a child's progress file, on each `poll()`."""

    def __init__(self, path: Any, sink: Sink):
        self.path, self.sink, self._pos = path, sink, 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._pos)
                chunk = fh.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        self._pos += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(Exception):    # a torn line or a display problem never stops the run
                self.sink(json.loads(line))
