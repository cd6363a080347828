"""The isolated child: `python -m harness.child REQUEST.json RESULT.json STATUS.json`.

Warms up outside the timed run (corpus, embedder, index, system facts), writes STATUS.json when the run
starts, runs it with the profile's timeout (SIGALRM) and writes RESULT.json (status, telemetry, error). SIGTERM
from the harness stops the run through the engine, so the partial telemetry is still written. A crash or an
OOM kill leaves no RESULT.json: the parent classifies that from the exit status.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def _write(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    req_path, res_path, status_path = argv
    with open(req_path, encoding="utf-8") as fh:
        req = json.load(fh)
    for p in reversed(req.get("sys_path") or []):
        if p not in sys.path:
            sys.path.insert(0, p)

    from llm_research_bench.harness import session as S

    def _term(signum, frame):
        raise S.Terminated("stopped by the harness (SIGTERM)")

    signal.signal(signal.SIGTERM, _term)
    t0 = time.perf_counter()
    corpus = None
    system_info = None
    if req.get("warm"):
        from llm_research_bench.engine.corpus import load_corpus
        from llm_research_bench.engine.embed import shared_embedder
        from llm_research_bench.engine.index import HNSWIndex
        from llm_research_bench.engine.system import detect
        corpus = load_corpus(req.get("corpus"))
        HNSWIndex.build_or_load(corpus, shared_embedder())
        system_info = detect(probe_ollama_server=req.get("backend") == "ollama").as_dict()
    warmup_s = time.perf_counter() - t0
    run = S.RunRequest(question=req["question"], profile=S.profile_from_dict(req["profile"]),
                       backend=req.get("backend", "llamacpp"), corpus=corpus, corpus_path=req.get("corpus"),
                       early_exit=req.get("early_exit", True), retrieval=req.get("retrieval", True),
                       store_text=req.get("store_text", False), system_info=system_info,
                       research_kwargs=req.get("research_kwargs") or {}, runner=req.get("runner", S.DEFAULT_RUNNER),
                       timeout_s=req.get("timeout_s"), memray_file=req.get("memray_file"))
    _write(status_path, {"event": "started", "warmup_s": round(warmup_s, 3), "pid": os.getpid()})
    out = S.run_in_process(run)
    _write(res_path, {"status": out.status, "telemetry": out.telemetry, "error": out.error,
                      "wall_s": out.wall_s, "warmup_s": warmup_s})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
