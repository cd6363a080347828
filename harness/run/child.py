"""The isolated child: `python -m llm_research_bench.harness.run.child REQUEST.json RESULT.json STATUS.json`.
kind "research": warms up, writes STATUS.json as the run starts, runs it and writes RESULT.json (SIGTERM stops the run
through the engine, so partial telemetry is still written); kind "call": a measurement driver's returned dict."""
from __future__ import annotations

import json
import os
import sys
import time


def _write(path: str, doc: dict) -> None:
    from llm_research_bench.engine.atomic import write_json
    write_json(path, doc, indent=None, default=str)


def _started(status_path: str, warmup_s: float) -> None:
    _write(status_path, {"event": "started", "warmup_s": round(warmup_s, 3), "pid": os.getpid()})


def _research(doc: dict, res_path: str, status_path: str) -> None:
    from .inprocess import run_in_process
    from .progress import FileSink
    from .request import RunRequest

    t0 = time.perf_counter()
    sink = FileSink(doc["progress_file"]) if doc.get("progress_file") else None
    req = RunRequest.from_json(doc["request"], on_progress=sink)
    if doc.get("warm"):
        from .warmup import warm_up
        warm = warm_up(req.corpus_path, backend=req.backend, on_progress=sink)
        req.corpus, req.system_info = warm.corpus, warm.system_info
    warmup_s = time.perf_counter() - t0
    _started(status_path, warmup_s)
    out = run_in_process(req)
    _write(res_path, {"status": out.status, "telemetry": out.telemetry, "error": out.error,
                      "wall_s": out.wall_s, "warmup_s": warmup_s, "timeout_via": out.timeout_via})


def _call(doc: dict, res_path: str, status_path: str) -> None:
    from .request import first_line, resolve_runner

    fn = resolve_runner(doc["target"])
    _started(status_path, 0.0)
    t0 = time.perf_counter()
    try:
        value = fn(**(doc.get("kwargs") or {}))
    except Exception as e:
        _write(res_path, {"status": "failed", "error": first_line(e), "wall_s": time.perf_counter() - t0})
        return
    _write(res_path, {"status": "completed", "value": value, "wall_s": time.perf_counter() - t0})


def main(argv: list[str]) -> int:
    req_path, res_path, status_path = argv
    with open(req_path, encoding="utf-8") as fh:
        doc = json.load(fh)
    for p in reversed(doc.get("sys_path") or []):
        if p not in sys.path:
            sys.path.insert(0, p)
    from .timeouts import stopping_signals

    with stopping_signals():       # SIGTERM from the parent raises Terminated, never swallowed (engine.deadline)
        (_call if doc.get("kind") == "call" else _research)(doc, res_path, status_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
