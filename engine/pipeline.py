"""The streaming research pipeline: plan -> retrieve -> stream evidence batches -> synthesize -> telemetry.

`research(...)` is the public entry. Every figure in the telemetry it returns is measured during the run.
"""
from __future__ import annotations

import datetime as _dt
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import prompts
from .backends import Backend, Message, make_backend
from .batching import AdaptiveBatchSizer, adaptive_batch_effectiveness
from .claims import CitationResolver, Claim, ClaimStreamParser, citation_counts, parse_claim_line
from .corpus import Corpus, Passage, load_corpus
from .embed import shared_embedder
from .index import HNSWIndex
from .memory import MemorySampler, ProcessTree, find_ollama_server_pids, ru_maxrss_mb
from .novelty import EarlyExitController
from .profiles import Profile, get_profile
from .stream import StreamMeter, itl_percentiles, tpot
from .synthesis import SYNTHESIS_PREFILL, closed_book_request, parse_decision, synthesis_request
from . import system as system_mod
from .telemetry import SCHEMA_VERSION, redact, sha256, write_atomic

MAX_QUESTION_CHARS = 4000
SYNTHESIS_PROMPT_RESERVE = 96   # tokens kept free for the synthesis request itself
PHASES = ("plan", "evidence_processing", "streaming_inference", "synthesis")


class QuestionError(ValueError):
    """The question cannot be researched (empty, too long); the message says what to change."""


class ResearchFailed(RuntimeError):
    """The run started but failed; `.telemetry` holds everything measured up to the failure."""

    def __init__(self, message: str, telemetry: dict):
        super().__init__(message)
        self.telemetry = telemetry


class PhaseClock:
    """Attributes every moment of the run to exactly one phase, so the phases partition the run time.

    It runs from its creation (in `first` phase) to stop(); `elapsed` is that whole span."""

    def __init__(self, first: str | None = None) -> None:
        self.totals = {p: 0.0 for p in PHASES}
        self.current: str | None = first
        self.started = self._since = time.perf_counter()
        self.stopped: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.stopped or time.perf_counter()) - self.started

    def switch(self, phase: str) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.totals[self.current] += now - self._since
        self.current, self._since = phase, now

    def stop(self) -> None:
        self.switch(self.current or "plan")
        self.current = None
        self.stopped = self._since


@dataclass
class ResearchSession:
    """What a run produced: the answer, its claims and sources, and the telemetry document."""
    question: str
    answer: str
    decision: str | None
    claims: list[Claim]
    sources: dict[int, str]                 # label -> passage id, for every passage that was in context
    telemetry: dict
    passages: dict[str, Passage] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return bool(self.telemetry.get("success"))

    def cited_sources(self) -> list[tuple[int, str]]:
        used = {pid for c in self.claims for pid in c.valid_sources}
        used |= set(self.telemetry["answer"]["sources"])
        return [(label, pid) for label, pid in sorted(self.sources.items()) if pid in used]


Event = Callable[[str, dict], None]


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty: pass the question to research as text")
    q = " ".join(question.split())
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(q):,} characters; the limit is {MAX_QUESTION_CHARS:,}: "
                            f"shorten it to the question itself")
    return q


@dataclass
class _Run:
    """Mutable state of one run (all measured)."""
    profile: Profile
    backend_name: str
    question: str
    started_at: str
    clock: PhaseClock
    meter: StreamMeter
    sampler: MemorySampler
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    backend: Backend | None = None
    corpus: Corpus | None = None
    index_cache_hit: bool | None = None
    embed_device: str = "cpu"
    embedding_model: str = ""
    calls: list[dict] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    sizer: AdaptiveBatchSizer | None = None
    gate: EarlyExitController | None = None
    early_exit: dict = field(default_factory=lambda: {"triggered": False, "batch": None, "reason": "evidence_exhausted"})
    answer: str = ""
    decision: str | None = None
    answer_sources: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    final_context_tokens: int = 0
    gold: Any = None
    retrieval: bool = True
    memory_limit_mb: float = 0.0                  # the profile's limit for this machine class
    resolver: CitationResolver = field(default_factory=CitationResolver)   # labels of passages in context
    messages: list[Message] = field(default_factory=list)                  # the conversation so far


def research(question: str, *, profile: str | Profile = "quick", backend: str | Backend = "llamacpp",
             model: str | None = None, corpus: str | Path | Corpus | None = None,
             profiles_file: str | Path | None = None, early_exit: bool = True, retrieval: bool = True,
             store_text: bool = False, telemetry_out: str | Path | None = None,
             on_event: Event | None = None, system_info: dict | None = None) -> ResearchSession:
    """Research `question` over `corpus` with a real model; return the session with its telemetry.

    User errors found before the run (profile, question, corpus, backend) raise their own error types with a
    message naming the fix. A failure during the run raises ResearchFailed carrying the partial telemetry;
    any other exception (KeyboardInterrupt, a harness timeout) gets the partial telemetry attached as
    `exc.research_telemetry` before it propagates."""
    emit = on_event or (lambda kind, data: None)
    prof = profile if isinstance(profile, Profile) else get_profile(profile, profiles_file)
    q = _check_question(question)
    backend_name = backend if isinstance(backend, str) else backend.name
    if isinstance(backend, str) and backend not in ("llamacpp", "ollama"):
        from .backends import BackendError
        raise BackendError(f"unknown backend '{backend}': use llamacpp or ollama")
    corp = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)

    extra = find_ollama_server_pids() if backend_name == "ollama" else []
    run = _Run(profile=prof, backend_name=backend_name, question=q,
               started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
               clock=PhaseClock("plan"), meter=StreamMeter(),
               sampler=MemorySampler(ProcessTree(extra_pids=extra)), corpus=corp, retrieval=retrieval,
               memory_limit_mb=prof.budget_for(system_mod.current_machine_class()).memory_mb)
    run.gold = corp.question_by_text(q)
    run.sampler.start()
    own_backend = isinstance(backend, str)
    try:
        try:
            run.backend = backend if isinstance(backend, Backend) else make_backend(
                backend, model or prof.model_for(backend), context_window=prof.context_window,
                timeout_s=prof.timeout_s)
            emit("phase", {"phase": "plan"})
            if retrieval:
                _stream_evidence(run, emit, early_exit)
            _synthesize(run, emit)
        finally:
            run.clock.stop()
            run.sampler.stop()
    except BaseException as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        run.errors.append(f"{type(exc).__name__}: {msg}")
        tel = _telemetry(run, system_info, store_text, success=False,
                         timed_out=type(exc).__name__ in ("Failed", "Timeout") and "imeout" in msg)
        if telemetry_out:
            write_atomic(telemetry_out, tel)
        if own_backend and run.backend is not None:
            run.backend.close()
        if isinstance(exc, Exception):
            raise ResearchFailed(msg, tel) from exc
        exc.research_telemetry = tel  # type: ignore[attr-defined]
        raise
    tel = _telemetry(run, system_info, store_text, success=True)
    if telemetry_out:
        write_atomic(telemetry_out, tel)
    if own_backend:
        run.backend.close()
    in_context = run.resolver.ids
    passages = {p.id: p for p in corp.passages if p.id in in_context}
    return ResearchSession(q, run.answer, run.decision, run.claims, dict(run.resolver.labels), tel, passages)


def _generate(run: _Run, messages: list[Message], *, max_tokens: int, prefill: str, kind: str,
              on_delta: Callable[[str], None]) -> str:
    """Stream one call, timing it; returns the text generated (without the prefill)."""
    backend = run.backend
    assert backend is not None
    parts: list[str] = []
    try:
        for delta in run.meter.measure(backend.stream(messages, max_tokens=max_tokens, prefill=prefill)):
            if delta:
                parts.append(delta)
                on_delta(delta)
    finally:
        timing = run.meter.calls[-1]
        st = backend.last_stats
        backend.last_stats = None
        run.calls.append({
            "kind": kind, "prompt_tokens": st.prompt_tokens if st else 0,
            "prompt_tokens_evaluated": st.prompt_tokens_evaluated if st else 0,
            "tokens_generated": st.tokens_generated if st else 0,
            "ttft_s": timing.ttft_s, "e2e_s": timing.e2e_s,
            "native_prompt_eval_s": st.native_prompt_eval_s if st else None,
            "native_decode_s": st.native_decode_s if st else None,
            "native_decode_tokens": st.native_decode_tokens if st else None,
            "chunks": len(timing.chunk_times), "finish_reason": st.finish_reason if st else None,
            "complete": st is not None})
    return "".join(parts)


def _stream_evidence(run: _Run, emit: Event, early_exit: bool) -> None:
    prof, backend, corp = run.profile, run.backend, run.corpus
    assert backend is not None and corp is not None
    embedder = shared_embedder()
    run.embed_device, run.embedding_model = embedder.device, embedder.model_id
    index = HNSWIndex.build_or_load(corp, embedder)
    run.index_cache_hit = index.cache_hit
    hits = index.search(embedder.encode([run.question])[0], prof.retrieve_k, prof.ef_search)
    emit("retrieved", {"hits": len(hits), "cache_hit": index.cache_hit})

    run.sizer = AdaptiveBatchSizer(prof.batch_size, prof.min_batch_size, prof.max_batch_size)
    run.gate = EarlyExitController(prof.novelty_threshold, enabled=early_exit)
    resolver = run.resolver
    by_id = {p.id: p for p in corp.passages}
    messages: list[Message] = []
    reserve = prof.claim_tokens + SYNTHESIS_PROMPT_RESERVE + prof.synthesis_tokens
    generated = 0
    seen: set[str] = set()
    pos, b = 0, 0
    while True:
        run.clock.switch("evidence_processing")
        if pos >= len(hits):
            run.early_exit = {"triggered": False, "batch": None, "reason": "evidence_exhausted"}
            break
        if generated + prof.claim_tokens + prof.synthesis_tokens > prof.max_tokens:
            run.early_exit = {"triggered": False, "batch": b, "reason": "token_budget"}
            break
        size = run.sizer.next_size(b, run.sampler.pressure(run.memory_limit_mb))
        batch_hits = hits[pos:pos + size]
        vectors = index.vectors[[h.passage_index for h in batch_hits]]
        admitted, nov = run.gate.admit(b, vectors)
        entry = {"index": b, "size": len(batch_hits), "passage_ids": [h.passage_id for h in batch_hits],
                 "novelty": round(nov, 4), "admitted": admitted}
        emit("batch", {"batch": b, "size": len(batch_hits), "novelty": nov, "admitted": admitted})
        if not admitted:
            run.batches.append(entry)
            run.early_exit = {"triggered": True, "batch": b, "reason": "novelty_below_threshold"}
            break
        # Fit the batch into the context window (counted with the backend's tokenizer), dropping its tail.
        take = list(batch_hits)
        while take:
            labels = [(len(resolver.labels) + i + 1, by_id[h.passage_id]) for i, h in enumerate(take)]
            wanted = prompts.claims_wanted(len(take))
            text = (prompts.first_batch(run.question, labels, wanted) if not messages
                    else prompts.next_batch(labels, wanted))
            trial = messages + [Message("user", text)]
            if backend.prompt_tokens(trial, prompts.CLAIM_PREFILL) + reserve <= prof.context_window:
                break
            take.pop()
        if not take:
            entry["admitted"] = False
            run.batches.append(entry)
            run.early_exit = {"triggered": False, "batch": b, "reason": "context_full"}
            break
        for h in take:
            resolver.add(h.passage_id)
        entry["size"], entry["passage_ids"] = len(take), [h.passage_id for h in take]
        messages = trial
        parser = ClaimStreamParser(resolver, batch=b, seen=seen)
        parser.feed(prompts.CLAIM_PREFILL)

        def on_delta(d: str, parser=parser) -> None:
            for c in parser.feed(d):
                emit("claim", {"claim": c})

        run.clock.switch("streaming_inference")
        emit("phase", {"phase": "streaming_inference", "batch": b})
        out = _generate(run, messages, max_tokens=prof.claim_tokens, prefill=prompts.CLAIM_PREFILL, kind="claims",
                        on_delta=on_delta)
        run.clock.switch("evidence_processing")
        for c in parser.close():
            emit("claim", {"claim": c})
        generated += run.calls[-1]["tokens_generated"]
        messages = messages + [Message("assistant", prompts.CLAIM_PREFILL + out)]
        run.claims += parser.claims
        cit, val, inv = citation_counts(parser.claims)
        entry.update(claims=len(parser.claims), valid_citations=val, invalid_citations=inv)
        run.batches.append(entry)
        emit("batch_done", {"batch": b, "claims": len(parser.claims), "call": run.calls[-1]})
        pos += size
        b += 1
    run.messages = messages


def _synthesize(run: _Run, emit: Event) -> None:
    run.clock.switch("synthesis")
    emit("phase", {"phase": "synthesis"})
    prev = run.messages
    if run.retrieval and prev:
        messages = prev + [Message("user", synthesis_request(run.question))]
    else:
        messages = [Message("user", closed_book_request(run.question))]
    backend = run.backend
    assert backend is not None
    room = run.profile.context_window - backend.prompt_tokens(messages, SYNTHESIS_PREFILL)
    max_tokens = max(16, min(run.profile.synthesis_tokens, room - 8))
    out = _generate(run, messages, max_tokens=max_tokens, prefill=SYNTHESIS_PREFILL, kind="synthesis",
                    on_delta=lambda d: emit("answer_delta", {"text": d}))
    run.answer = (SYNTHESIS_PREFILL + out).strip()
    run.decision = parse_decision(run.answer)
    run.final_context_tokens = run.calls[-1]["prompt_tokens"] + run.calls[-1]["tokens_generated"]
    resolver = run.resolver
    cited = parse_claim_line(run.answer.replace("\n", " "), resolver)
    run.answer_sources = sorted({c.passage_id for c in (cited.citations if cited else []) if c.valid and c.passage_id})


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _telemetry(run: _Run, system_info: dict | None, store_text: bool, *, success: bool,
               timed_out: bool = False) -> dict:
    prof = run.profile
    exec_s = run.clock.elapsed
    calls = run.calls
    complete = [c for c in calls if c["complete"]]
    tokens = sum(c["tokens_generated"] for c in calls)
    dec_s = sum(c["native_decode_s"] or 0 for c in complete)
    dec_n = sum(c["native_decode_tokens"] or 0 for c in complete)
    pe_s = sum(c["native_prompt_eval_s"] or 0 for c in complete)
    pe_n = sum(c["prompt_tokens_evaluated"] for c in complete if c["native_prompt_eval_s"])
    evaluated = sum(c["prompt_tokens_evaluated"] for c in calls)
    unique = max((c["prompt_tokens"] for c in calls), default=0)
    gen_wall = sum(c["e2e_s"] for c in calls)
    cit, val, inv = citation_counts(run.claims)
    peak = run.sampler.peak_mb if run.sampler.samples else None
    decisions = run.sizer.decisions if run.sizer else []
    admitted = [b for b in run.batches if b.get("admitted") and "claims" in b]
    unmeasured: dict[str, str] = {
        "mps_utilization": "GPU utilisation needs root (powermetrics) on macOS and is not sampled on other "
                           "platforms; not measured",
    }
    abe = adaptive_batch_effectiveness(decisions)
    if abe is None:
        unmeasured["adaptive_batch_effectiveness"] = "no batch was sized under high memory pressure (> 0.85)"
    metrics: dict[str, Any] = {
        "execution_time_s": round(exec_s, 4),
        "ttft_s": calls[0]["ttft_s"] if calls else None,
        "tpot_s": tpot(run.meter.calls, [c["tokens_generated"] for c in calls]),
        **itl_percentiles(run.meter.calls),
        "tokens_generated": tokens,
        "decode_tokens_per_second": _ratio(dec_n, dec_s),
        "wall_tokens_per_second": _ratio(tokens, gen_wall),
        "prompt_tokens_evaluated": evaluated,
        "prompt_tokens_total": sum(c["prompt_tokens"] for c in calls),
        "unique_context_tokens": unique,
        "prompt_eval_tokens_per_second": _ratio(pe_n, pe_s),
        "prefix_reuse_ratio": _ratio(evaluated, unique),
        "context_utilisation": _ratio(run.final_context_tokens, prof.context_window) if run.final_context_tokens else None,
        "memory_peak_mb": round(peak, 1) if peak is not None else None,
        "ru_maxrss_mb": round(ru_maxrss_mb(), 1),
        "memory_samples": run.sampler.samples,
        "memory_sample_hz": run.sampler.achieved_hz,
        "chunks_streamed": run.meter.chunks,
        "batches": len(admitted),
        "claims": len(run.claims),
        "citations": cit, "valid_citations": val, "invalid_citations": inv,
        "citation_validity": _ratio(val, cit),
        "memory_efficiency": _ratio(peak, run.memory_limit_mb),
        "context_efficiency": _ratio(unique, evaluated),
        "progressive_quality_score": (sum(1 for b in admitted if b.get("valid_citations")) / len(admitted)
                                      if admitted else None),
        "adaptive_batch_effectiveness": abe,
        "mps_utilization": None,
    }
    for k, v in metrics.items():
        if isinstance(v, float):
            metrics[k] = round(v, 6)
        if v is None and k not in unmeasured:
            unmeasured[k] = _why_null(k, run)
    if run.backend is not None and run.backend.token_count_method == "estimate":
        unmeasured.setdefault("unique_context_tokens_method", "Ollama exposes no tokenizer: context fitting used "
                                                              "an estimate of 3.5 characters per token")
    gold = run.gold
    question: dict[str, Any] = {"sha256": sha256(run.question), "length": len(run.question),
                                "gold_answer": gold.answer if gold else None,
                                "gold_passage_ids": list(gold.gold_passage_ids) if gold else []}
    answer: dict[str, Any] = {"decision": run.decision, "sha256": sha256(run.answer), "length": len(run.answer),
                              "sources": run.answer_sources}
    if store_text:
        question["text"] = redact(run.question)
        answer["text"] = redact(run.answer)
    sysd = system_info if system_info is not None else _system_dict()
    corp = run.corpus
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "started_at": run.started_at,
        "profile": {"name": prof.name, "context_window": prof.context_window, "memory_limit_mb": run.memory_limit_mb,
                    "batch_size": prof.batch_size, "ef_search": prof.ef_search, "max_tokens": prof.max_tokens,
                    "novelty_threshold": prof.novelty_threshold, "timeout_s": prof.timeout_s,
                    "early_exit_enabled": bool(run.gate.enabled) if run.gate else True,
                    "retrieval": "hnsw" if run.retrieval else "none"},
        "backend": run.backend_name,
        "model": run.backend.describe() if run.backend else {"name": "(not loaded)"},
        "corpus": {"id": corp.id if corp else "", "format": corp.format if corp else "",
                   "passages": len(corp.passages) if corp else 0, "skipped_lines": corp.skipped_total if corp else 0,
                   "index_cache_hit": run.index_cache_hit, "embedding_model": run.embedding_model or "none"},
        "question": question,
        "system": sysd,
        "accelerator": {"llm": run.backend.accelerator if run.backend else "cpu", "embedding": run.embed_device},
        "phases": {f"{p}_s": round(run.clock.totals[p], 4) for p in PHASES},
        "metrics": metrics,
        "unmeasured": unmeasured,
        "traces": {
            "batches": run.batches,
            "batch_size": [d.as_dict() for d in decisions],
            "novelty": list(run.gate.trace) if run.gate else [],
            "calls": [{k: v for k, v in c.items() if k != "complete"} for c in calls],
        },
        "early_exit": run.early_exit,
        "answer": answer,
        "errors": run.errors,
        "success": success,
        "timed_out": timed_out,
    }


def _why_null(metric: str, run: _Run) -> str:
    if not run.calls:
        return "no generation call completed"
    return {
        "ttft_s": "the first call streamed no content",
        "tpot_s": "no call produced two or more tokens",
        "citation_validity": "no citation was made",
        "context_utilisation": "the synthesis call did not complete",
        "progressive_quality_score": "no evidence batch was streamed",
    }.get(metric, "the backend did not report the counters this metric needs")


_SYSTEM_CACHE: dict | None = None


def _system_dict() -> dict:
    """System facts for telemetry (no Ollama probe unless that backend is used; cached per process)."""
    global _SYSTEM_CACHE
    if _SYSTEM_CACHE is None:
        _SYSTEM_CACHE = system_mod.detect(probe_ollama_server=False).as_dict()
    return _SYSTEM_CACHE
