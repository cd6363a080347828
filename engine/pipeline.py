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

import numpy as np

from . import prompts
from .atomic import write_json
from .backends import BACKEND_NAMES, Backend, BackendError, Message, make_backend
from .batching import AdaptiveBatchSizer
from .claims import (CitationResolver, Claim, ClaimStreamParser, answer_sentences, citation_counts,
                     parse_claim_line)
from .corpus import Corpus, Passage, Question, load_corpus
from .deadline import Deadline, RunTimeout
from .embed import shared_embedder
from .grammar import OutputFormat, answer_format, claims_format, split_sentences
from .grounding import CitationCheck, check_citations
from .index import HNSWIndex
from .memory import MemorySampler, ProcessTree, find_ollama_server_pids, ru_maxrss_mb
from .novelty import EarlyExitController, novelty as passage_set_novelty, relevance_floor
from .profiles import Profile, get_profile
from .runlog import NOVELTY_STOP, BatchRecord, CallRecord, EarlyExit, RunFacts
from .stream import StreamMeter
from .synthesis import (CALIBRATIONS, CONTENT_FREE, DECISION_OPTIONS, POLAR, SYNTHESIS_PREFILL, closed_book_request,
                        normalized, parse_decision, resolve_answer_type, single_shot_request, synthesis_request)
from . import system as system_mod
from . import telemetry

MAX_QUESTION_CHARS = 4000
SYNTHESIS_PROMPT_RESERVE = 96   # tokens kept free for the synthesis request itself
PHASES = ("plan", "evidence_processing", "streaming_inference", "synthesis")
STRATEGIES = ("progressive", "single_shot")


class QuestionError(ValueError):
    """The question cannot be researched (empty, too long); the message says what to change."""


class ResearchFailed(RuntimeError):
    """The run started but failed; `.telemetry` holds everything measured up to the failure, and
    `.telemetry_written` says where telemetry_out went (when asked for)."""

    def __init__(self, message: str, telemetry: dict, telemetry_written: "telemetry.Written | None" = None):
        super().__init__(message)
        self.telemetry = telemetry
        self.telemetry_written = telemetry_written


class PhaseClock:
    """Attributes every moment of the run to exactly one phase, so the phases partition the run time.

    It runs from its creation (in `first` phase) to stop(); `elapsed` is that whole span."""

    def __init__(self, first: str | None = None) -> None:
        self.totals = {p: 0.0 for p in PHASES}
        self.current: str | None = first
        self.started = self._since = time.perf_counter()
        self.stopped: float | None = None
        self.last: str | None = None      # the phase the clock was in when stopped

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
        self.last = self.current
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
    telemetry_written: telemetry.Written | None = None      # where telemetry_out went (a fallback says why)

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
    bad = next((i for i, c in enumerate(q) if 0xD800 <= ord(c) <= 0xDFFF), None)
    if bad is not None:      # bytes that were not UTF-8 (a shell passes them through as lone surrogates)
        raise QuestionError(f"the question is not valid UTF-8 text (an undecodable byte at character {bad + 1}): "
                            f"type it again, or convert its file to UTF-8 (e.g. iconv -t UTF-8)")
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
    deadline: Deadline
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
    early_exit: EarlyExit = field(default_factory=EarlyExit)
    answer: str = ""
    decision: str | None = None
    decision_method: str | None = None
    decision_probabilities: dict | None = None
    decision_calibration: dict | None = None
    calibration: str = "relative"                 # engine.synthesis.CALIBRATIONS
    answer_tokens: int | None = None              # cap on the final answer's tokens (None: synthesis_tokens)
    content_free: list[Message] = field(default_factory=list)   # the conversation with no question, no evidence
    answer_sources: list[str] = field(default_factory=list)
    answer_claims: list[Claim] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    final_context_tokens: int = 0
    gold: Question | None = None
    retrieval: bool = True
    strategy: str = "progressive"
    answer_type: str = POLAR
    answer_type_source: str = "given"
    memory_limit_mb: float = 0.0                  # the profile's limit for this machine class
    resolver: CitationResolver = field(default_factory=CitationResolver)   # labels of passages in context
    messages: list[Message] = field(default_factory=list)                  # the conversation so far
    checks: list[CitationCheck] = field(default_factory=list)              # grounding of every citation
    evidence: "_Evidence | None" = None
    grammar: bool = True                          # claims and answers held to engine.grammar's formats
    first_request_at: float | None = None         # perf_counter when the first generation call was sent
    first_claim_s: float | None = None            # from then to the first claim whose citations are all valid
    claims_rejected: int = 0                      # claim lines the parser refused (engine.claims)
    rest: list[tuple[int, Passage]] = field(default_factory=list)   # the unshown sentences of a cut passage

    def stop(self, reason: str, batch: int | None = None, novelty: float | None = None) -> None:
        """Record why the evidence stream ended (a novelty stop also records the profile's threshold)."""
        threshold = self.profile.novelty_threshold if novelty is not None else None
        self.early_exit = EarlyExit(reason, batch, novelty, threshold)


@dataclass
class _Evidence:
    """What retrieval gave a run: the embedder, the index, the ranked hits, the question's vector, and lookups
    from passage id to its text and to its row in the index (built once per run)."""
    embedder: object
    index: HNSWIndex
    hits: list
    query: object
    by_id: dict[str, Passage]
    row: dict[str, int]
    claim_vectors: list = field(default_factory=list)    # embeddings of the claims made so far

    def vector(self, pid: str):
        return self.index.vectors[self.row[pid]]

    def text(self, pid: str) -> str:
        return self.by_id[pid].text


def research(question: str, *, profile: str | Profile = "quick", backend: str | Backend = "llamacpp",
             model: str | None = None, corpus: str | Path | Corpus | None = None,
             profiles_file: str | Path | None = None, early_exit: bool = True, retrieval: bool = True,
             strategy: str = "progressive", answer_type: str | None = "auto",
             store_text: bool = False, telemetry_out: str | Path | None = None,
             on_event: Event | None = None, system_info: dict | None = None,
             timeout_s: float | None = None, memory_trace: str | Path | None = None,
             decision_calibration: str = "relative", answer_tokens: int | None = None,
             grammar: bool = True) -> ResearchSession:
    """Research `question` over `corpus` with a real model; return the session with its telemetry.

    strategy: "progressive" (evidence batches, claims, then an answer from the claims) or "single_shot" (the
    top passages that fit the context, one prompt, one answer: the plain RAG baseline).
    answer_type: "auto" (detect: engine.synthesis.detect_answer_type), "polar" (a yes/no/maybe decision, picked
    by the model's token probabilities where the backend exposes them) or "open" (a few sentences with
    citations, decision None).

    User errors found before the run (profile, question, corpus, backend, strategy, answer type) raise their
    own error types with a message naming the fix. A failure during the run raises ResearchFailed carrying the
    partial telemetry; any other exception (KeyboardInterrupt, a RunTimeout) gets the partial telemetry
    attached as `exc.research_telemetry` before it propagates. The telemetry says `timed_out: true` exactly
    when the exception is a RunTimeout (engine.deadline; a harness's own timeout subclasses it).

    The run enforces its timeout itself (`timeout_s`; None: the profile's timeout_s; 0: none), counted from
    the start of the run (time spent building a missing index is added to it): it is checked between phases,
    evidence batches and streamed tokens, and the backend bounds a long prompt evaluation by it; past it the run
    raises RunTimeout (engine.deadline) with its partial telemetry (`timed_out: true`, early_exit "timeout").

    `memory_trace`: a JSON file for the memory sampler's whole trace (process-tree RSS over the run;
    MemorySampler.trace_document).

    decision_calibration: "relative" (a polar decision is taken on the token probabilities divided by those of
    the same conversation with its question and evidence replaced by a placeholder, over those of the closed-book
    prompt so replaced: the bias the research conversation adds is removed, the closed-book prompt's kept; where
    the backend serves token probabilities), "content_free" (divided by the content-free conversation's alone)
    or "none" (the raw probabilities decide). answer_tokens: a cap on the final answer's generated tokens
    below the profile's synthesis_tokens (a caller that needs only the decision); None: the profile's.

    grammar: hold claims and answers to engine.grammar's formats where the backend supports them (claims in the
    profile's claim_mode, every citation a label in context); False lets the model write them freely (the
    parser then finds what it can: the baseline the formats are measured against)."""
    emit = on_event or (lambda kind, data: None)
    prof = profile if isinstance(profile, Profile) else get_profile(profile, profiles_file)
    q = _check_question(question)
    if strategy not in STRATEGIES:
        raise QuestionError(f"strategy '{strategy}' is not one of {', '.join(STRATEGIES)}")
    if decision_calibration not in CALIBRATIONS:
        raise QuestionError(f"decision_calibration '{decision_calibration}' is not one of {', '.join(CALIBRATIONS)}")
    try:
        a_type, a_source = resolve_answer_type(q, answer_type)
    except ValueError as e:
        raise QuestionError(f"{e}: pass --answer-type auto, polar or open") from None
    if telemetry_out:
        telemetry.check_destination(telemetry_out)      # before the run: never lose a run's telemetry at its end
    backend_name = backend if isinstance(backend, str) else backend.name
    if isinstance(backend, str) and backend not in BACKEND_NAMES:
        raise BackendError(f"unknown backend '{backend}': use {' or '.join(BACKEND_NAMES)}")
    corp = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)

    extra = find_ollama_server_pids() if backend_name == "ollama" else []
    run = _Run(profile=prof, backend_name=backend_name, question=q,
               started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
               clock=PhaseClock("plan"), meter=StreamMeter(),
               deadline=Deadline(prof.timeout_s if timeout_s is None else timeout_s),
               sampler=MemorySampler(ProcessTree(extra_pids=extra), trace=memory_trace is not None),
               corpus=corp, retrieval=retrieval,
               strategy=strategy if retrieval else "progressive", answer_type=a_type, answer_type_source=a_source,
               memory_limit_mb=prof.budget_for(system_mod.current_machine_class()).memory_mb,
               calibration=decision_calibration, answer_tokens=answer_tokens, grammar=grammar)
    run.gold = corp.question_by_text(q)
    run.sampler.start()
    own_backend = isinstance(backend, str)
    try:
        try:
            run.backend = backend if isinstance(backend, Backend) else make_backend(
                backend, model or prof.model_for(backend), context_window=prof.context_window,
                timeout_s=prof.timeout_s)
            run.backend.deadline = run.deadline
            run.deadline.check("model loading")
            emit("phase", {"phase": "plan"})
            if retrieval and run.strategy == "single_shot":
                _single_shot(run, emit)
            else:
                if retrieval:
                    _stream_evidence(run, emit, early_exit)
                _synthesize(run, emit)
        finally:
            run.clock.stop()
            run.sampler.stop()
            if run.backend is not None:
                run.backend.deadline = None
            if memory_trace is not None:
                write_json(memory_trace, run.sampler.trace_document())
    except BaseException as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        run.errors.append(f"{type(exc).__name__}: {msg}")
        if isinstance(exc, RunTimeout):
            in_batch = run.clock.last in ("evidence_processing", "streaming_inference")
            run.stop("timeout", len(run.batches) if in_batch else None)
        tel = telemetry.build(_facts(run, early_exit), system=system_info, store_text=store_text, success=False,
                              timed_out=isinstance(exc, RunTimeout))
        written = telemetry.write(telemetry_out, tel) if telemetry_out else None
        if own_backend and run.backend is not None:
            run.backend.close()
        if isinstance(exc, Exception):
            raise ResearchFailed(msg, tel, written) from exc
        exc.research_telemetry = tel  # type: ignore[attr-defined]
        exc.research_telemetry_written = written  # type: ignore[attr-defined]
        raise
    tel = telemetry.build(_facts(run, early_exit), system=system_info, store_text=store_text, success=True)
    written = telemetry.write(telemetry_out, tel) if telemetry_out else None
    if own_backend:
        run.backend.close()
    in_context = run.resolver.ids
    passages = {p.id: p for p in corp.passages if p.id in in_context}
    return ResearchSession(q, run.answer, run.decision, run.claims, dict(run.resolver.labels), tel, passages,
                           written)


def _generate(run: _Run, messages: list[Message], *, max_tokens: int, prefill: str, kind: str,
              on_delta: Callable[[str], None], where: str, choose_first: dict[str, list[str]] | None = None,
              choice_prior: dict[str, float] | None = None, output_format: OutputFormat | None = None) -> str:
    """Stream one call, timing it and checking the run's deadline between deltas; returns the text generated
    (without the prefill). An interrupted call is closed first, so its record holds the backend's counters."""
    backend = run.backend
    assert backend is not None
    parts: list[str] = []
    # Only a backend that supports choosing gets the option: others keep the plain stream() signature.
    kw = {"choose_first": choose_first} if choose_first and backend.supports_choice else {}
    if kw and choice_prior is not None:
        kw["choice_prior"] = choice_prior
    if output_format is not None and run.grammar and backend.supports_format:
        kw["output_format"] = output_format
    if run.first_request_at is None:
        run.first_request_at = time.perf_counter()
    deltas = backend.stream(messages, max_tokens=max_tokens, prefill=prefill, **kw)
    metered = run.meter.measure(deltas)
    try:
        for delta in metered:
            if delta:
                parts.append(delta)
                on_delta(delta)
            run.deadline.check(where)
    finally:
        metered.close()
        getattr(deltas, "close", lambda: None)()
        stats, backend.last_stats = backend.last_stats, None
        run.calls.append(CallRecord.measured(kind, run.meter.calls[-1], stats))
    return "".join(parts)


def _retrieve(run: _Run, emit: Event) -> _Evidence:
    """Embed the question, load (or build) the index, rank the corpus: the run's evidence."""
    corp = run.corpus
    assert corp is not None
    embedder = shared_embedder()
    run.embed_device, run.embedding_model = embedder.device, embedder.model_id
    t_index = time.monotonic()
    index = HNSWIndex.build_or_load(corp, embedder)
    run.index_cache_hit = index.cache_hit
    if not index.cache_hit:        # building a missing index is set-up, not research: the deadline waits for it
        run.deadline.extend(time.monotonic() - t_index)
    run.deadline.check("retrieval")
    qv = embedder.encode([run.question])[0]
    hits = index.search(qv, run.profile.retrieve_k, run.profile.ef_search)
    emit("retrieved", {"hits": len(hits), "cache_hit": index.cache_hit})
    ev = _Evidence(embedder, index, hits, qv, {p.id: p for p in corp.passages},
                   {pid: i for i, pid in enumerate(index.ids)})
    run.evidence = ev
    return ev


def _ground(run: _Run, source: str, claims: list[Claim], first_index: int) -> list:
    """Check the citations of `claims` against their passages (engine.grounding); mark each citation grounded
    or not, keep the checks, and return the claims' embeddings (used again for claim novelty)."""
    ev = run.evidence
    if not claims:
        return []
    if ev is None:          # no retrieval: nothing is in context, so every citation is invalid, none grounded
        for i, c in enumerate(claims):
            for x in c.citations:
                x.grounded = False
                run.checks.append(CitationCheck(source, first_index + i, None, None, None, None, False))
        return []
    texts = [c.text for c in claims]
    vecs = ev.embedder.encode(texts)
    items = [(source, first_index + i, c.batch if source == "claim" else None,
              [x.passage_id if x.valid else None for x in c.citations]) for i, c in enumerate(claims)]
    checks = check_citations(items, vecs, texts, ev.text, ev.vector)
    it = iter(checks)
    for c in claims:
        for x in c.citations:
            x.grounded = next(it).grounded
    run.checks += checks
    return list(vecs)


def _stream_evidence(run: _Run, emit: Event, early_exit: bool) -> None:
    prof, backend = run.profile, run.backend
    assert backend is not None
    ev = _retrieve(run, emit)
    hits, index, by_id = ev.hits, ev.index, ev.by_id
    run.sizer = AdaptiveBatchSizer(prof.batch_size, prof.min_batch_size, prof.max_batch_size)
    run.gate = EarlyExitController(prof.novelty_threshold, enabled=early_exit, query=ev.query,
                                   floor=relevance_floor(ev.query, index.vectors))
    resolver = run.resolver
    messages: list[Message] = []
    reserve = prof.claim_tokens + SYNTHESIS_PROMPT_RESERVE + prof.synthesis_tokens
    generated = 0
    seen: set[str] = set()
    pos, b = 0, 0
    while True:
        run.clock.switch("evidence_processing")
        run.deadline.check(f"evidence batch {b}")
        if pos >= len(hits):
            run.stop("evidence_exhausted")
            break
        if generated + prof.claim_tokens + prof.synthesis_tokens > prof.max_tokens:
            run.stop("token_budget", b)
            break
        size = run.sizer.next_size(b, run.sampler.pressure(run.memory_limit_mb))
        if b == 0 and prof.first_batch_size:      # a small first batch: its claims stream soon
            size = min(size, prof.first_batch_size)
        batch_hits = hits[pos:pos + size]
        vectors = index.vectors[[h.passage_index for h in batch_hits]]
        admitted, nov = run.gate.admit(b, vectors)
        decision = run.gate.decisions[-1]
        entry = BatchRecord(index=b, size=len(batch_hits), passage_ids=[h.passage_id for h in batch_hits],
                            novelty=round(nov, 4), admitted=admitted, passage_novelty=decision.passage_novelty)
        emit("batch", {"batch": b, "size": len(batch_hits), "novelty": nov, "admitted": admitted})
        if not admitted:
            run.batches.append(entry)
            run.stop(NOVELTY_STOP, b, round(nov, 4))
            break
        # Fit the batch into the context window (counted with the backend's tokenizer), dropping its tail.
        take = list(batch_hits)
        while take:
            labels = run.rest + [(len(resolver.labels) + i + 1, by_id[h.passage_id]) for i, h in enumerate(take)]
            wanted = prompts.claims_wanted(len(labels))
            trial = _batch_prompt(run, messages, labels, wanted)
            if backend.prompt_tokens(trial, prompts.CLAIM_PREFILL) + reserve <= prof.context_window:
                break
            take.pop()
        if not take:
            entry.admitted = False
            run.batches.append(entry)
            run.stop("context_full", b)
            break
        run.gate.forget_last(len(take))
        for h in take:
            resolver.add(h.passage_id)
        entry.size, entry.passage_ids = len(take), [h.passage_id for h in take]
        entry.rest_of, run.rest = [p.id for _, p in run.rest], []
        if b == 0 and prof.first_batch_tokens:
            labels, trial = _fit_first_batch(run, labels, wanted, trial)
            entry.cut = [p.id for _, p in run.rest]
        messages = trial
        run.content_free.append(_content_free_batch(labels, wanted, first=len(run.content_free) == 0,
                                                    mode=prof.claim_mode))
        fmt = claims_format([n for n, _ in labels], wanted, prof.claim_mode, {n: p.text for n, p in labels})
        constrained = run.grammar and backend.supports_format
        parser = ClaimStreamParser(resolver, batch=b, seen=seen, require_citation=constrained)
        parser.feed(prompts.CLAIM_PREFILL)

        def on_delta(d: str, parser=parser) -> None:
            for c in parser.feed(d):
                _claimed(run, c)
                emit("claim", {"claim": c})

        run.clock.switch("streaming_inference")
        emit("phase", {"phase": "streaming_inference", "batch": b})
        out = _generate(run, messages, max_tokens=prof.claim_tokens, prefill=prompts.CLAIM_PREFILL, kind="claims",
                        on_delta=on_delta, where=f"the claims of evidence batch {b}", output_format=fmt)
        run.clock.switch("evidence_processing")
        for c in parser.close():
            _claimed(run, c)
            emit("claim", {"claim": c})
        run.claims_rejected += parser.rejected
        call = run.calls[-1]
        generated += call.tokens_generated
        messages = messages + [Message("assistant", prompts.CLAIM_PREFILL + out)]
        run.content_free.append(Message("assistant", prompts.CLAIM_PREFILL + CONTENT_FREE))
        vecs = _ground(run, "claim", parser.claims, len(run.claims))
        if vecs:
            earlier = np.vstack(ev.claim_vectors) if ev.claim_vectors else None
            entry.claim_novelty = round(passage_set_novelty(np.vstack(vecs), earlier), 4)
            ev.claim_vectors += vecs
        run.claims += parser.claims
        _, entry.valid_citations, entry.invalid_citations = citation_counts(parser.claims)
        entry.grounded_citations = sum(1 for c in parser.claims for x in c.citations if x.grounded)
        entry.claims = len(parser.claims)
        run.batches.append(entry)
        emit("batch_done", {"batch": b, "claims": len(parser.claims), "call": call})
        pos += size
        b += 1
    run.messages = messages


def _batch_prompt(run: _Run, messages: list[Message], labels: list[tuple[int, Passage]],
                  wanted: int) -> list[Message]:
    """The conversation with an evidence batch's request added (the first batch's carries the question)."""
    mode = run.profile.claim_mode
    text = (prompts.first_batch(run.question, labels, wanted, mode) if not messages
            else prompts.next_batch(labels, wanted, mode))
    return messages + [Message("user", text)]


def _fit_first_batch(run: _Run, labels: list[tuple[int, Passage]], wanted: int,
                     trial: list[Message]) -> tuple[list[tuple[int, Passage]], list[Message]]:
    """The first batch (`labels`, its conversation `trial`) within the profile's prompt-token budget: where it is
    over, its last passage keeps the most leading sentences (at least one) that fit. Returns the labels as shown
    and the conversation; the passage's other sentences wait in `run.rest` for the next batch (or the answer's
    prompt)."""
    backend = run.backend
    assert backend is not None
    budget = run.profile.first_batch_tokens
    label, p = labels[-1]
    sents = split_sentences(p.text)
    if len(sents) < 2 or backend.prompt_tokens(trial, prompts.CLAIM_PREFILL) <= budget:
        return labels, trial                     # within the budget, or nothing to cut
    for n in range(len(sents) - 1, 0, -1):
        shown = labels[:-1] + [(label, Passage(p.id, " ".join(sents[:n]), p.title))]
        trial = _batch_prompt(run, [], shown, wanted)
        if n == 1 or backend.prompt_tokens(trial, prompts.CLAIM_PREFILL) <= budget:
            break
    run.rest = [(label, Passage(p.id, " ".join(sents[n:]), p.title))]
    return shown, trial


def _claimed(run: _Run, claim: Claim) -> None:
    """Note when the run's first claim with only valid citations arrived (from its first generation request)."""
    if run.first_claim_s is None and run.first_request_at is not None and claim.citations \
            and all(x.valid for x in claim.citations):
        run.first_claim_s = time.perf_counter() - run.first_request_at


def _single_shot(run: _Run, emit: Event) -> None:
    """Plain RAG: the top-ranked passages that fit the context (leaving room for the answer), one prompt, one
    answer. Recorded as one evidence batch (no claims) so the context is visible in the traces."""
    prof, backend = run.profile, run.backend
    assert backend is not None
    ev = _retrieve(run, emit)
    run.clock.switch("evidence_processing")
    room = prof.context_window - prof.synthesis_tokens - 8
    take = list(ev.hits)
    # One token count per passage, then the whole prompt checked (and trimmed) with the backend's tokenizer.
    base = backend.prompt_tokens([Message("user", single_shot_request(run.question, "", run.answer_type))],
                                 SYNTHESIS_PREFILL)
    used, n = base, 0
    for i, h in enumerate(take):
        t = backend.count_tokens(prompts.evidence_block([(i + 1, ev.by_id[h.passage_id])])) + 1
        if used + t > room:
            break
        used, n = used + t, n + 1
    take = take[:n]
    while True:
        labelled = [(i + 1, ev.by_id[h.passage_id]) for i, h in enumerate(take)]
        messages = [Message("user", single_shot_request(run.question, prompts.evidence_block(labelled),
                                                        run.answer_type))]
        if backend.prompt_tokens(messages, SYNTHESIS_PREFILL) <= room or not take:
            break
        take.pop()
    for h in take:
        run.resolver.add(h.passage_id)
    run.batches.append(BatchRecord(index=0, size=len(take), passage_ids=[h.passage_id for h in take], novelty=1.0,
                                   admitted=True, claims=0, valid_citations=0, invalid_citations=0))
    run.stop("single_shot")
    emit("batch", {"batch": 0, "size": len(take), "novelty": 1.0, "admitted": True})
    placeholder = prompts.evidence_block([(i + 1, Passage(h.passage_id, CONTENT_FREE)) for i, h in enumerate(take)])
    _answer(run, emit, messages,
            [Message("user", single_shot_request(CONTENT_FREE, placeholder, run.answer_type))])


def _content_free_batch(labels: list[tuple[int, Passage]], wanted: int, first: bool,
                        mode: str = "abstractive") -> Message:
    """An evidence batch's turn with the question and every passage replaced by the placeholder."""
    blank = [(label, Passage(p.id, CONTENT_FREE)) for label, p in labels]
    return Message("user", prompts.first_batch(CONTENT_FREE, blank, wanted, mode) if first
                   else prompts.next_batch(blank, wanted, mode))


def _synthesize(run: _Run, emit: Event) -> None:
    prev = run.messages
    if run.retrieval and prev:       # the rest of a cut passage no batch carried is shown with the request
        rest = prompts.rest_of(run.rest)
        blank_rest = prompts.rest_of([(n, Passage(p.id, CONTENT_FREE)) for n, p in run.rest])
        messages = prev + [Message("user", rest + synthesis_request(run.question, run.answer_type))]
        blank = run.content_free + [Message("user", blank_rest + synthesis_request(CONTENT_FREE, run.answer_type))]
    else:
        messages = [Message("user", closed_book_request(run.question, run.answer_type))]
        blank = [Message("user", closed_book_request(CONTENT_FREE, run.answer_type))]
    _answer(run, emit, messages, blank)


def _calibration_prior(run: _Run, content_free: list[Message]) -> dict[str, float] | None:
    """What the answer's option probabilities are divided by, recorded with what it cost: the content-free
    conversation's probabilities (the prompt's label bias); for "relative", those over the closed-book prompt's
    content-free probabilities (only the bias the conversation adds to the closed-book prompt's). None where the
    run is not calibrated or the backend serves no token probabilities."""
    backend = run.backend
    assert backend is not None
    if run.calibration == "none" or not backend.supports_calibration:
        return None
    prior, cost = backend.first_token_probabilities(content_free, DECISION_OPTIONS, SYNTHESIS_PREFILL)
    record = {"method": run.calibration, "placeholder": CONTENT_FREE, "prior": prior, **cost}
    run.decision_calibration = record
    if run.calibration != "relative":
        return prior
    blank = [Message("user", closed_book_request(CONTENT_FREE, run.answer_type))]
    ref, more = backend.first_token_probabilities(blank, DECISION_OPTIONS, SYNTHESIS_PREFILL)
    record.update(reference_prior=ref, time_s=round(cost["time_s"] + more["time_s"], 4),
                  prompt_tokens=cost["prompt_tokens"] + more["prompt_tokens"], cached=cost["cached"] and more["cached"])
    p, r = normalized(prior), normalized(ref)
    return {k: p[k] / max(r[k], 1e-9) for k in p}


def _answer(run: _Run, emit: Event, messages: list[Message], content_free: list[Message]) -> None:
    """The final streamed answer. A polar question's decision is the most probable of yes/no/maybe after
    "Answer:" by the model's token probabilities calibrated by `content_free`'s (the same conversation without
    its content) where the backend exposes them, else parsed from the text."""
    run.clock.switch("synthesis")
    run.deadline.check("synthesis")
    emit("phase", {"phase": "synthesis"})
    backend = run.backend
    assert backend is not None
    polar = run.answer_type == POLAR
    room = run.profile.context_window - backend.prompt_tokens(messages, SYNTHESIS_PREFILL)
    max_tokens = max(16, min(run.answer_tokens or run.profile.synthesis_tokens, room - 8))
    prior = _calibration_prior(run, content_free) if polar and backend.supports_choice else None
    labels = sorted(run.resolver.labels)       # closed-book: no passage, so nothing to cite and no format
    fmt = answer_format(labels, polar) if labels else None
    out = _generate(run, messages, max_tokens=max_tokens, prefill=SYNTHESIS_PREFILL, kind="synthesis",
                    on_delta=lambda d: emit("answer_delta", {"text": d}), where="synthesis",
                    choose_first=DECISION_OPTIONS if polar else None, choice_prior=prior, output_format=fmt)
    choice, backend.last_choice = backend.last_choice, None
    run.answer = (SYNTHESIS_PREFILL + out).strip()
    if polar and choice is not None:
        run.decision, run.decision_method = choice.choice, choice.method
        run.decision_probabilities = dict(choice.probabilities)
        if run.decision_calibration is not None:
            run.decision_calibration["raw_probabilities"] = dict(choice.raw or choice.probabilities)
    elif polar:
        run.decision = parse_decision(run.answer)
        run.decision_method = "parsed" if run.decision else None
    call = run.calls[-1]
    run.final_context_tokens = call.prompt_tokens + call.tokens_generated
    resolver = run.resolver
    cited = parse_claim_line(run.answer.replace("\n", " "), resolver)
    run.answer_sources = sorted({c.passage_id for c in (cited.citations if cited else []) if c.valid and c.passage_id})
    run.answer_claims = answer_sentences(run.answer, resolver)
    _ground(run, "answer", run.answer_claims, 0)


def _facts(run: _Run, early_exit: bool = True) -> RunFacts:
    """What `run` measured so far, as the plain facts telemetry is built from (read when the run ends)."""
    backend, corp, gold, sampler = run.backend, run.corpus, run.gold, run.sampler
    return RunFacts(
        run_id=run.run_id, started_at=run.started_at, profile=run.profile, memory_limit_mb=run.memory_limit_mb,
        backend=run.backend_name, model=backend.describe() if backend else None,
        llm_accelerator=backend.accelerator if backend else "cpu",
        token_count_method=backend.token_count_method if backend else None,
        retrieval=run.retrieval, early_exit_enabled=bool(run.gate.enabled) if run.gate else early_exit,
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
        decision=run.decision, answer_sources=run.answer_sources, errors=run.errors,
        cpu_time_s=sampler.cpu_time_s, threads=backend.threads if backend else None,
        strategy=run.strategy, answer_type=run.answer_type, answer_type_source=run.answer_type_source,
        decision_method=run.decision_method, decision_probabilities=run.decision_probabilities,
        decision_calibration=run.decision_calibration,
        gate_decisions=list(run.gate.decisions) if run.gate else [], citation_checks=list(run.checks),
        answer_claims=list(run.answer_claims),
        time_to_first_claim_s=run.first_claim_s, claims_rejected=run.claims_rejected,
        claim_format=(run.profile.claim_mode if run.grammar and backend is not None and backend.supports_format
                      else "free"))
