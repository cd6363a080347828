"""The performance breakdown: pure logic over measured telemetry (phase shares, native time split, prompt
cache use, growth fits) and the scaled corpora the corpus-size bench runs on.

Metric names, units and directions: schemas/breakdown.schema.json (`metric_specs()`).

Scaled corpora (`scaled_corpus(corpus, n)`), built from PubMedQA-L's 1,000 abstracts (3,358 passages):
- n <= 3,358: whole abstracts in corpus order until n passages (the last abstract may be cut short);
- n  > 3,358: every passage, then sentence-level splits of the multi-sentence passages in corpus order
  (sentences of >= 5 words; a passage that is one sentence adds nothing, so no split repeats a passage)
  until n. The ids are "<passage id>#s<j>". The corpus holds ~8,600 such sentences, so up to ~12,000 passages.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

from llm_research_bench.harness import summary_schemas

SCHEMA_PATH = summary_schemas.SCHEMAS / "breakdown.schema.json"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
MIN_SENTENCE_WORDS = 5


def schema() -> dict:
    return summary_schemas.load("breakdown")


def metric_specs() -> dict[str, dict]:
    """Breakdown metric name -> its schema entry (x-unit, x-better, x-label, description)."""
    return summary_schemas.metric_specs("breakdown")


def validation_errors(summary: dict) -> list[str]:
    return summary_schemas.validation_errors("breakdown", summary)


# -- one run's time -----------------------------------------------------------------------------------------

def phase_shares(telemetry: dict) -> dict[str, float]:
    """'phase_share_<phase>' -> share of execution_time_s spent in that phase (phases from the telemetry)."""
    total = telemetry["metrics"]["execution_time_s"]
    if not total:
        return {}
    return {f"phase_share_{k[:-2] if k.endswith('_s') else k}": v / total for k, v in telemetry["phases"].items()}


def native_split(telemetry: dict) -> dict[str, float | None]:
    """Where generation time went, from the backend's own counters summed over the calls: prompt evaluation,
    decoding, and the rest (sampling, detokenising, the engine's streaming loop), each as seconds and as a
    share of the run's wall time."""
    calls = telemetry["traces"]["calls"]
    total = telemetry["metrics"]["execution_time_s"] or 0.0
    pe = sum(c.get("native_prompt_eval_s") or 0.0 for c in calls)
    dec = sum(c.get("native_decode_s") or 0.0 for c in calls)
    gen = sum(c.get("e2e_s") or 0.0 for c in calls)
    return {
        "prompt_eval_s": pe, "decode_s": dec, "generation_wall_s": gen,
        "generation_other_s": max(0.0, gen - pe - dec),
        "prompt_eval_share": pe / total if total else None,
        "decode_share": dec / total if total else None,
        "generation_other_share": max(0.0, gen - pe - dec) / total if total else None,
    }


def prompt_cache_hit_share(telemetry: dict) -> float | None:
    """Share of the prompt tokens sent that the backend did not evaluate (served from the KV prefix cache)."""
    m = telemetry["metrics"]
    total = m.get("prompt_tokens_total") or 0
    return 1.0 - m["prompt_tokens_evaluated"] / total if total else None


# -- growth -------------------------------------------------------------------------------------------------

def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept); None with fewer than two distinct x."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def loglog_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """b in y ~ x^b (least squares on logs): 1 = linear growth, 0 = flat. None if any value is <= 0."""
    if any(x <= 0 for x in xs) or any(y <= 0 for y in ys):
        return None
    fit = linear_fit([math.log(x) for x in xs], [math.log(y) for y in ys])
    return fit[0] if fit else None


def growth_summary(points: Sequence[dict], x: str, ys: Sequence[str]) -> dict[str, dict]:
    """For each y: slope per 1,000 units of x, the log-log exponent, and the ratio of the largest-x value to the
    smallest-x value."""
    pts = sorted((p for p in points if p.get(x) is not None), key=lambda p: p[x])
    out = {}
    for y in ys:
        pp = [p for p in pts if isinstance(p.get(y), (int, float))]
        xs, vs = [p[x] for p in pp], [p[y] for p in pp]
        fit = linear_fit(xs, vs)
        out[y] = {"per_1k": fit[0] * 1000 if fit else None, "exponent": loglog_exponent(xs, vs),
                  "ratio_max_min": (vs[-1] / vs[0]) if len(vs) >= 2 and vs[0] else None}
    return out


# -- scaled corpora -----------------------------------------------------------------------------------------

def sentence_splits(passages: Sequence[Any]) -> list[tuple[str, str]]:
    """(id, text) of the sentences of multi-sentence passages, in corpus order (see module doc)."""
    out = []
    for p in passages:
        sents = [s for s in _SENTENCE.split(p.text) if len(s.split()) >= MIN_SENTENCE_WORDS]
        if len(sents) >= 2:
            out += [(f"{p.id}#s{j}", s) for j, s in enumerate(sents)]
    return out


def scaled_corpus(corpus: Any, n: int) -> Any:
    """A corpus of exactly n passages built from `corpus` (an engine Corpus) as the module doc says; its
    questions are those whose gold passages are all inside."""
    from llm_research_bench.engine.corpus import Corpus, Passage

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


# -- measurements (run the engine; each in a fresh child process, so its peak RSS is its own) ---------------

def _peak_rss_mb() -> float:
    from llm_research_bench.engine.memory import ru_maxrss_mb
    return ru_maxrss_mb()


def measure_corpus_size(n: int, question: str, profile: str = "quick", n_queries: int = 50,
                        cache_dir: str | None = None, with_telemetry: bool = False) -> dict:
    """In this process: build the scaled corpus of n passages, build its index cold (embedding + HNSW + save,
    into `cache_dir`, a fresh folder; the HNSW part is timed again alone on the same vectors, the rest counts
    as embedding), time `n_queries` HNSW searches, then one research run on the now warm index.
    Meant to run in a fresh child (see `in_child`): peak RSS is then this size's own."""
    import os
    import tempfile
    import time

    import numpy as np

    from llm_research_bench.engine import research
    from llm_research_bench.engine.corpus import load_corpus
    from llm_research_bench.engine.embed import shared_embedder
    from llm_research_bench.engine.index import HNSWIndex
    from llm_research_bench.engine.profiles import get_profile

    cache = cache_dir or tempfile.mkdtemp(prefix="breakdown-index-")
    os.environ["RESEARCH_CACHE_DIR"] = cache            # research() below finds the index built here
    prof = get_profile(profile)
    t0 = time.perf_counter()
    corpus = scaled_corpus(load_corpus(), n)
    load_s = time.perf_counter() - t0
    emb = shared_embedder()
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    index = HNSWIndex.build_or_load(corpus, emb, cache_dir=Path(cache))   # cold: embed + HNSW + save
    build_s = time.perf_counter() - t0
    if index.cache_hit:
        raise RuntimeError(f"{cache} already held this index: the build was not cold")
    # HNSW construction alone, on the same vectors and parameters (the engine's defaults), to split the build.
    import hnswlib
    t0 = time.perf_counter()
    h = hnswlib.Index(space="ip", dim=index.vectors.shape[1])
    h.init_index(max_elements=len(index.ids), M=16, ef_construction=200, random_seed=42)
    h.add_items(index.vectors, np.arange(len(index.ids)))
    hnsw_s = time.perf_counter() - t0
    del h
    embed_s = max(1e-9, build_s - hnsw_s)             # embedding + saving the cache files
    index_bytes = sum(f.stat().st_size for f in index.path.iterdir() if f.is_file())
    qs = [q.question for q in corpus.questions[:n_queries]]
    qv = emb.encode(qs)
    times = []
    for v in qv:
        t0 = time.perf_counter()
        index.search(v, prof.retrieve_k, prof.ef_search)
        times.append(time.perf_counter() - t0)
    rss_after_build = _peak_rss_mb()
    sess = research(question, profile=prof, corpus=corpus)
    tel = sess.telemetry
    return {
        **({"telemetry": tel} if with_telemetry else {}),
        "passages": n, "corpus_format": corpus.format, "corpus_load_s": load_s,
        "embed_s": embed_s, "embed_passages_per_second": n / embed_s,
        "index_build_s": build_s, "hnsw_s": hnsw_s,
        "index_mb": index_bytes / 2**20, "search_ms": float(np.median(times)) * 1000 if times else None,
        "research_s": tel["metrics"]["execution_time_s"], "research_plan_s": tel["phases"]["plan_s"],
        "index_cache_hit_in_run": tel["corpus"]["index_cache_hit"],
        "memory_peak_mb": _peak_rss_mb(), "rss_before_build_mb": rss_before, "rss_after_build_mb": rss_after_build,
        "run_memory_peak_mb": tel["metrics"]["memory_peak_mb"], "success": tel["success"],
    }


def measure_context_window(context_window: int, question: str, profile: str = "quick",
                           with_telemetry: bool = False) -> dict:
    """In this process: one research run with the profile's context window replaced (index cache as usual)."""
    from llm_research_bench.engine import research
    from llm_research_bench.engine.corpus import load_corpus
    from llm_research_bench.engine.embed import shared_embedder
    from llm_research_bench.engine.index import HNSWIndex
    from llm_research_bench.engine.profiles import get_profile

    prof = get_profile(profile).with_overrides(context_window=context_window)
    corpus = load_corpus()
    HNSWIndex.build_or_load(corpus, shared_embedder())          # warm: the run measures research, not the cache
    rss_warm = _peak_rss_mb()
    tel = research(question, profile=prof, corpus=corpus).telemetry
    m = tel["metrics"]
    return {
        **({"telemetry": tel} if with_telemetry else {}),
        "context_window": context_window, "research_s": m["execution_time_s"],
        "prompt_tokens_evaluated": m["prompt_tokens_evaluated"], "unique_context_tokens": m["unique_context_tokens"],
        "tokens_generated": m["tokens_generated"], "batches": m["batches"],
        "prompt_eval_s": native_split(tel)["prompt_eval_s"], "memory_peak_mb": _peak_rss_mb(),
        "run_memory_peak_mb": m["memory_peak_mb"], "rss_warm_mb": rss_warm,
        "early_exit_reason": tel["early_exit"]["reason"], "success": tel["success"],
    }


def in_child(fn, *args, timeout_s: float = 900, **kwargs) -> dict:
    """Run fn(*args, **kwargs) in a fresh interpreter (multiprocessing 'spawn') and return its result."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=timeout_s)


class ForeignCPU:
    """How busy the machine was with other processes' work while a measurement ran: (system-wide busy CPU time
    - this process's and its reaped children's CPU time) / (wall time x logical CPUs). 0 = the measurement had
    the machine to itself; 0.5 on 2 cores = another process kept one core busy (timings inflated).

        with ForeignCPU() as fc: ...
        fc.share
    """

    def __init__(self) -> None:
        self.share: float | None = None

    @staticmethod
    def _busy() -> float:
        import psutil
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    @staticmethod
    def _own() -> float:
        import psutil
        c = psutil.Process().cpu_times()
        kids = 0.0
        try:
            for ch in psutil.Process().children(recursive=True):
                ct = ch.cpu_times()
                kids += ct.user + ct.system
        except psutil.Error:
            pass
        return c.user + c.system + c.children_user + c.children_system + kids

    def __enter__(self) -> "ForeignCPU":
        import time
        self._t, self._b, self._o = time.perf_counter(), self._busy(), self._own()
        return self

    def __exit__(self, *exc) -> None:
        import time

        import psutil
        wall = time.perf_counter() - self._t
        ncpu = psutil.cpu_count() or 1
        if wall > 0:
            self.share = max(0.0, min(1.0, ((self._busy() - self._b) - (self._own() - self._o)) / (wall * ncpu)))


def wait_quiet(threshold: float = 0.25, window_s: float = 3.0, max_wait_s: float = 240.0) -> dict:
    """Wait (up to max_wait_s) until other processes use less than `threshold` of the CPUs over a `window_s`
    window, so a timing starts on a quiet machine. Returns {'waited_s', 'foreign_cpu_share'} (the last window);
    never fails: on a machine that stays busy the measurement goes ahead and the record says how busy it was."""
    import time
    t0 = time.perf_counter()
    while True:
        with ForeignCPU() as fc:
            time.sleep(window_s)
        if (fc.share or 0.0) < threshold or time.perf_counter() - t0 >= max_wait_s:
            return {"waited_s": round(time.perf_counter() - t0, 1), "foreign_cpu_share_before": round(fc.share or 0.0, 3)}
