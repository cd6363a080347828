"""The streaming research pipeline: plan -> retrieve -> stream evidence batches -> synthesize.

`research(...)` is the public entry. This module owns the control flow of a run and its mutable state (`_Run`):
the phase clock, retrieval, batch sizing and the novelty gate, context fitting, streaming claims, synthesis, and
failure handling (ResearchFailed, or the partial telemetry attached to any other exception; a RunTimeout marks
the run timed out). What it measures it records as typed records (engine.runlog: CallRecord per generation
call, BatchRecord per evidence batch) and hands over as RunFacts; engine.telemetry builds the document from
those, and engine.atomic writes it. Every figure in the telemetry is measured during the run.
"""
from __future__ import annotations

import datetime as _dt
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import prompts
from .atomic import write_json
from .backends import BACKEND_NAMES, Backend, BackendError, Message, make_backend
from .batching import AdaptiveBatchSizer
from .claims import CitationResolver, Claim, ClaimStreamParser, citation_counts, parse_claim_line
from .corpus import Corpus, Passage, Question, load_corpus
from .deadline import RunTimeout
from .embed import shared_embedder
from .index import HNSWIndex
from .memory import MemorySampler, ProcessTree, find_ollama_server_pids, ru_maxrss_mb
from .novelty import EarlyExitController
from .profiles import Profile, get_profile
from .runlog import BatchRecord, CallRecord, RunFacts
from .stream import StreamMeter
from .synthesis import SYNTHESIS_PREFILL, closed_book_request, parse_decision, synthesis_request
from . import system as system_mod
from . import telemetry

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
    calls: list[CallRecord] = field(default_factory=list)
    batches: list[BatchRecord] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    sizer: AdaptiveBatchSizer | None = None
    gate: EarlyExitController | None = None
    early_exit: dict = field(default_factory=lambda: {"triggered": False, "batch": None, "reason": "evidence_exhausted"})
    answer: str = ""
    decision: str | None = None
    answer_sources: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    final_context_tokens: int = 0
    gold: Question | None = None
    retrieval: bool = True
    memory_limit_mb: float = 0.0                  # the profile's limit for this machine class
    resolver: CitationResolver = field(default_factory=CitationResolver)   # labels of passages in context
    messages: list[Message] = field(default_factory=list)                  # the conversation so far


def research(question: str, *, profile: str | Profile = "quick", backend: str | Backend = "llamacpp",
             model: str | None = None, corpus: str | Path | Corpus | None = None,
             profiles_file: str | Path | None = None, early_exit: bool = True, retrieval: bool = True,
             store_text: bool = False, telemetry_out: str | Path | None = None,
             on_event: Event | None = None, system_info: dict | None = None,
             memory_trace: str | Path | None = None) -> ResearchSession:
    """Research `question` over `corpus` with a real model; return the session with its telemetry.

    User errors found before the run (profile, question, corpus, backend) raise their own error types with a
    message naming the fix. A failure during the run raises ResearchFailed carrying the partial telemetry;
    any other exception (KeyboardInterrupt, a RunTimeout) gets the partial telemetry attached as
    `exc.research_telemetry` before it propagates. The telemetry says `timed_out: true` exactly when the
    exception is a RunTimeout (engine.deadline; a harness's own timeout subclasses it). `memory_trace`: a JSON
    file for the memory sampler's whole trace (process-tree RSS over the run; MemorySampler.trace_document)."""
    emit = on_event or (lambda kind, data: None)
    prof = profile if isinstance(profile, Profile) else get_profile(profile, profiles_file)
    q = _check_question(question)
    backend_name = backend if isinstance(backend, str) else backend.name
    if isinstance(backend, str) and backend not in BACKEND_NAMES:
        raise BackendError(f"unknown backend '{backend}': use {' or '.join(BACKEND_NAMES)}")
    corp = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)

    extra = find_ollama_server_pids() if backend_name == "ollama" else []
    run = _Run(profile=prof, backend_name=backend_name, question=q,
               started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
               clock=PhaseClock("plan"), meter=StreamMeter(),
               sampler=MemorySampler(ProcessTree(extra_pids=extra), trace=memory_trace is not None), corpus=corp,
               retrieval=retrieval,
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
            if memory_trace is not None:
                write_json(memory_trace, run.sampler.trace_document())
    except BaseException as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        run.errors.append(f"{type(exc).__name__}: {msg}")
        tel = telemetry.build(_facts(run), system=system_info, store_text=store_text, success=False,
                              timed_out=isinstance(exc, RunTimeout))
        if telemetry_out:
            write_json(telemetry_out, tel)
        if own_backend and run.backend is not None:
            run.backend.close()
        if isinstance(exc, Exception):
            raise ResearchFailed(msg, tel) from exc
        exc.research_telemetry = tel  # type: ignore[attr-defined]
        raise
    tel = telemetry.build(_facts(run), system=system_info, store_text=store_text, success=True)
    if telemetry_out:
        write_json(telemetry_out, tel)
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
        stats, backend.last_stats = backend.last_stats, None
        run.calls.append(CallRecord.measured(kind, run.meter.calls[-1], stats))
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
        entry = BatchRecord(index=b, size=len(batch_hits), passage_ids=[h.passage_id for h in batch_hits],
                            novelty=round(nov, 4), admitted=admitted)
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
            entry.admitted = False
            run.batches.append(entry)
            run.early_exit = {"triggered": False, "batch": b, "reason": "context_full"}
            break
        for h in take:
            resolver.add(h.passage_id)
        entry.size, entry.passage_ids = len(take), [h.passage_id for h in take]
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
        call = run.calls[-1]
        generated += call.tokens_generated
        messages = messages + [Message("assistant", prompts.CLAIM_PREFILL + out)]
        run.claims += parser.claims
        _, entry.valid_citations, entry.invalid_citations = citation_counts(parser.claims)
        entry.claims = len(parser.claims)
        run.batches.append(entry)
        emit("batch_done", {"batch": b, "claims": len(parser.claims), "call": call})
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
    call = run.calls[-1]
    run.final_context_tokens = call.prompt_tokens + call.tokens_generated
    resolver = run.resolver
    cited = parse_claim_line(run.answer.replace("\n", " "), resolver)
    run.answer_sources = sorted({c.passage_id for c in (cited.citations if cited else []) if c.valid and c.passage_id})



def _facts(run: _Run) -> RunFacts:
    """What `run` measured so far, as the plain facts telemetry is built from (read when the run ends)."""
    backend, corp, gold, sampler = run.backend, run.corpus, run.gold, run.sampler
    return RunFacts(
        run_id=run.run_id, started_at=run.started_at, profile=run.profile, memory_limit_mb=run.memory_limit_mb,
        backend=run.backend_name, model=backend.describe() if backend else None,
        llm_accelerator=backend.accelerator if backend else "cpu",
        token_count_method=backend.token_count_method if backend else None,
        retrieval=run.retrieval, early_exit_enabled=bool(run.gate.enabled) if run.gate else True,
        corpus_id=corp.id if corp else "", corpus_format=corp.format if corp else "",
        corpus_passages=len(corp.passages) if corp else 0, corpus_skipped_lines=corp.skipped_total if corp else 0,
        index_cache_hit=run.index_cache_hit, embedding_model=run.embedding_model, embedding_device=run.embed_device,
        question=run.question, gold_answer=gold.answer if gold else None,
        gold_passage_ids=list(gold.gold_passage_ids) if gold else [],
        execution_time_s=run.clock.elapsed, phase_s={p: run.clock.totals[p] for p in PHASES},
        calls=list(run.calls), timings=list(run.meter.calls), batches=list(run.batches),
        batch_size_decisions=list(run.sizer.decisions) if run.sizer else [],
        novelty_trace=list(run.gate.trace) if run.gate else [], claims=list(run.claims),
        memory_peak_mb=sampler.peak_mb if sampler.samples else None, memory_samples=sampler.samples,
        memory_sample_hz=sampler.achieved_hz, ru_maxrss_mb=ru_maxrss_mb(),
        final_context_tokens=run.final_context_tokens, early_exit=run.early_exit, answer=run.answer,
        decision=run.decision, answer_sources=run.answer_sources, errors=run.errors)
