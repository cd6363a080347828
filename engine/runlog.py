"""Typed records of one run: what the pipeline measured, in the shape telemetry is built from.

    CallRecord   one generation call (client-side timing + the backend's native counters)
    BatchRecord  one evidence batch (its passages, novelty, admission, and the claims it produced)
    EarlyExit    why the evidence stream stopped (the document's `early_exit` block)
    RunFacts     everything `telemetry.build` needs about a run, as plain measured values (no live objects)

The pipeline fills these while it runs; `engine.telemetry.build(facts, ...)` turns them into the document.
`as_trace()` gives each record's entry in the document's `traces` exactly. Pure data: no I/O, cheap to import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.base import GenerationStats
    from .batching import BatchDecision
    from .claims import Claim
    from .grounding import CitationCheck
    from .novelty import GateDecision
    from .profiles import Profile
    from .stream import CallTiming


@dataclass
class CallRecord:
    """One generation call. `complete` is False when the stream ended without the backend's stats (the call
    failed or was interrupted): its native counters are then unknown and its token counts 0."""
    kind: str                                   # claims | synthesis
    prompt_tokens: int                          # the full prompt, cached prefix included
    prompt_tokens_evaluated: int                # tokens actually evaluated (cache hits excluded)
    tokens_generated: int
    ttft_s: float | None
    e2e_s: float
    native_prompt_eval_s: float | None
    native_decode_s: float | None
    native_decode_tokens: int | None
    chunks: int                                 # non-empty deltas streamed
    finish_reason: str | None
    complete: bool
    tokens_sampled: int | None = None           # the runtime's sampler count (end-of-generation token included)
    counter_mismatch: str | None = None         # how the runtime's counters disagreed, if they did

    @classmethod
    def measured(cls, kind: str, timing: "CallTiming", stats: "GenerationStats | None") -> "CallRecord":
        """The record of a call from its client-side timing and the backend's stats (None: not reported)."""
        st = stats
        return cls(kind=kind, prompt_tokens=st.prompt_tokens if st else 0,
                   prompt_tokens_evaluated=st.prompt_tokens_evaluated if st else 0,
                   tokens_generated=st.tokens_generated if st else 0,
                   ttft_s=timing.ttft_s, e2e_s=timing.e2e_s,
                   native_prompt_eval_s=st.native_prompt_eval_s if st else None,
                   native_decode_s=st.native_decode_s if st else None,
                   native_decode_tokens=st.native_decode_tokens if st else None,
                   chunks=len(timing.chunk_times), finish_reason=st.finish_reason if st else None,
                   complete=st is not None, tokens_sampled=st.tokens_sampled if st else None,
                   counter_mismatch=st.counter_mismatch if st else None)

    def as_trace(self) -> dict[str, Any]:
        """The entry in `traces.calls` (every field but `complete`; `counter_mismatch` only when set)."""
        d = {"kind": self.kind, "prompt_tokens": self.prompt_tokens,
             "prompt_tokens_evaluated": self.prompt_tokens_evaluated, "tokens_generated": self.tokens_generated,
             "ttft_s": self.ttft_s, "e2e_s": self.e2e_s, "native_prompt_eval_s": self.native_prompt_eval_s,
             "native_decode_s": self.native_decode_s, "native_decode_tokens": self.native_decode_tokens,
             "chunks": self.chunks, "finish_reason": self.finish_reason, "tokens_sampled": self.tokens_sampled}
        if self.counter_mismatch:
            d["counter_mismatch"] = self.counter_mismatch
        return d


@dataclass
class BatchRecord:
    """One evidence batch. The claim counts are set only once the batch was streamed (None before that, and for
    a batch refused by the novelty gate or the context window)."""
    index: int
    size: int
    passage_ids: list[str]
    novelty: float                              # the gate's measure: information gain (engine.novelty)
    admitted: bool
    claims: int | None = None
    valid_citations: int | None = None
    invalid_citations: int | None = None
    passage_novelty: float | None = None        # plain passage novelty, for comparison
    claim_novelty: float | None = None          # of the batch's claims against earlier claims (after streaming)
    grounded_citations: int | None = None
    cut: list[str] = field(default_factory=list)       # passages shown only in part (the first batch's budget)
    rest_of: list[str] = field(default_factory=list)   # passages whose remaining sentences this batch carries

    @property
    def streamed(self) -> bool:
        """Admitted and its claims call completed."""
        return self.admitted and self.claims is not None

    def as_trace(self) -> dict[str, Any]:
        """The entry in `traces.batches`: the optional counts and lists appear only when set."""
        d: dict[str, Any] = {"index": self.index, "size": self.size, "passage_ids": list(self.passage_ids),
                             "novelty": self.novelty, "admitted": self.admitted}
        for k in ("claims", "valid_citations", "invalid_citations", "passage_novelty", "claim_novelty",
                  "grounded_citations", "cut", "rest_of"):
            v = getattr(self, k)
            if v is not None and v != []:
                d[k] = v
        return d


NOVELTY_STOP = "novelty_below_threshold"
STOP_REASONS = ("evidence_exhausted", "token_budget", NOVELTY_STOP, "context_full", "single_shot", "timeout")


@dataclass(frozen=True)
class EarlyExit:
    """Why a run stopped streaming evidence, and at which batch. Only a novelty stop is an early exit proper
    (`triggered`); it also carries the batch's novelty and the threshold it fell under."""
    reason: str = "evidence_exhausted"          # one of STOP_REASONS
    batch: int | None = None                    # the batch the stream stopped at; None: no batch was refused
    novelty: float | None = None                # novelty stops only
    threshold: float | None = None              # novelty stops only

    def __post_init__(self) -> None:
        if self.reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {self.reason!r}")

    @property
    def triggered(self) -> bool:
        return self.reason == NOVELTY_STOP

    def as_dict(self) -> dict:
        """The document's `early_exit` block."""
        d: dict[str, Any] = {"triggered": self.triggered, "batch": self.batch, "reason": self.reason}
        if self.triggered:
            d["novelty"], d["threshold"] = self.novelty, self.threshold
        return d


@dataclass
class RunFacts:
    """What one run measured, up to its end or its failure; the input of `telemetry.build`."""
    run_id: str
    started_at: str                             # ISO 8601, UTC
    profile: "Profile"
    memory_limit_mb: float                      # the profile's limit on this machine class
    backend: str                                # backend name
    model: dict | None                          # Backend.describe(); None when no model was loaded
    llm_accelerator: str
    token_count_method: str | None              # "tokenizer" | "estimate"; None when no backend was loaded
    retrieval: bool
    early_exit_enabled: bool
    corpus_id: str
    corpus_format: str
    corpus_passages: int
    corpus_skipped_lines: int
    index_cache_hit: bool | None
    embedding_model: str                        # "" when nothing was embedded
    embedding_device: str
    question: str
    gold_answer: str | None
    gold_passage_ids: list[str]
    execution_time_s: float
    phase_s: dict[str, float]                   # phase -> seconds; the phases partition execution_time_s
    calls: list[CallRecord]
    timings: list["CallTiming"]                 # client-side timing of each call (chunk times for ITL)
    batches: list[BatchRecord]
    batch_size_decisions: list["BatchDecision"]
    novelty_trace: list[float]
    claims: list["Claim"]
    memory_peak_mb: float | None                # None when the sampler took no sample
    memory_samples: int
    memory_sample_hz: float | None
    ru_maxrss_mb: float
    final_context_tokens: int                   # prompt + generated tokens of the synthesis call; 0 if none
    early_exit: EarlyExit
    answer: str
    decision: str | None
    answer_sources: list[str]
    errors: list[str] = field(default_factory=list)
    cpu_time_s: float | None = None             # user + system CPU of the run's process tree; None: not measured
    threads: dict | None = None                 # the backend's thread choice (engine.threads) with its reason
    strategy: str = "progressive"               # progressive | single_shot
    answer_type: str = "polar"                  # polar | open
    answer_type_source: str = "given"           # given | detected
    decision_method: str | None = None          # [calibrated_]token_probabilities | parsed | None (no decision)
    decision_probabilities: dict | None = None  # option -> the probability the decision was taken on
    decision_calibration: dict | None = None    # method, prior, raw_probabilities, what the prior cost
    gate_decisions: list["GateDecision"] = field(default_factory=list)
    citation_checks: list["CitationCheck"] = field(default_factory=list)   # claims' and answer's citations
    answer_claims: list["Claim"] = field(default_factory=list)             # the answer's citing sentences
    time_to_first_claim_s: float | None = None  # first generation request -> first claim citing only valid labels
    claims_rejected: int = 0                    # claim lines the parser refused (a cut-off line, too few words)
    claim_format: str = "free"                  # abstractive | extractive (held to a grammar) | free
