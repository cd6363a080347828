"""The session warm-up: corpus, embedder, HNSW index, CPU weights and system facts, once, outside any timed run."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Warmup:
    corpus: Any                       # engine Corpus, loaded once
    corpus_path: str | None           # where it came from (None: the engine's default corpus)
    seconds: float                    # corpus + embedder + index (+ system facts)
    index_cache_hit: bool | None
    system_info: dict | None


def warm_up(corpus_path: str | None = None, *, backend: str = "llamacpp",
            on_progress: Callable[[dict], None] | None = None) -> Warmup:
    """Load the corpus, the embedder, the HNSW index (built and cached the first time, by a child process), the
    embedded model's CPU weights (written the first time) and the system facts, so that timed runs measure research
    on a warm cache; `on_progress` gets "warmup" and "index" progress dicts."""
    from llm_research_bench.engine.corpus import load_corpus
    from llm_research_bench.engine.system import detect
    from llm_research_bench.engine.telemetry import validation_errors

    say = on_progress or (lambda ev: None)
    t0 = time.perf_counter()
    say({"event": "warmup", "step": "loading the corpus"})
    corpus = load_corpus(corpus_path)
    say({"event": "warmup", "step": f"loading the embedder and the index of {len(corpus.passages):,} passages"})
    index = load_index(corpus, corpus_path, None if on_progress is None else
                       (lambda stage, done, total: say({"event": "index", "stage": stage, "done": done, "total": total})))
    if backend == "llamacpp":
        from llm_research_bench.engine.backends.llamacpp import prepare_cpu_weights
        say({"event": "warmup", "step": "preparing the model's CPU weights"})
        prepare_cpu_weights()
    info = detect(probe_ollama_server=backend == "ollama").as_dict()
    validation_errors({})             # compiles the schema validator once, outside any run's bookkeeping
    return Warmup(corpus, corpus_path, time.perf_counter() - t0, index.cache_hit, info)


def load_index(corpus: Any, corpus_path: str | None, on_progress: Callable[[str, int, int], None] | None = None):
    """The corpus's HNSW index, from the cache; one not cached yet is built by a child process first, so that
    the build's memory never counts in this process's later measurements."""
    from llm_research_bench.engine.embed import shared_embedder
    from llm_research_bench.engine.index import HNSWIndex
    from llm_research_bench.engine.index_child import build_in_child

    embedder = shared_embedder()
    built = False
    if not (HNSWIndex.folder(corpus, embedder) / "meta.json").exists():
        built = build_in_child(corpus_path, on_progress)    # where it fails, build_or_load builds here, saying why
    index = HNSWIndex.build_or_load(corpus, embedder, on_progress=None if built else on_progress)
    if built:
        index.cache_hit = False           # this call built it (in the child)
    return index
