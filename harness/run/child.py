"""The isolated child: `python -m llm_research_bench.harness.run.child REQUEST.json RESULT.json STATUS.json`.
kind "research": warms up, writes STATUS.json as the run starts, runs it and writes RESULT.json (SIGTERM stops the run
through the engine, so partial telemetry is still written); kind "call": a measurement driver's returned dict."""
from __future__ import annotations

import json
import os
import sys
import time

from llm_research_bench.engine.atomic import write_json
from llm_research_bench.engine.deadline import stopping_signals

from .inprocess import run_in_process
from .progress import FileSink
from .request import RunRequest, first_line, resolve_runner
from .warmup import warm_up


def _started(status_path: str, warmup_s: float) -> None:
    write_json(status_path, {"event": "started", "warmup_s": round(warmup_s, 3), "pid": os.getpid()}, indent=None)


def _research(doc: dict, status_path: str) -> dict:
    t0 = time.perf_counter()
    sink = FileSink(doc["progress_file"]) if doc.get("progress_file") else None
    req = RunRequest.from_json(doc["request"], on_progress=sink)
    if doc.get("warm"):
        warm = warm_up(req.corpus_path, backend=req.backend, on_progress=sink)
        req.corpus, req.system_info = warm.corpus, warm.system_info
    _started(status_path, time.perf_counter() - t0)
    out = run_in_process(req)
    return {"status": out.status, "telemetry": out.telemetry, "error": out.error, "wall_s": out.wall_s}


def _call(doc: dict, status_path: str) -> dict:
    fn = resolve_runner(doc["target"])
    _started(status_path, 0.0)
    t0 = time.perf_counter()
    try:
        return {"status": "completed", "value": fn(**doc["kwargs"]), "wall_s": time.perf_counter() - t0}
    except Exception as e:
        return {"status": "failed", "error": first_line(e), "wall_s": time.perf_counter() - t0}


def main(argv: list[str]) -> int:
    req_path, res_path, status_path = argv
    with open(req_path, encoding="utf-8") as fh:
        doc = json.load(fh)
    with stopping_signals():       # SIGTERM from the parent raises Terminated, never swallowed (engine.deadline)
        result = (_call if doc.get("kind") == "call" else _research)(doc, status_path)
        write_json(res_path, result, indent=None, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
