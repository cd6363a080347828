"""Measurement drivers of the breakdown benches: corpus-size and context-window growth points, each measured in a
fresh child (run/isolated.py call_isolated) so that its peak RSS is its own, and the scaled corpora they use."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from llm_research_bench import engine
from llm_research_bench.engine.corpus import Corpus, Passage, load_corpus
from llm_research_bench.engine.embed import shared_embedder
from llm_research_bench.engine.envvars import env, name as envvar_name
from llm_research_bench.engine.index import HNSWIndex, _build
from llm_research_bench.engine.memory import ru_maxrss_mb
from llm_research_bench.engine.profiles import get_profile

from ..analysis.breakdown import native_split
from .isolated import call_isolated

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
MIN_SENTENCE_WORDS = 5
#: A child measuring one point gets this long (it builds the scaled corpus's index cold).
POINT_TIMEOUT_S = 900.0
#: measure_corpus_size times this many searches.
N_QUERIES = 50


def sentence_splits(passages: Sequence[Passage]) -> list[tuple[str, str]]:
    """(id, text) of the sentences (>= MIN_SENTENCE_WORDS words) of multi-sentence passages, in corpus order."""
    out = []
    for p in passages:
        sents = [s for s in _SENTENCE.split(p.text) if len(s.split()) >= MIN_SENTENCE_WORDS]
        if len(sents) >= 2:
            out += [(f"{p.id}#s{j}", s) for j, s in enumerate(sents)]
    return out


def scaled_corpus(corpus: Corpus, n: int) -> Corpus:
    """A corpus of exactly n passages from `corpus`: up to its size, its passages in order; beyond, every passage,
    then the sentences (ids "<passage id>#s<j>") of multi-sentence passages. Its questions: gold passages inside."""
    base = list(corpus.passages)
    if n <= 0:
        raise ValueError("n must be positive")
    if n <= len(base):
        passages = base[:n]
        how = "abstracts"
    else:
        splits = sentence_splits(base)
        need = n - len(base)
        if need > len(splits):
            raise ValueError(f"{n:,} passages asked, but {len(base):,} passages + {len(splits):,} sentence splits "
                             f"= {len(base) + len(splits):,} is the most this corpus gives")
        passages = base + [Passage(pid, text, None) for pid, text in splits[:need]]
        how = "abstracts+sentences"
    ids = {p.id for p in passages}
    questions = [q for q in corpus.questions if q.gold_passage_ids and all(g in ids for g in q.gold_passage_ids)]
    return Corpus(passages, questions, corpus.source, f"{corpus.format}:scaled-{how}-{n}")


def measure_corpus_size(n: int, question: str, cache_dir: str, profile: str = "quick",
                        with_telemetry: bool = False) -> dict:
    """In a child whose index cache is `cache_dir` (corpus_size_point): build the scaled corpus's index cold (the
    HNSW part timed again alone on the same vectors; the rest counts as embedding), time N_QUERIES searches,
    then one research run on the now warm index."""
    if env("CACHE_DIR") != cache_dir:
        raise RuntimeError("run this in a child whose RESEARCH_BENCH_CACHE_DIR is cache_dir (corpus_size_point does), "
                           "so that research() below finds the index built here")
    prof = get_profile(profile)
    t0 = time.perf_counter()
    corpus = scaled_corpus(load_corpus(), n)
    load_s = time.perf_counter() - t0
    emb = shared_embedder()
    rss_before = ru_maxrss_mb()
    t0 = time.perf_counter()
    index = HNSWIndex.build_or_load(corpus, emb, cache_dir=Path(cache_dir))   # cold: embed + HNSW + save
    build_s = time.perf_counter() - t0
    if index.cache_hit:
        raise RuntimeError(f"{cache_dir} already held this index: the build was not cold")
    t0 = time.perf_counter()
    _build(index.vectors, 16, 200)                   # the engine's HNSW build alone, with its default parameters
    hnsw_s = time.perf_counter() - t0
    embed_s = max(1e-9, build_s - hnsw_s)             # embedding + saving the cache files
    index_bytes = sum(f.stat().st_size for f in index.path.iterdir() if f.is_file())
    times = []
    for v in emb.encode([q.question for q in corpus.questions[:N_QUERIES]]):
        t0 = time.perf_counter()
        index.search(v, prof.retrieve_k, prof.ef_search)
        times.append(time.perf_counter() - t0)
    rss_after_build = ru_maxrss_mb()
    tel = engine.research(question, profile=prof, corpus=corpus).telemetry
    return {
        **({"telemetry": tel} if with_telemetry else {}),
        "passages": n, "corpus_format": corpus.format, "corpus_load_s": load_s,
        "embed_s": embed_s, "embed_passages_per_second": n / embed_s,
        "index_build_s": build_s, "hnsw_s": hnsw_s,
        "index_mb": index_bytes / 2**20, "search_ms": float(np.median(times)) * 1000 if times else None,
        "research_s": tel["metrics"]["execution_time_s"], "research_plan_s": tel["phases"]["plan_s"],
        "index_cache_hit_in_run": tel["corpus"]["index_cache_hit"],
        "memory_peak_mb": ru_maxrss_mb(), "rss_before_build_mb": rss_before, "rss_after_build_mb": rss_after_build,
        "run_memory_peak_mb": tel["metrics"]["memory_peak_mb"], "success": tel["success"],
    }


def measure_context_window(context_window: int, question: str, profile: str = "quick",
                           with_telemetry: bool = False) -> dict:
    """One research run with the profile's context window replaced (index cache as usual)."""
    prof = get_profile(profile).with_overrides(context_window=context_window)
    corpus = load_corpus()
    HNSWIndex.build_or_load(corpus, shared_embedder())          # warm: the run measures research, not the cache
    rss_warm = ru_maxrss_mb()
    tel = engine.research(question, profile=prof, corpus=corpus).telemetry
    m = tel["metrics"]
    return {
        **({"telemetry": tel} if with_telemetry else {}),
        "context_window": context_window, "research_s": m["execution_time_s"],
        "prompt_tokens_evaluated": m["prompt_tokens_evaluated"], "unique_context_tokens": m["unique_context_tokens"],
        "tokens_generated": m["tokens_generated"], "batches": m["batches"],
        "prompt_eval_s": native_split(tel)["prompt_eval_s"], "memory_peak_mb": ru_maxrss_mb(),
        "run_memory_peak_mb": m["memory_peak_mb"], "rss_warm_mb": rss_warm,
        "early_exit_reason": tel["early_exit"]["reason"], "success": tel["success"],
    }


def corpus_size_point(n: int, question: str, profile: str, *, cache_dir: str, with_telemetry: bool = False) -> dict:
    """`measure_corpus_size` in a fresh child whose index cache is `cache_dir` (an empty folder)."""
    return call_isolated(f"{__name__}:measure_corpus_size",
                         {"n": n, "question": question, "profile": profile, "cache_dir": cache_dir,
                          "with_telemetry": with_telemetry},
                         timeout_s=POINT_TIMEOUT_S, env={envvar_name("CACHE_DIR"): cache_dir})


def context_window_point(context_window: int, question: str, profile: str, *, with_telemetry: bool = False) -> dict:
    """`measure_context_window` in a fresh child."""
    return call_isolated(f"{__name__}:measure_context_window",
                         {"context_window": context_window, "question": question, "profile": profile,
                          "with_telemetry": with_telemetry}, timeout_s=POINT_TIMEOUT_S)
